import type { DB } from '../db/schema';
import type { Env } from '../env';
import { guardedFetch } from '../lib/outbound';
import { admit, jsonError, needsConnectionMessage, rateLimitedMessage, RPC_DENIED, RPC_NEEDS_CONNECTION, rpcErrorMessage, upstreamCredentials, type Admitted, type GatewayRoute } from './admission';
import { isBridgeSession, relay, type Hop } from './bridge';
import { mapSseEvents } from './sse-events';
import { connectUrl, markNeedsReconnect } from './upstream-oauth';

/**
 * /gw/{server}/ws: a WebSocket tunnel into the gateway route (seed 003 "WebSocket support"). One text frame is
 * one JSON-RPC message. The client authenticates on the upgrade exactly as for /gw/{server}/mcp (same resource,
 * same tokens, same policy); a refused upgrade is an HTTP answer (401 with the route's challenge, 403, 404),
 * never a socket. Each client message is relayed to the upstream over Streamable HTTP with the upstream's own
 * credential and session (both stay inside the gateway); answers and notifications, JSON or SSE, come back as
 * frames. tools/list results are filtered, denied tools/call answered by the gateway, every message audited.
 * The opening counts against the route's rate limits like any request, and so does each client message after
 * it: a refused one is answered on the socket with the JSON-RPC error a refused HTTP request carries (RATE_LIMITED,
 * with which limit and retry_after), and the socket stays open.
 *
 * Closing the tunnel (by the client, on heartbeat timeout, on an upstream failure) ends the upstream session:
 * Streamable HTTP (MCP 2025-06-18+, "Session Management"): a client that no longer needs a session SHOULD send
 * DELETE to the MCP endpoint with its Mcp-Session-Id. Sent only when the upstream gave a session id.
 *
 * Heartbeat: every GATEWAY_WS_HEARTBEAT_SECONDS the gateway sends a JSON-RPC `ping` request (MCP basic
 * utilities, "Ping": the receiver MUST respond promptly with an empty result) with an id starting
 * `chittyauth-heartbeat-`; workerd cannot send protocol-level ping frames. A ping still unanswered when the next
 * one is due closes the socket with 4408. Close codes: 4408 heartbeat timeout, 4502 upstream failed,
 * 1003 binary frame, 1009 message over 1 MiB, 1000 when the client closes.
 */
export const SUBPROTOCOL = 'mcp';
/** Browsers cannot set Authorization on a WebSocket: they may offer the token as a subprotocol `bearer.<token>`. */
const TOKEN_PROTOCOL_PREFIX = 'bearer.';
export const HEARTBEAT_PREFIX = 'chittyauth-heartbeat-';
const DEFAULT_HEARTBEAT_SECONDS = 30;
const MAX_MESSAGE_BYTES = 1 << 20;
const UPSTREAM_TIMEOUT_MS = 120_000;
const MAX_UPSTREAM_BYTES = 16 << 20;

export const CLOSE = { normal: 1000, unsupported: 1003, tooBig: 1009, heartbeat: 4408, upstream: 4502 } as const;

type Background = (p: Promise<unknown>) => void;

interface RpcMessage {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: { name?: unknown };
  result?: { tools?: { name: string }[]; protocolVersion?: unknown };
  error?: unknown;
}

export function heartbeatMs(env: Env): number {
  const seconds = Number(env.GATEWAY_WS_HEARTBEAT_SECONDS ?? DEFAULT_HEARTBEAT_SECONDS);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_HEARTBEAT_SECONDS * 1000;
}

/**
 * The subprotocols a WebSocket handshake offers (RFC 6455 §4.1, Sec-WebSocket-Protocol) and the credential it
 * carries: the Authorization header, else a `bearer.<token>` subprotocol. Every WebSocket door reads it here.
 */
