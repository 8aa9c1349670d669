import * as v from 'valibot';
import { base } from './base';

export const encodeGatewayUrl = base
  .route({
    method: 'GET',
    path: '/gateway/encode',
    tags: ['Gateway'],
    summary: 'Gateway URLs for a domain',
    description:
      'The gateway URLs for an upstream MCP server domain (with :port when it is not on the default port): the hostname route {base32(domain)}-enc.{GATEWAY_DOMAIN}/mcp, with ChittyAuth\'s own scheme and port so the URL can be followed as it is, and the path route /gw/{server}/mcp when a server on that domain is registered.',
  })
  .meta({ tool: 'encode_gateway_url', permission: 'portal:servers:read', readOnly: true })
  .errors({ NOT_CONFIGURED: { status: 503, message: 'GATEWAY_DOMAIN is not set' } })
  .input(v.strictObject({ domain: v.pipe(v.string(), v.maxLength(36, 'Invalid domain: at most 36 characters fit in one DNS label once encoded'), v.regex(/^[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+(:\d{1,5})?$/, 'Invalid domain: expected a DNS name such as mcp.example.com, with :port when the upstream is not on the default port')) }))
  .output(v.object({ domain: v.string(), host: v.string(), url: v.string(), server_id: v.nullable(v.string()), path_url: v.nullable(v.string()) }));

const ConnectionSchema = v.object({
  server_id: v.string(),
  status: v.picklist(['connected', 'needs_reconnect']),
  scope: v.nullable(v.string()),
  expires_at: v.nullable(v.string()),
  connect_url: v.string(),
  created_at: v.string(),
  updated_at: v.string(),
});

export const listConnections = base
  .route({ method: 'GET', path: '/gateway/connections', tags: ['Gateway'], summary: 'List my upstream connections', description: 'The upstream MCP servers the gateway holds OAuth tokens for on your behalf (the tokens themselves never leave the server).' })
  .meta({ tool: 'list_gateway_connections', permission: 'portal:servers:use', readOnly: true })
  .input(v.optional(v.strictObject({}), {}))
  .output(v.object({ items: v.array(ConnectionSchema) }));

export const disconnectConnection = base
  .route({ method: 'DELETE', path: '/gateway/connections/{server_id}', tags: ['Gateway'], summary: 'Disconnect an upstream', description: 'Forgets your connection to an upstream MCP server and revokes its tokens there when the upstream supports revocation (RFC 7009).' })
  .meta({ tool: 'disconnect_gateway_connection', permission: 'portal:servers:use', audit: true })
  .errors({ NOT_FOUND: { status: 404, message: 'No such connection' } })
  .input(v.strictObject({ server_id: v.pipe(v.string(), v.maxLength(64), v.regex(/^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$/, 'Invalid server_id')) }))
  .output(v.object({ disconnected: v.boolean(), revoked_upstream: v.boolean() }));

export const gateway = {
  encode: encodeGatewayUrl,
  connections: { list: listConnections, disconnect: disconnectConnection },
};
