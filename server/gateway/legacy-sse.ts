import { decrypt, encrypt } from '../crypto/encryption';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { guardedFetch, OutboundRefused } from '../lib/outbound';
import { legacyGatewayResource } from '../oauth/params';
import { admit, jsonError, needsConnectionMessage, rateLimited, RPC_DENIED, rpcErrorMessage, upstreamCredentials, type Admitted, type GatewayRoute } from './admission';
import { formatEvent, mapSseEvents, type SseEvent } from './sse-events';
import { heartbeatMs } from './websocket';
import { connectUrl, markNeedsReconnect } from './upstream-oauth';

/**
 * Legacy MCP upstreams: the HTTP+SSE transport of protocol 2024-11-05 (MCP spec 2024-11-05, Transports, "HTTP
 * with SSE"). The client opens an SSE stream; the server's first event, `endpoint`, names the URI to POST
 * JSON-RPC messages to; every answer arrives on the stream. The gateway offers the same transport to the client
 * and keeps no state:
 *
 *   GET  /gw/{server}/sse                       → the upstream's stream, passed through event by event, with
 *                                                 its `endpoint` rewritten to the next line's URL;
 *   POST /gw/{server}/message?session=<sealed>  → checked, then POSTed to the upstream's endpoint.
 *
 * `<sealed>` is the upstream's endpoint URL encrypted and authenticated (AES-GCM) with the user and server as
 * additional data: it reveals nothing, cannot be altered, and is useless to anyone else.
 *
 * A denied tools/call must never reach the upstream, yet legacy clients read answers only from the stream,
 * which another request holds. So the POST sends the upstream a `ping` (MCP basic utility; every server must
 * answer it) in place of the call, under an id that seals the original id and the reason; when the empty ping
 * result comes back on the stream, the GET side opens the seal and sends the client the JSON-RPC error for
 * its own id. tools/list results on the stream are filtered to the tools the user may call.
 */
const MAX_MESSAGE_BYTES = 1 << 20;
const POST_TIMEOUT_MS = 120_000;
/** How long the upstream may take to open its stream, how long a stream may last, and how much it may carry. */
const CONNECT_TIMEOUT_MS = 30_000;
const STREAM_MAX_MS = 60 * 60_000;
const STREAM_MAX_BYTES = 64 << 20;
/** Ids of the gateway's stand-in pings start with this; what follows is sealed. */
const DENIED_ID_PREFIX = 'chittyauth-denied.';

/**
 * The legacy transport is a protected resource of its own (`/gw/{server}/sse`, metadata beside it), so an SSE
 * client discovers it from the URL it was given (RFC 9728 §3; the MCP SDK requires the metadata's `resource` to
 * cover the server URL). The message endpoint belongs to the same resource: it takes the same tokens.
 */
export interface LegacyRoute extends GatewayRoute {
  /** The route's prefix: `/gw/{server}` on the path route, empty on a hostname route. */
  base: string;
}


export const legacyPathRoute = (env: Env, serverId: string): LegacyRoute => ({
  serverId,
  resource: legacyGatewayResource(env, serverId),
  metadata: `${env.ISSUER}/.well-known/oauth-protected-resource/gw/${serverId}/sse`,
  base: `/gw/${serverId}`,
});

export const legacyHostRoute = (origin: string, serverId: string): LegacyRoute => ({
  serverId,
  resource: `${origin}/sse`,
  metadata: `${origin}/.well-known/oauth-protected-resource/sse`,
  base: '',
});

const endpointAad = (serverId: string, chittyId: string) => `gw-legacy-endpoint:${serverId}:${chittyId}`;
const deniedAad = (serverId: string, chittyId: string) => `gw-legacy-denied:${serverId}:${chittyId}`;

type Background = (p: Promise<unknown>) => void;

interface RpcMessage {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: { name?: unknown };
  result?: unknown;
}

