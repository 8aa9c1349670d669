import { isLoopbackHost, wellKnownUrl } from '../lib/urls';
import { actionAllowed, type AccessMap, type Caller, type ServerRef } from './access';

/**
 * Direct resources: MCP servers that ChittyAuth protects as their authorization server. Pure: no I/O.
 *
 * Canonical form of a resource identifier (RFC 8707 §2, RFC 9728 §1.2, MCP authorization "Canonical Server
 * URI"): an absolute URL, lowercase scheme and host, no default port, no fragment, no query, no user info, and
 * no trailing slash (MCP: implementations SHOULD use the form without it). `https://MCP.example.com/mcp/` and
 * `https://mcp.example.com/mcp` name the same resource; the origin alone is `https://mcp.example.com`.
 */
export type Canonical = { ok: true; resource: string; url: URL } | { ok: false; reason: string };

export function canonicalResource(raw: string): Canonical {
  // RFC 8707 §2: the resource "MUST NOT include a fragment component".
  if (raw.includes('#')) return { ok: false, reason: 'must not contain a fragment' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'is not an absolute URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { ok: false, reason: 'must be an http(s) URL' };
  if (url.username || url.password) return { ok: false, reason: 'must not contain user info' };
  // RFC 8707 §2: it "SHOULD NOT include a query component"; we refuse one, so that matching is exact.
  if (url.search || raw.includes('?')) return { ok: false, reason: 'must not contain a query' };
  const path = url.pathname.replace(/\/+$/, '');
  return { ok: true, resource: `${url.protocol}//${url.host}${path}`, url };
}

/** The rules a resource URL must meet to be registered (besides its canonical form). */
export function registrableResource(raw: string, o: { development: boolean; mcpUrl: string; issuer: string; gatewayDomain?: string }): Canonical {
  const c = canonicalResource(raw);
  if (!c.ok) return c;
  if (c.url.protocol === 'http:' && !(o.development && isLoopbackHost(c.url.hostname))) return { ok: false, reason: 'must use https (http only for loopback addresses in development)' };
  // A server claims URLs on its own origin only: the one its MCP endpoint was registered (and probed) at.
  if (c.url.origin !== new URL(o.mcpUrl).origin) return { ok: false, reason: `must be on the origin of the server's MCP endpoint (${new URL(o.mcpUrl).origin})` };
  const issuer = new URL(o.issuer);
  if (c.url.host === issuer.host) return { ok: false, reason: 'is on ChittyAuth itself; its own resources need no registration' };
  if (o.gatewayDomain && (c.url.hostname === o.gatewayDomain || c.url.hostname.endsWith(`.${o.gatewayDomain}`))) return { ok: false, reason: 'is a gateway hostname route' };
  return c;
}

/** RFC 9728 §3.1: the metadata lives at the resource's origin, `/.well-known/oauth-protected-resource` + its path. */
export const metadataUrlOf = (resource: string): string => wellKnownUrl(resource, 'oauth-protected-resource');

export interface DirectScope {
  name: string;
  description: string | null;
  /** The portal action a user must be allowed for this scope to be granted. */
  action: 'connect' | 'call' | 'admin';
  default: boolean;
}

/** A direct server as the authorization endpoints see it. */
export interface DirectServer {
  server: ServerRef & { name: string };
  resource: string;
  scopes: DirectScope[];
  introspectionClientId: string | null;
}

export type ScopeCheck = { ok: true; scope: string } | { ok: false; error: 'invalid_scope'; description: string };

/**
 * The scopes a client may ask for on a direct server: each defined by the server and, when the client
 * registered a scope list (RFC 7591 §2), on that list; none asked for means the server's default scopes.
 */
export function requestedDirectScope(raw: string | null, direct: DirectServer, clientScope: string | null): ScopeCheck {
  const asked = (raw ?? '').split(' ').filter(Boolean);
  const wanted = asked.length > 0 ? asked : direct.scopes.filter((s) => s.default).map((s) => s.name);
  const defined = direct.scopes.map((s) => s.name);
  const allowed = clientScope ? clientScope.split(' ') : null;
  for (const s of wanted) {
    if (!defined.includes(s)) return { ok: false, error: 'invalid_scope', description: `unknown scope ${s} for ${direct.server.name}; it defines: ${defined.join(' ') || '(none)'}` };
    if (allowed && !allowed.includes(s)) return { ok: false, error: 'invalid_scope', description: `scope ${s} is not allowed for this client` };
  }
  return { ok: true, scope: [...new Set(wanted)].join(' ') };
}

export type Admission = { ok: true; scope: string; withheld: string[] } | { ok: false; reason: string };

/**
 * Who gets a token for a direct server, and with which scopes: the portal's `connect` rule decides whether
 * at all (and the user's own switch), each scope's action whether it is granted. A request of which no
 * scope survives is refused (an empty token would only fail at the server).
 */
export function admitToDirect(access: AccessMap, direct: DirectServer, caller: Caller, enabled: boolean, scope: string): Admission {
  const name = direct.server.name;
  if (!actionAllowed(access, direct.server, caller, 'connect')) return { ok: false, reason: `Your access policy does not allow you to connect to ${name}. Ask an administrator of ${name} for connect access in the ChittyAuth portal.` };
  if (!enabled) return { ok: false, reason: `You turned ${name} off for yourself. Turn it on in the ChittyAuth portal to connect.` };
  const asked = scope.split(' ').filter(Boolean);
  const actionOf = (s: string) => direct.scopes.find((d) => d.name === s)?.action ?? 'admin';
  const granted = asked.filter((s) => actionAllowed(access, direct.server, caller, actionOf(s)));
  const withheld = asked.filter((s) => !granted.includes(s));
  if (asked.length > 0 && granted.length === 0) {
    return { ok: false, reason: `Your access policy allows none of the permissions requested on ${name} (${withheld.join(', ')}). Ask an administrator of ${name} for access in the ChittyAuth portal.` };
  }
  return { ok: true, scope: granted.join(' '), withheld };
}
