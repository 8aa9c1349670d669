import type { DB } from '../db/schema';
import { decrypt, encrypt } from '../crypto/encryption';
import type { Env } from '../env';
import { guardedFetch, OutboundRefused } from '../lib/outbound';
import { gatewayResource } from '../oauth/params';
import { serversOnDomain } from '../portal/servers.store';
import { admit, jsonError, needsConnectionMessage, rateLimited, RPC_DENIED, RPC_NEEDS_CONNECTION, rpcErrorMessage, setStaticCredential, type GatewayRoute } from './admission';
import { filterToolsInSse, filterToolsResult } from './sse';
import { connectUrl, markNeedsReconnect, stepUpScope, upstreamAccessToken } from './upstream-oauth';
import { relay } from './bridge';

export type { GatewayRoute } from './admission';

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

/** JSON-RPC error for one request id, answered by the gateway itself (the upstream never sees the call). */
const rpcError = (id: unknown, code: number, message: string, data?: Record<string, unknown>) =>
  new Response(JSON.stringify(rpcErrorMessage(id, code, message, data)), { status: 200, headers: { 'content-type': 'application/json' } });

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

interface RpcMessage {
  id?: unknown;
  method?: string;
  params?: { name?: unknown };
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
  const { serverId } = route;
  // 1. Admission (admission.ts, shared with legacy SSE and the WebSocket tunnel). The rate limit waits for
  // the body, so that a refusal answers the message's JSON-RPC id.
  const gate = await admit(request, env, db, route, request.headers.get('authorization'), waitUntil, { countRequest: false });
  if (!gate.ok) return gate.response;
  const admitted = gate.admitted;
  const { principal, row } = admitted;

  let upstreamSession: string | null = null;
  const sealed = request.headers.get('mcp-session-id');
  if (sealed) {
    try {
      upstreamSession = await decrypt(env.ENCRYPTION_KEY, sealed, sessionAad(serverId, principal.chittyId));
    } catch {
      return jsonError(404, 'session_not_found', 'Unknown MCP session; start a new one with initialize');
    }
  }

  // 2. The body: one JSON-RPC message (or a 2025-03-26 batch, passed through as it is).
  let bodyText: string | undefined;
  let message: RpcMessage | null = null;
  let messages = 1;
  if (request.method === 'POST') {
    bodyText = await request.text();
    if (bodyText.length > MAX_REQUEST_BYTES) return jsonError(413, 'payload_too_large', 'MCP messages are limited to 1 MiB');
    try {
      const parsed = JSON.parse(bodyText) as unknown;
      message = Array.isArray(parsed) ? null : (parsed as RpcMessage);
      if (Array.isArray(parsed)) messages = Math.max(1, parsed.length);
    } catch {
      return rpcError(null, -32700, 'Parse error: the body is not JSON');
    }
  }

  // 3. Policy: the rate limits (each message of a batch counts), then the tool rules.
  const limited = admitted.take({ method: message?.method ?? request.method }, messages);
  if (limited) return rateLimited(limited, serverId, message);
  // Every call is audited; routine ones after the response, denials before it.
  const auditEvent = (outcome: 'success' | 'denied' | 'failure', detail: Record<string, unknown>) =>
    admitted.audit(outcome, { method: message?.method ?? request.method, ...detail, duration_ms: Date.now() - started });
  const audit = (outcome: 'success' | 'failure', detail: Record<string, unknown>) => waitUntil(auditEvent(outcome, detail));

  if (message?.method === 'tools/call') {
    const tool = typeof message.params?.name === 'string' ? message.params.name : '';
    const refusal = admitted.refusal(tool);
    if (refusal) {
      await auditEvent('denied', { tool });
      return rpcError(message.id, RPC_DENIED, refusal);
    }
  }

  // 4. The upstream call. OAuth upstreams: the user's own connection; without one, a clear error that says where to connect.
  const needsConnection = () => rpcError(message?.id, RPC_NEEDS_CONNECTION, needsConnectionMessage(env, row), { connect_url: connectUrl(env, serverId) });
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
        const headers = new Headers(hop.headers);
        await setStaticCredential(env, row, headers);
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
  // 5. The response relay.
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
    if (type.includes('text/event-stream')) return new Response(filterToolsInSse(upstream.body, admitted.toolFilter), { status: upstream.status, headers });
    if (type.includes('application/json')) {
      const body = (await upstream.json()) as { result?: Parameters<typeof filterToolsResult>[0] };
      if (body.result) filterToolsResult(body.result, admitted.toolFilter);
      return new Response(JSON.stringify(body), { status: upstream.status, headers });
    }
  }
  return new Response(upstream.body, { status: upstream.status, headers });
}