export function upgradeCredential(request: Request): { offered: string[]; authorization: string | null } {
  const offered = (request.headers.get('sec-websocket-protocol') ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const fromProtocol = offered.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX))?.slice(TOKEN_PROTOCOL_PREFIX.length);
  return { offered, authorization: request.headers.get('authorization') ?? (fromProtocol ? `Bearer ${fromProtocol}` : null) };
}

export async function handleWebSocket(request: Request, env: Env, db: DB, route: GatewayRoute, waitUntil: Background): Promise<Response> {
  // RFC 6455 §4.1: the opening handshake is a GET with Upgrade: websocket.
  if (request.method !== 'GET' || request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
    return new Response(JSON.stringify({ error: 'upgrade_required', message: 'Open a WebSocket (GET with Upgrade: websocket, subprotocol mcp)' }), { status: 426, headers: { upgrade: 'websocket', 'content-type': 'application/json' } });
  }
  const { offered, authorization } = upgradeCredential(request);
  if (!offered.includes(SUBPROTOCOL)) return jsonError(400, 'invalid_request', `Offer the WebSocket subprotocol "${SUBPROTOCOL}"`);
  const gate = await admit(request, env, db, route, authorization, waitUntil);
  if (!gate.ok) return gate.response;
  const a = gate.admitted;
  if (a.row.transport !== 'streamable-http') return jsonError(404, 'wrong_transport', `${a.row.id} is a legacy SSE server: use /gw/${a.row.id}/sse`);
  if (!(await upstreamCredentials(env, db, a.row, a.principal.chittyId))) {
    return new Response(JSON.stringify({ error: 'connection_required', message: needsConnectionMessage(env, a.row), connect_url: connectUrl(env, a.row.id) }), { status: 403, headers: { 'content-type': 'application/json' } });
  }

  const pair = new WebSocketPair();
  const socket = pair[1];
  socket.accept();
  new Tunnel(env, db, a, socket, waitUntil).start();
  // RFC 6455 §4.2.2: the server answers with one of the offered subprotocols (never the token).
  return new Response(null, { status: 101, webSocket: pair[0], headers: { 'sec-websocket-protocol': SUBPROTOCOL } });
}

class Tunnel {
  private session: string | null = null;
  private protocolVersion: string | null = null;
  private closed = false;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private pendingPing: string | null = null;
  private pings = 0;
  private readonly inflight = new Set<AbortController>();

  constructor(
    private readonly env: Env,
    private readonly db: DB,
    private readonly a: Admitted,
    private readonly socket: WebSocket,
    private readonly waitUntil: Background,
  ) {}

  start() {
    this.socket.addEventListener('message', (event) => void this.onMessage(event.data).catch((error) => this.close(CLOSE.upstream, `gateway error: ${errorText(error)}`)));
    // RFC 6455 §5.5.1: an endpoint that receives a Close frame sends one back.
    this.socket.addEventListener('close', () => this.close(CLOSE.normal, 'closed by the client'));
    this.socket.addEventListener('error', () => this.cleanup());
    this.heartbeat = setInterval(() => this.beat(), heartbeatMs(this.env));
  }

  private beat() {
    if (this.pendingPing) return this.close(CLOSE.heartbeat, 'heartbeat timeout: the client did not answer ping');
    this.pendingPing = `${HEARTBEAT_PREFIX}${++this.pings}`;
    this.send({ jsonrpc: '2.0', id: this.pendingPing, method: 'ping' });
  }

  private send(message: unknown) {
    if (!this.closed) this.socket.send(JSON.stringify(message));
  }

  /** RFC 6455 §7.1.6: a close reason is at most 123 bytes of UTF-8. */
  close(code: number, reason: string) {
    if (this.closed) return;
    this.closed = true;
    try {
      this.socket.close(code, reason.slice(0, 120));
    } catch {
      // already closing
    }
    this.cleanup();
  }