export async function handleLegacySse(request: Request, env: Env, db: DB, route: LegacyRoute, waitUntil: Background): Promise<Response> {
  if (request.method !== 'GET') return new Response(JSON.stringify({ error: 'method_not_allowed', message: 'Open the stream with GET' }), { status: 405, headers: { allow: 'GET', 'content-type': 'application/json' } });
  const gate = await admit(request, env, db, route, request.headers.get('authorization'), waitUntil);
  if (!gate.ok) return gate.response;
  const a = gate.admitted;
  const started = Date.now();
  if (a.row.transport !== 'sse') return jsonError(404, 'wrong_transport', `${a.row.id} speaks Streamable HTTP: use ${route.base}/mcp, not the legacy SSE route`);
  const headers = await upstreamCredentials(env, db, a.row, a.principal.chittyId);
  if (!headers) return connectionRequired(env, a);
  headers.set('accept', 'text/event-stream');
  const lastEventId = request.headers.get('last-event-id');
  if (lastEventId) headers.set('last-event-id', lastEventId);

  // Bounded: the upstream must answer within CONNECT_TIMEOUT_MS, and a stream lasts at most STREAM_MAX_MS
  // (the client reconnects). Cancelling the client's response cancels the upstream stream too.
  const abort = new AbortController();
  const connectTimer = setTimeout(() => abort.abort(new Error('upstream did not open its stream in time')), CONNECT_TIMEOUT_MS);
  let upstream: Response;
  try {
    upstream = await guardedFetch(env, { timeoutMs: STREAM_MAX_MS, maxBytes: STREAM_MAX_BYTES })(a.row.mcp_url, { method: 'GET', headers, signal: abort.signal });
  } catch (error) {
    waitUntil(a.audit('failure', { method: 'GET', transport: 'sse', error: errorText(error), duration_ms: Date.now() - started }));
    return jsonError(502, 'upstream_unreachable', error instanceof OutboundRefused ? `Upstream refused: ${error.message}` : `${a.row.id} could not be reached`);
  } finally {
    clearTimeout(connectTimer);
  }
  if (upstream.status === 401 && a.row.auth_type === 'oauth') {
    await upstream.body?.cancel();
    await markNeedsReconnect(db, a.principal.chittyId, a.row.id);
    waitUntil(a.audit('failure', { method: 'GET', transport: 'sse', status: 401, reason: 'upstream_token_refused', duration_ms: Date.now() - started }));
    return connectionRequired(env, a);
  }
  if (!upstream.ok || !upstream.body || !(upstream.headers.get('content-type') ?? '').includes('text/event-stream')) {
    await upstream.body?.cancel();
    waitUntil(a.audit('failure', { method: 'GET', transport: 'sse', status: upstream.status, duration_ms: Date.now() - started }));
    return jsonError(502, 'upstream_error', `${a.row.id} did not open an SSE stream (HTTP ${upstream.status})`);
  }
  const lifetime = setTimeout(() => abort.abort(new Error('stream lifetime reached')), STREAM_MAX_MS);
  waitUntil(a.audit('success', { method: 'GET', transport: 'sse', status: upstream.status, duration_ms: Date.now() - started }));

  const upstreamBase = new URL(a.row.mcp_url);
  const body = mapSseEvents(upstream.body, async (e) => {
    if (e.event === 'endpoint') {
      const endpoint = await gatewayEndpoint(env, a, route, upstreamBase, e.data);
      if (endpoint) return formatEvent({ ...e, data: endpoint });
      waitUntil(a.audit('failure', { method: 'GET', transport: 'sse', reason: 'foreign_endpoint', endpoint: e.data.slice(0, 200) }));
      return null;
    }
    if (e.event === undefined || e.event === 'message') return formatEvent({ ...e, data: await rewriteMessage(env, a, e) });
    return formatEvent(e);
  });
  // The client's stream ending ends the upstream's, and for HTTP+SSE that ends the session there (2024-11-05
  // has no DELETE: the stream is the session).
  const readable = relay(body, heartbeatMs(env), () => {
    clearTimeout(lifetime);
    abort.abort(new Error('the stream ended'));
  });
  return new Response(readable, { status: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-store' } });
}

/** An SSE comment (HTML Living Standard §9.2.6: lines starting with ':' are ignored by the client). */
const KEEPALIVE = new TextEncoder().encode(': keep-alive\n\n');

/**
 * The client's side of a legacy stream: the upstream's events as they come, and a comment every `keepaliveMs`.
 * A client that went away is noticed when a write fails even while the upstream is silent, and then the
 * upstream's stream is cancelled (workerd may see a silent peer's disconnect only when it writes). An upstream
 * that fails mid-stream (or reaches the lifetime) ends the client's stream cleanly; the client reconnects.
 * `onEnd` runs once, however it ends.
 */
function relay(body: ReadableStream<Uint8Array>, keepaliveMs: number, onEnd: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let timer: ReturnType<typeof setInterval> | undefined;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    if (timer !== undefined) clearInterval(timer);
    onEnd();
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      timer = setInterval(() => {
        try {
          controller.enqueue(KEEPALIVE);
        } catch {
          end();
        }
      }, keepaliveMs);
    },
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (!done) return controller.enqueue(value);
      } catch {
        // the upstream failed, or was aborted
      }
      end();
      controller.close();
    },
    cancel(reason) {
      end();
      return reader.cancel(reason).catch(() => {});
    },
  });
}

