import * as v from 'valibot';
import { base } from './base';

export const encodeGatewayUrl = base
  .route({
    method: 'GET',
    path: '/gateway/encode',
    tags: ['Gateway'],
    summary: 'Gateway URLs for a domain',
    description:
      'The gateway URLs for an upstream MCP server domain: the hostname route {base32(domain)}-enc.{GATEWAY_DOMAIN}/mcp, and the path route /gw/{server}/mcp when a server on that domain is registered.',
  })
  .meta({ tool: 'encode_gateway_url', permission: 'portal:servers:read', readOnly: true })
  .errors({ NOT_CONFIGURED: { status: 503, message: 'GATEWAY_DOMAIN is not set' } })
  .input(v.strictObject({ domain: v.pipe(v.string(), v.maxLength(36, 'Invalid domain: at most 36 characters fit in one DNS label once encoded'), v.regex(/^[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+$/, 'Invalid domain: expected a DNS name such as mcp.example.com')) }))
  .output(v.object({ domain: v.string(), host: v.string(), url: v.string(), server_id: v.nullable(v.string()), path_url: v.nullable(v.string()) }));

export const gateway = { encode: encodeGatewayUrl };
