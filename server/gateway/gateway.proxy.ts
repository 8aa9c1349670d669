import { insertAuditEvent } from '../audit/audit.store';
import { authenticate } from '../auth/authenticate';
import { principalGrants } from '../auth/authorizer';
import { decrypt, encrypt } from '../crypto/encryption';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { guardedFetch, OutboundRefused } from '../lib/outbound';
import { challengeResponse, originAllowed } from '../oauth/challenge';
import { gatewayResource } from '../oauth/params';
import { actionAllowed, callerFrom, toolAllowed } from '../portal/access';
import { secretAad } from '../portal/health';
import { findEnabledCached, serverPolicy, serversOnDomain, type ServerRow } from '../portal/servers.store';
import { gatewayLimiter, rateLimitsOf, type Decision } from './rate-limit';
import { filterToolsInSse, filterToolsResult, type ToolFilter } from './sse';
import { connectUrl, markNeedsReconnect, stepUpScope, upstreamAccessToken } from './upstream-oauth';
import { relay } from './bridge';

/**
 * /gw/{server}/mcp: one authenticated front door to a registered MCP server (seed 003). The client
 * presents a ChittyAuth token issued for this route; the gateway checks the portal's access policy,
 * calls the upstream with the upstream's own credential, and streams the answer back. The client's
 * token never leaves ChittyAuth, and the upstream's credential never reaches the client.
 */
const UPSTREAM_TIMEOUT_MS = 120_000;
const MAX_UPSTREAM_BYTES = 16 << 20;
const MAX_REQUEST_BYTES = 1 << 20;
/**
 * Headers passed to the upstream; everything else (Authorization, Cookie, …) stays here. MCP 2026-07-28 servers
 * refuse a request without its routing headers (Mcp-Method, Mcp-Name) and check Mcp-Param-* against the body.
 */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'accept', 'mcp-protocol-version', 'last-event-id', 'mcp-method', 'mcp-name'];
const FORWARDED_REQUEST_PREFIX = 'mcp-param-';
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'cache-control', 'mcp-protocol-version', 'allow'];

export const gatewayMetadataUrl = (env: Env, serverId: string) => `${env.ISSUER}/.well-known/oauth-protected-resource/gw/${serverId}/mcp`;

const jsonError = (status: number, error: string, message: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ error, message }), { status, headers: { 'content-type': 'application/json', ...headers } });

/** JSON-RPC error for one request id, answered by the gateway itself (the upstream never sees the call). */
const rpcError = (id: unknown, code: number, message: string, data?: Record<string, unknown>) =>
  new Response(JSON.stringify({ jsonrpc: '2.0', id: id ?? null, error: { code, message, ...(data ? { data } : {}) } }), { status: 200, headers: { 'content-type': 'application/json' } });

/**
 * Upstream session ids are sealed to the user and server (AES-GCM, AAD), so a client can only resume
 * sessions it was given, and one user's session id is worthless to another.
 */
const sessionAad = (serverId: string, chittyId: string) => `gw-session:${serverId}:${chittyId}`;

/** The client's headers the upstream may see: routing, version and content negotiation; never its credential. */
function forwardedHeaders(request: Request): Headers {
  const headers = new Headers();
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = request.headers.get(name);
    if (value) headers.set(name, value);
  }
  for (const [name, value] of request.headers) if (name.startsWith(FORWARDED_REQUEST_PREFIX)) headers.set(name, value);
  return headers;
}

/** The registry's static header credential for the upstream, if it has one. */
async function withHeaderCredential(env: Env, row: ServerRow, headers: Headers): Promise<Headers> {
  const config = JSON.parse(row.auth_config) as { header_name?: string };
  if (row.auth_type === 'header' && config.header_name && row.auth_secret_encrypted) {
    headers.set(config.header_name, await decrypt(env.ENCRYPTION_KEY, row.auth_secret_encrypted, secretAad(row.id)));
  }
  return headers;
}