/**
 * The upstream's endpoint, sealed into a gateway URL. MCP 2024-11-05 names no origin rule; like the MCP SDK's
 * own client, the gateway follows only endpoints on the upstream's origin (anything else would let an upstream
 * aim the gateway elsewhere with the user's credentials). null for any other: the stream ends there.
 */
async function gatewayEndpoint(env: Env, a: Admitted, route: LegacyRoute, upstreamBase: URL, data: string): Promise<string | null> {
  let endpoint: URL;
  try {
    endpoint = new URL(data.trim(), upstreamBase);
  } catch {
    return null;
  }
  if (endpoint.origin !== upstreamBase.origin) return null;
  const sealed = await encrypt(env.ENCRYPTION_KEY, endpoint.href, endpointAad(a.row.id, a.principal.chittyId));
  return `${route.base}/message?session=${sealed}`;
}

/** One message from the upstream: a stand-in ping's answer becomes the denial; tools/list results are filtered. */
async function rewriteMessage(env: Env, a: Admitted, e: SseEvent): Promise<string> {
  let message: RpcMessage & { result?: { tools?: { name: string }[] } };
  try {
    message = JSON.parse(e.data);
  } catch {
    return e.data;
  }
  if (typeof message.id === 'string' && message.id.startsWith(DENIED_ID_PREFIX)) {
    try {
      const denied = JSON.parse(await decrypt(env.ENCRYPTION_KEY, message.id.slice(DENIED_ID_PREFIX.length), deniedAad(a.row.id, a.principal.chittyId))) as { id: unknown; message: string };
      return JSON.stringify(rpcErrorMessage(denied.id, RPC_DENIED, denied.message));
    } catch {
      return e.data;
    }
  }
  if (Array.isArray(message.result?.tools)) {
    message.result.tools = message.result.tools.filter((t) => a.toolFilter(t.name));
    return JSON.stringify(message);
  }
  return e.data;
}