  /** Automatic cleanup: the heartbeat stops, upstream requests are aborted, the upstream session is ended. */
  private cleanup() {
    this.closed = true;
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    for (const c of this.inflight) c.abort();
    this.inflight.clear();
    const session = this.session;
    this.session = null;
    // A bridge session (bridge.ts) lives only in the tunnel: there is no upstream session to end.
    if (session && !isBridgeSession(session)) {
      // Streamable HTTP "Session Management": clients that no longer need a session SHOULD end it with DELETE.
      this.waitUntil(this.endSession(session).then((r) => r?.body?.cancel()));
    }
  }

  private async onMessage(data: string | ArrayBuffer) {
    if (this.closed) return;
    if (typeof data !== 'string') return this.close(CLOSE.unsupported, 'binary frames are not supported: send JSON-RPC as text');
    if (data.length > MAX_MESSAGE_BYTES) return this.close(CLOSE.tooBig, 'MCP messages are limited to 1 MiB');
    let message: RpcMessage;
    try {
      message = JSON.parse(data);
    } catch {
      return this.send(rpcErrorMessage(null, -32700, 'Parse error: the message is not JSON'));
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return this.send(rpcErrorMessage(null, -32600, 'Invalid request: send one JSON-RPC message per frame (no batches)'));
    }
    if (this.pendingPing !== null && message.id === this.pendingPing && message.method === undefined) {
      this.pendingPing = null; // the client is alive; heartbeat answers stay here
      return;
    }
    const started = Date.now();
    const method = typeof message.method === 'string' ? message.method : 'response';
    // Each client message counts against the per-user and per-server limits, as a request to /gw/{server}/mcp does.
    const limited = this.a.take({ method, transport: 'websocket' });
    if (limited) {
      // A notification (no id) gets no answer (JSON-RPC 2.0 §4.1): it is dropped.
      if (message.id !== undefined) this.send(rateLimitedMessage(limited, this.a.row.id, message.id));
      return;
    }
    const tool = message.method === 'tools/call' ? (typeof message.params?.name === 'string' ? message.params.name : '') : undefined;
    const audit = (outcome: 'success' | 'denied' | 'failure', detail: Record<string, unknown> = {}) =>
      this.a.audit(outcome, { method, tool, transport: 'websocket', ...detail, duration_ms: Date.now() - started });
    if (tool !== undefined) {
      const refusal = this.a.refusal(tool);
      if (refusal) {
        await audit('denied');
        return message.id === undefined ? undefined : this.send(rpcErrorMessage(message.id, RPC_DENIED, refusal));
      }
    }

    const abort = new AbortController();
    this.inflight.add(abort);
    try {
      const res = await this.relayed(message, data, abort);
      if (!res) {
        this.waitUntil(audit('failure', { reason: 'connection_required' }));
        if (message.id !== undefined) this.send(rpcErrorMessage(message.id, RPC_NEEDS_CONNECTION, needsConnectionMessage(this.env, this.a.row), { connect_url: connectUrl(this.env, this.a.row.id) }));
        return;
      }
      await this.relay(message, res, (outcome, status) => this.waitUntil(audit(outcome, { status })));
    } catch (error) {
      if (this.closed) return;
      this.waitUntil(audit('failure', { error: errorText(error) }));
      this.close(CLOSE.upstream, `upstream failed: ${errorText(error)}`);
    } finally {
      this.inflight.delete(abort);
    }
  }

  /**
   * One client message to the upstream through bridge.ts, as /gw/{server}/mcp sends it: as it came, or across MCP
   * generations when the client and the upstream speak different ones. Null when an OAuth upstream needs the user to connect.
   */
  private async relayed(message: RpcMessage, body: string, abort: AbortController): Promise<Response | null> {
    const credentials = await upstreamCredentials(this.env, this.db, this.a.row, this.a.principal.chittyId);
    if (!credentials) return null;
    const forwarded = new Headers({ accept: 'application/json, text/event-stream', 'content-type': 'application/json' });
    if (this.protocolVersion) forwarded.set('mcp-protocol-version', this.protocolVersion);
    return relay({
      serverId: this.a.row.id,
      chittyId: this.a.principal.chittyId,
      serverName: this.a.row.name,
      request: new Request(this.a.row.mcp_url, { method: 'POST', headers: forwarded }),
      message: message as Parameters<typeof relay>[0]['message'],
      body,
      session: this.session,
      forwarded,
      background: this.waitUntil,
      send: (hop) => this.sendUpstream(hop, credentials, abort),
    });
  }