/**
 * RFC 6585 §4: 429 Too Many Requests, with Retry-After in delay-seconds (RFC 9110 §10.2.3). An MCP request
 * gets the reason as a JSON-RPC error too, so clients that only read the body learn which limit and when.
 */
export function rateLimited(d: Extract<Decision, { ok: false }>, serverId: string, message: RpcMessage | null): Response {
  const retryAfter = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
  const which = d.limit === 'per_user' ? `your limit of ${d.requests} requests per ${d.windowSeconds} s to ${serverId}` : `the limit of ${d.requests} requests per ${d.windowSeconds} s for all users of ${serverId}`;
  const text = `Rate limit exceeded: ${which}; retry after ${retryAfter} s`;
  const data = { limit: d.limit, requests: d.requests, window_seconds: d.windowSeconds, retry_after: retryAfter };
  const body = message && 'id' in message ? { jsonrpc: '2.0', id: message.id ?? null, error: { code: RATE_LIMITED, message: text, data } } : { error: 'rate_limited', message: text, ...data };
  return new Response(JSON.stringify(body), { status: 429, headers: { 'content-type': 'application/json', 'retry-after': String(retryAfter) } });
}

/** JSON-RPC error code of a refused rate-limited call (the implementation-defined server error range). */
export const RATE_LIMITED = -32029;

interface RpcMessage {
  id?: unknown;
  method?: string;
  params?: { name?: unknown };
}

export interface GatewayRoute {
  serverId: string;
  /** The resource identifier tokens must be issued for: the path route, or the encoded host's /mcp. */
  resource: string;
  /** Where that resource's protected resource metadata is (RFC 9728). */
  metadata: string;
}

/** The path route of a server: ISSUER/gw/{server}/mcp. */
export const pathRoute = (env: Env, serverId: string): GatewayRoute => ({ serverId, resource: gatewayResource(env, serverId), metadata: gatewayMetadataUrl(env, serverId) });

/**
 * The hostname route: the first registered server whose MCP URL is on the upstream domain; a domain with
 * a port (`host:port`) names exactly the server on that port.
 */
export async function hostRoute(db: DB, origin: string, domain: string): Promise<GatewayRoute | null> {
  const rows = await serversOnDomain(domain, () => db.selectFrom('mcp_servers').select(['id', 'mcp_url']).where('mcp_url', 'like', `%://${domain.replace(/[%_\\]/g, '')}%`).orderBy('id').execute());
  const row = rows.find((r) => (domain.includes(':') ? new URL(r.mcp_url).host : new URL(r.mcp_url).hostname) === domain);
  return row ? { serverId: row.id, resource: `${origin}/mcp`, metadata: `${origin}/.well-known/oauth-protected-resource/mcp` } : null;
}

