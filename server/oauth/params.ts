import type { Env } from '../env';
import { domainOfHost } from '../gateway/hostname';
import type { Client } from './clients';
import { OAuthError } from './errors';
import { apiResource, DEFAULT_SCOPE, mcpResource, SCOPES_SUPPORTED } from './metadata';

/** The resources tokens can be issued for (RFC 8707): this API, its MCP endpoint, and each gateway route. */
export const knownResources = (env: Env) => [mcpResource(env), apiResource(env)];

/** `ISSUER/gw/<server id>/mcp`: every registered server's gateway route is a resource of its own. */
export const gatewayResource = (env: Env, serverId: string) => `${env.ISSUER}/gw/${serverId}/mcp`;

/** `ISSUER/gw/<server id>/sse`: the route's legacy HTTP+SSE transport (MCP 2024-11-05), a resource of its own. */
export const legacyGatewayResource = (env: Env, serverId: string) => `${env.ISSUER}/gw/${serverId}/sse`;

/** `{scheme}://{base32(domain)}-enc.{GATEWAY_DOMAIN}/mcp` (or `/sse`, its legacy SSE transport): a hostname route of the gateway. */
function hostRouteResourceOf(env: Env, url: URL): string | undefined {
  const path = url.pathname === '/mcp' || url.pathname === '/sse' ? url.pathname : null;
  return path && !url.search && domainOfHost(url.host, env.GATEWAY_DOMAIN) ? `${url.protocol}//${url.host.toLowerCase()}${path}` : undefined;
}

function gatewayResourceOf(env: Env, canonical: string): string | undefined {
  const m = /^\/gw\/([a-z0-9][a-z0-9-]{1,62}[a-z0-9])\/(mcp|sse)$/.exec(canonical.slice(env.ISSUER.length));
  if (!canonical.startsWith(`${env.ISSUER}/gw/`) || !m) return undefined;
  return m[2] === 'sse' ? legacyGatewayResource(env, m[1]!) : gatewayResource(env, m[1]!);
}

/**
 * RFC 8707 §2: an absolute URI without a fragment, naming a resource we serve. Scheme and host
 * compare case-insensitively (MCP: "SHOULD accept uppercase scheme and host").
 */
export function checkResource(env: Env, raw: string | null): string {
  if (!raw) throw new OAuthError('invalid_target', 'resource is required (RFC 8707): the canonical URL of the MCP server, e.g. ' + mcpResource(env));
  if (raw.includes('#')) throw new OAuthError('invalid_target', 'resource must not contain a fragment');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new OAuthError('invalid_target', 'resource must be an absolute URL');
  }
  const canonical = `${url.protocol}//${url.host}${url.pathname === '/' && !raw.endsWith('/') ? '' : url.pathname}${url.search}`;
  const found = knownResources(env).find((r) => r === canonical || r === canonical.replace(/\/$/, '')) ?? gatewayResourceOf(env, canonical) ?? hostRouteResourceOf(env, url);
  if (!found) throw new OAuthError('invalid_target', `unknown resource ${raw}; this server issues tokens for ${knownResources(env).join(' and ')}`);
  return found;
}

/** Requested scopes, each supported and allowed for the client; none requested means the default. */
export function checkScope(raw: string | null, client: Client): string {
  const requested = (raw ?? '').split(' ').filter(Boolean);
  const scopes = requested.length > 0 ? requested : [DEFAULT_SCOPE];
  const allowed = client.scope ? client.scope.split(' ') : [...SCOPES_SUPPORTED];
  for (const s of scopes) {
    if (!(SCOPES_SUPPORTED as readonly string[]).includes(s)) throw new OAuthError('invalid_scope', `unknown scope ${s}; supported: ${SCOPES_SUPPORTED.join(' ')}`);
    if (!allowed.includes(s)) throw new OAuthError('invalid_scope', `scope ${s} is not allowed for this client`);
  }
  return [...new Set(scopes)].join(' ');
}

/** A narrowing of `granted` (refresh may only narrow, OAuth 2.1 §4.3.1). */
export function narrowScope(raw: string | null, granted: string): string {
  if (!raw) return granted;
  const have = granted.split(' ');
  const want = raw.split(' ').filter(Boolean);
  const extra = want.filter((s) => !have.includes(s));
  if (extra.length > 0) throw new OAuthError('invalid_scope', `scope ${extra.join(' ')} exceeds the original grant`);
  return [...new Set(want)].join(' ');
}