  /** Ends the upstream session (Streamable HTTP "Session Management": DELETE with its Mcp-Session-Id). */
  private async endSession(session: string): Promise<Response | null> {
    const credentials = await upstreamCredentials(this.env, this.db, this.a.row, this.a.principal.chittyId);
    if (!credentials) return null;
    const headers = new Headers({ 'mcp-session-id': session });
    if (this.protocolVersion) headers.set('mcp-protocol-version', this.protocolVersion);
    return this.sendUpstream({ method: 'DELETE', headers }, credentials, new AbortController());
  }

  /** One HTTP request to the upstream with the user's upstream credential, ended by `abort` or after UPSTREAM_TIMEOUT_MS. */
  private async sendUpstream(hop: Hop, credentials: Headers, abort: AbortController): Promise<Response> {
    const headers = new Headers(hop.headers);
    for (const [name, value] of credentials) headers.set(name, value);
    const timeout = setTimeout(() => abort.abort(new Error('upstream timed out')), UPSTREAM_TIMEOUT_MS);
    try {
      return await guardedFetch(this.env, { timeoutMs: UPSTREAM_TIMEOUT_MS, maxBytes: MAX_UPSTREAM_BYTES })(this.a.row.mcp_url, { method: hop.method, headers, body: hop.body, signal: abort.signal });
    } finally {
      clearTimeout(timeout);
    }
  }

  private async relay(message: RpcMessage, res: Response, audit: (outcome: 'success' | 'failure', status: number) => void) {
    if (res.status === 401 && this.a.row.auth_type === 'oauth') {
      await res.body?.cancel();
      await markNeedsReconnect(this.db, this.a.principal.chittyId, this.a.row.id);
      audit('failure', 401);
      if (message.id !== undefined) this.send(rpcErrorMessage(message.id, RPC_NEEDS_CONNECTION, needsConnectionMessage(this.env, this.a.row), { connect_url: connectUrl(this.env, this.a.row.id) }));
      return;
    }
    const session = res.headers.get('mcp-session-id');
    if (session) this.session = session;
    const type = res.headers.get('content-type') ?? '';
    audit(res.ok ? 'success' : 'failure', res.status);
    if (type.includes('text/event-stream') && res.body) {
      const events = mapSseEvents(res.body, (e) => {
        if (e.event === undefined || e.event === 'message') this.fromUpstream(e.data, message);
        return '';
      });
      const reader = events.getReader();
      while (!(await reader.read()).done && !this.closed);
      return;
    }
    if (type.includes('application/json')) return this.fromUpstream(await res.text(), message);
    await res.body?.cancel();
    // 202 Accepted answers notifications and responses; anything else without JSON-RPC in it is a failure.
    if (!res.ok) throw new Error(`the upstream answered HTTP ${res.status}`);
  }

  private fromUpstream(data: string, request: RpcMessage) {
    let parsed: RpcMessage | RpcMessage[];
    try {
      parsed = JSON.parse(data);
    } catch {
      return; // not JSON-RPC: nothing a client could use
    }
    for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
      if (Array.isArray(m.result?.tools)) m.result.tools = m.result.tools.filter((t) => this.a.toolFilter(t.name));
      if (request.method === 'initialize' && m.id === request.id && typeof m.result?.protocolVersion === 'string') this.protocolVersion = m.result.protocolVersion;
      this.send(m);
    }
  }
}

const errorText = (error: unknown) => (error instanceof Error ? error.message.slice(0, 100) : 'error');