export async function handleLegacyMessage(request: Request, env: Env, db: DB, route: LegacyRoute, waitUntil: Background): Promise<Response> {
  if (request.method !== 'POST') return new Response(JSON.stringify({ error: 'method_not_allowed', message: 'POST JSON-RPC messages here' }), { status: 405, headers: { allow: 'POST', 'content-type': 'application/json' } });
  const started = Date.now();
  // Counted once the body is read: each message of a batch counts (JSON-RPC 2.0 §6), as on /gw/{server}/mcp.
  const gate = await admit(request, env, db, route, request.headers.get('authorization'), waitUntil, { countRequest: false });
  if (!gate.ok) return gate.response;
  const a = gate.admitted;
  let endpoint: string;
  try {
    endpoint = await decrypt(env.ENCRYPTION_KEY, new URL(request.url).searchParams.get('session') ?? '', endpointAad(a.row.id, a.principal.chittyId));
  } catch {
    return jsonError(404, 'session_not_found', `Unknown session; open ${route.base}/sse and use the endpoint it sends`);
  }
  const text = await request.text();
  if (text.length > MAX_MESSAGE_BYTES) return jsonError(413, 'payload_too_large', 'MCP messages are limited to 1 MiB');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return jsonError(400, 'parse_error', 'The body is not JSON');
  }
  // JSON-RPC 2.0 §6: a batch is an array; MCP 2024-11-05 allows batches, so each element is checked on its own.
  const batch = Array.isArray(parsed);
  const incoming = (batch ? parsed : [parsed]) as RpcMessage[];
  if (incoming.length === 0 || incoming.some((m) => typeof m !== 'object' || m === null || Array.isArray(m))) return jsonError(400, 'invalid_request', 'Send a JSON-RPC message or a non-empty batch of them');
  const limited = a.take({ method: batch ? 'batch' : typeof incoming[0]!.method === 'string' ? incoming[0]!.method : 'response', transport: 'sse' }, incoming.length);
  // The answer is HTTP (RFC 6585 §4, Retry-After): a legacy client learns of a refused POST from its status.
  if (limited) return rateLimited(limited, a.row.id, null);

  const outgoing: RpcMessage[] = [];
  const forwarded: RpcMessage[] = [];
  for (const m of incoming) {
    const tool = m.method === 'tools/call' && typeof m.params?.name === 'string' ? m.params.name : m.method === 'tools/call' ? '' : null;
    const refusal = tool === null ? null : a.refusal(tool);
    if (refusal === null) {
      outgoing.push(m);
      forwarded.push(m);
      continue;
    }
    await a.audit('denied', { method: 'tools/call', tool, transport: 'sse', duration_ms: Date.now() - started });
    // A notification (no id) gets no answer (JSON-RPC 2.0 §4.1): it is simply not forwarded.
    if (m.id === undefined) continue;
    const sealed = await encrypt(env.ENCRYPTION_KEY, JSON.stringify({ id: m.id, message: refusal }), deniedAad(a.row.id, a.principal.chittyId));
    outgoing.push({ jsonrpc: '2.0', id: `${DENIED_ID_PREFIX}${sealed}`, method: 'ping' });
  }
  if (outgoing.length === 0) return new Response('Accepted', { status: 202 });

  const headers = await upstreamCredentials(env, db, a.row, a.principal.chittyId);
  if (!headers) return connectionRequired(env, a);
  headers.set('content-type', 'application/json');
  const version = request.headers.get('mcp-protocol-version');
  if (version) headers.set('mcp-protocol-version', version);
  const audit = (outcome: 'success' | 'failure', detail: Record<string, unknown>) => {
    for (const m of forwarded) waitUntil(a.audit(outcome, { method: m.method ?? 'response', tool: m.params?.name, transport: 'sse', ...detail, duration_ms: Date.now() - started }));
  };
  let upstream: Response;
  try {
    upstream = await guardedFetch(env, { timeoutMs: POST_TIMEOUT_MS, maxBytes: MAX_MESSAGE_BYTES })(endpoint, { method: 'POST', headers, body: JSON.stringify(batch ? outgoing : outgoing[0]) });
  } catch (error) {
    audit('failure', { error: errorText(error) });
    return jsonError(502, 'upstream_unreachable', error instanceof OutboundRefused ? `Upstream refused: ${error.message}` : `${a.row.id} could not be reached`);
  }
  if (upstream.status === 401 && a.row.auth_type === 'oauth') {
    await upstream.body?.cancel();
    await markNeedsReconnect(db, a.principal.chittyId, a.row.id);
    audit('failure', { status: 401, reason: 'upstream_token_refused' });
    return connectionRequired(env, a);
  }
  audit(upstream.ok ? 'success' : 'failure', { status: upstream.status });
  const type = upstream.headers.get('content-type');
  return new Response(upstream.body, { status: upstream.status, headers: { 'cache-control': 'no-store', ...(type ? { 'content-type': type } : {}) } });
}

const connectionRequired = (env: Env, a: Admitted) =>
  new Response(JSON.stringify({ error: 'connection_required', message: needsConnectionMessage(env, a.row), connect_url: connectUrl(env, a.row.id) }), { status: 403, headers: { 'content-type': 'application/json' } });

const errorText = (error: unknown) => (error instanceof Error ? error.message.slice(0, 200) : 'error');