export async function handleGateway(request: Request, env: Env, db: DB, route: GatewayRoute, waitUntil: (p: Promise<unknown>) => void): Promise<Response> {
  const started = Date.now();
  const { serverId, resource, metadata } = route;
  if (!originAllowed(env, request.headers.get('origin'))) return jsonError(403, 'forbidden_origin', 'Requests from this Origin are not allowed (DNS rebinding protection)');
  if (new URL(request.url).searchParams.has('access_token')) {
    return challengeResponse(env, 400, { error: 'invalid_request', description: 'tokens in the query string are refused', metadata }, 'Send the token in the Authorization header');
  }
  // Each route is its own protected resource: only tokens issued for it (RFC 8707), and API keys.
  const auth = await authenticate(env, db, request.headers.get('authorization'), resource, waitUntil);
  if (!auth.ok) {
    if (auth.reason === 'missing') return challengeResponse(env, 401, { metadata }, 'Authentication required: send Authorization: Bearer <token for this route>');
    return challengeResponse(env, 401, { error: 'invalid_token', description: `the access token is ${auth.reason.replace('_', ' ')}`, metadata }, `Invalid token: ${auth.reason}`);
  }
  const principal = auth.principal;
  // The server, its policy and the caller's grants come from the isolate caches (db/cache.ts): no D1 read
  // on most calls with an OAuth access token.
  const policy = await serverPolicy(db, serverId);
  const caller = callerFrom(principal.chittyId, await principalGrants(db, principal), principal.scopes);
  if (!policy || !actionAllowed(policy.access, policy.row, caller, 'view')) return jsonError(404, 'not_found', `No MCP server ${serverId}`);
  const { row, access, rules } = policy;
  if (!actionAllowed(access, row, caller, 'connect')) return jsonError(403, 'forbidden', `You may not connect to ${serverId}`);
  if (!(await findEnabledCached(db, principal.chittyId, serverId))) return jsonError(403, 'forbidden', `${serverId} is turned off for you; turn it on in the portal`);

  let upstreamSession: string | null = null;
  const sealed = request.headers.get('mcp-session-id');
  if (sealed) {
    try {
      upstreamSession = await decrypt(env.ENCRYPTION_KEY, sealed, sessionAad(serverId, principal.chittyId));
    } catch {
      return jsonError(404, 'session_not_found', 'Unknown MCP session; start a new one with initialize');
    }
  }

  let bodyText: string | undefined;
  let message: RpcMessage | null = null;
  if (request.method === 'POST') {
    bodyText = await request.text();
    if (bodyText.length > MAX_REQUEST_BYTES) return jsonError(413, 'payload_too_large', 'MCP messages are limited to 1 MiB');
    try {
      const parsed = JSON.parse(bodyText) as unknown;
      message = Array.isArray(parsed) ? null : (parsed as RpcMessage);
    } catch {
      return rpcError(null, -32700, 'Parse error: the body is not JSON');
    }
  }

  const limited = gatewayLimiter.take(serverId, principal.chittyId, rateLimitsOf(row));
  if (!limited.ok) {
    // The first refusal of a run is audited; the rest of a flood is not (it would be a D1 write per request).
    if (limited.first) waitUntil(insertAuditEvent(db, { actor: principal.chittyId, action: 'gateway.call', target: serverId, door: 'mcp', outcome: 'denied', detail: { method: message?.method ?? request.method, reason: 'rate_limited', limit: limited.limit } }));
    return rateLimited(limited, serverId, message);
  }

  const toolFilter: ToolFilter = (name) => toolAllowed(rules, serverId, name, caller).allowed && actionAllowed(access, row, caller, 'call');
  // Every call is audited; routine ones after the response, denials before it.
  const auditEvent = (outcome: 'success' | 'denied' | 'failure', detail: Record<string, unknown>) =>
    insertAuditEvent(db, { actor: principal.chittyId, action: 'gateway.call', target: serverId, door: 'mcp', outcome, detail: { method: message?.method ?? request.method, ...detail, duration_ms: Date.now() - started } }, { deferred: outcome !== 'denied' });
  const audit = (outcome: 'success' | 'failure', detail: Record<string, unknown>) => waitUntil(auditEvent(outcome, detail));

  if (message?.method === 'tools/call') {
    const tool = typeof message.params?.name === 'string' ? message.params.name : '';
    if (!actionAllowed(access, row, caller, 'call') || !toolAllowed(rules, serverId, tool, caller).allowed) {
      await auditEvent('denied', { tool });
      return rpcError(message.id, -32003, `Tool ${tool} is not allowed for you on ${serverId}`);
    }
  }

  // OAuth upstreams: the user's own connection; without one, a clear error that says where to connect.
  const needsConnection = () =>
    rpcError(message?.id, -32001, `Authorization needed: open ${connectUrl(env, serverId)} in a browser to connect ${row.name} to your ChittyAuth account, then retry`, { connect_url: connectUrl(env, serverId) });
  let upstreamToken: string | null = null;
  if (row.auth_type === 'oauth') {
    upstreamToken = await upstreamAccessToken(env, db, serverId, principal.chittyId);
    if (!upstreamToken) return needsConnection();
  }

  // One request of the client's, relayed by bridge.ts: as it came, or across protocol generations.
  const callUpstream = (token: string | null) =>
    relay({
      serverId,
      chittyId: principal.chittyId,
      serverName: row.name,
      request,
      message,
      body: bodyText,
      session: upstreamSession,
      forwarded: forwardedHeaders(request),
      background: waitUntil,
      send: async (hop) => {
        const headers = await withHeaderCredential(env, row, new Headers(hop.headers));
        if (token) headers.set('authorization', `Bearer ${token}`);
        return guardedFetch(env, { timeoutMs: UPSTREAM_TIMEOUT_MS, maxBytes: MAX_UPSTREAM_BYTES })(row.mcp_url, { method: hop.method, headers, body: hop.body });
      },
    });
  let upstream: Response;
  try {
    upstream = await callUpstream(upstreamToken);
    if (upstream.status === 401 && upstreamToken) {
      // RFC 6750 §3.1 invalid_token: the upstream ended the access token before its expiry (or clocks differ).
      // It did not act on the request, so refresh once and send the same request again.
      await upstream.body?.cancel();
      const renewed = await upstreamAccessToken(env, db, serverId, principal.chittyId, upstreamToken);
      if (renewed) upstream = await callUpstream((upstreamToken = renewed));
    }
  } catch (error) {
    audit('failure', { tool: message?.params?.name, error: error instanceof Error ? error.message.slice(0, 200) : 'error' });
    return jsonError(502, 'upstream_unreachable', error instanceof OutboundRefused ? `Upstream refused: ${error.message}` : `${serverId} could not be reached`);
  }

  if (upstream.status === 401 && upstreamToken) {
    // The upstream no longer takes the user's token (revoked there): ask the user to connect again.
    await markNeedsReconnect(db, principal.chittyId, serverId);
    audit('failure', { tool: message?.params?.name, status: 401, reason: 'upstream_token_refused' });
    return needsConnection();
  }
  const challenge = upstream.headers.get('www-authenticate');
  if (upstream.status === 403 && upstreamToken && challenge && /error="insufficient_scope"/.test(challenge)) {
    // RFC 6750 §3.1 insufficient_scope: the call needs more than the user granted upstream. The user consents
    // to the wider scope at the upstream by connecting again; nothing is sent for them meanwhile.
    await upstream.body?.cancel();
    const needed = await stepUpScope(db, serverId, challenge);
    await markNeedsReconnect(db, principal.chittyId, serverId);
    audit('failure', { tool: message?.params?.name, status: 403, reason: 'upstream_insufficient_scope', scope: needed.join(' ') });
    return needsConnection();
  }
  const headers = new Headers({ 'cache-control': 'no-store' });
  for (const name of FORWARDED_RESPONSE_HEADERS) {
    const value = upstream.headers.get(name);
    if (value) headers.set(name, value);
  }
  const upstreamSessionId = upstream.headers.get('mcp-session-id');
  if (upstreamSessionId) headers.set('mcp-session-id', await encrypt(env.ENCRYPTION_KEY, upstreamSessionId, sessionAad(serverId, principal.chittyId)));
  audit(upstream.ok ? 'success' : 'failure', { tool: message?.params?.name, status: upstream.status });

  // tools/list answers are filtered to what this user may call; everything else streams through untouched.
  if (message?.method === 'tools/list' && upstream.body) {
    const type = upstream.headers.get('content-type') ?? '';
    if (type.includes('text/event-stream')) return new Response(filterToolsInSse(upstream.body, toolFilter), { status: upstream.status, headers });
    if (type.includes('application/json')) {
      const body = (await upstream.json()) as { result?: Parameters<typeof filterToolsResult>[0] };
      if (body.result) filterToolsResult(body.result, toolFilter);
      return new Response(JSON.stringify(body), { status: upstream.status, headers });
    }
  }
  return new Response(upstream.body, { status: upstream.status, headers });
}
