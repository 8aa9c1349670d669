import { DurableObject } from 'cloudflare:workers';
import { authenticate, type AuthResult } from '../auth/authenticate';
import { END_PATH, type SocketEnding } from '../auth/live-sockets';
import type { RequestContext } from '../context';
import { getDb } from '../db/schema';
import type { Env } from '../env';
import { RPC_DENIED } from '../gateway/admission';
import { mapSseEvents } from '../gateway/sse-events';
import { HEARTBEAT_PREFIX, heartbeatMs, SUBPROTOCOL } from '../gateway/websocket';
import { mcpResource } from '../oauth/metadata';
import { unauthorizedChallenge } from '../oauth/challenge';
import { handleMcp } from './mcp';
import { encodeHeaderValue, isObject, mcpNameField } from './mcp-wire';

/**
 * MCP over WebSocket at /mcp: the sockets of one user (one Durable Object per ChittyID, as the sync hub), held
 * with the WebSocket Hibernation API, so an idle socket costs nothing: the object may be evicted from memory
 * while its sockets stay open, and wakes for a frame, an alarm or a revocation.
 *
 * One text frame is one JSON-RPC message, answered by `handleMcp`, the very function behind the HTTP door: each
 * frame becomes a POST /mcp with the credential presented on the upgrade, so it is authenticated, guarded and
 * audited as an HTTP request would be, with the same tools and errors. Its answer (JSON, or each message of an
 * event stream) goes back as frames; notifications and responses get none (HTTP 202).
 *
 * Close codes: 4401 the credential ended (revoked, expired, account disabled; the reason says which), 4408 a
 * heartbeat ping went unanswered, 1003 a binary frame, 1009 a frame over 1 MiB.
 */
export const CLOSE = { unsupported: 1003, tooBig: 1009, credential: 4401, heartbeat: 4408 } as const;

const MAX_MESSAGE_BYTES = 1 << 20;
/** How long an ended credential is remembered, so an upgrade authenticated from a stale cache cannot slip in (db/cache.ts CACHE_TTL_MS is 10 s). */
const ENDED_TTL_MS = 5 * 60_000;
const ENDED_PREFIX = 'ended:';
export const CONNECT_PATH = '/connect';
export const SOCKET_INFO_HEADER = 'x-chittyauth-socket';

/** What the upgrade learned, kept with the socket (its attachment survives hibernation; it is not written to storage). */
export interface SocketInfo {
  /** The bearer credential presented on the upgrade: every frame is authenticated with it again. */
  token: string;
  chittyId: string;
  credentialId: string;
  /** The OAuth grant an access token was issued under: ending the grant ends the socket too. */
  grantId: string | null;
  /** Epoch ms when the credential expires (the socket closes then), or null. */
  expiresAt: number | null;
  origin: string | null;
  ip: string | null;
  userAgent: string | null;
  /** The version a 2025 client negotiated with initialize, sent as MCP-Protocol-Version on its later frames. */
  protocolVersion: string | null;
  /** The last frame from the client (epoch ms): a socket in use needs no heartbeat. */
  lastSeen: number;
  ping: { id: string; at: number } | null;
  pings: number;
}

type Message = { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown; result?: { protocolVersion?: unknown } };

const infoOf = (ws: WebSocket) => ws.deserializeAttachment() as SocketInfo | null;

/** RFC 6455 §7.1.6: a close reason is at most 123 bytes of UTF-8. */
function closeSocket(ws: WebSocket, code: number, reason: string) {
  try {
    ws.close(code, reason.slice(0, 120));
  } catch {
    // already closing
  }
}

export class McpSockets extends DurableObject<Env> {
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === CONNECT_PATH) return this.#connect(request);
    if (url.pathname === END_PATH && request.method === 'POST') return Response.json({ closed: await this.#end((await request.json()) as SocketEnding) });
    return new Response('not found', { status: 404 });
  }

  /** The upgrade, already authenticated by the Worker (mcp-websocket.ts), with what it learned in a header. */
  async #connect(request: Request): Promise<Response> {
    const info = JSON.parse(request.headers.get(SOCKET_INFO_HEADER) ?? 'null') as SocketInfo;
    // A credential ended moments ago may still pass an isolate's cache: refuse it as the HTTP door would.
    const ended = await this.ctx.storage.get([`${ENDED_PREFIX}${info.credentialId}`, ...(info.grantId ? [`${ENDED_PREFIX}${info.grantId}`] : [])]);
    if (ended.size > 0) return unauthorizedChallenge(this.env, 'revoked');
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server, info.grantId ? [info.credentialId, info.grantId] : [info.credentialId]);
    try {
      server.serializeAttachment(info);
    } catch {
      closeSocket(server, 1011, 'the credential is too large to hold');
      return Response.json({ error: 'request_header_fields_too_large', message: 'This credential is too large for a WebSocket: use the HTTP door (POST /mcp)' }, { status: 431 });
    }
    await this.#schedule(Date.now() + heartbeatMs(this.env), info.expiresAt);
    // RFC 6455 §4.2.2: the server answers with one of the offered subprotocols (never the token).
    return new Response(null, { status: 101, webSocket: client, headers: { 'sec-websocket-protocol': SUBPROTOCOL } });
  }

  /** A revocation: those sockets close now, and the credentials are remembered for a while (see #connect). */
  async #end(ending: SocketEnding): Promise<number> {
    if (!('credentials' in ending)) return this.#recheck(Date.now());
    const sockets = ending.credentials === 'all' ? this.#open() : ending.credentials.flatMap((id) => this.ctx.getWebSockets(id)).filter((ws) => ws.readyState === WebSocket.OPEN);
    for (const ws of sockets) closeSocket(ws, CLOSE.credential, ending.reason);
    if (Array.isArray(ending.credentials)) {
      const now = Date.now();
      for (let i = 0; i < ending.credentials.length; i += 100) {
        await this.ctx.storage.put(Object.fromEntries(ending.credentials.slice(i, i + 100).map((id) => [`${ENDED_PREFIX}${id}`, now])));
      }
      await this.#schedule(now + ENDED_TTL_MS, null);
    }
    return sockets.length;
  }

  #open = () => this.ctx.getWebSockets().filter((ws) => ws.readyState === WebSocket.OPEN);

  /** Authenticates every socket's credential again (once per credential); those that fail or expired close. How many closed. */
  async #recheck(now: number): Promise<number> {
    const checks = new Map<string, Promise<AuthResult>>();
    let closed = 0;
    for (const ws of this.#open()) {
      const info = infoOf(ws);
      if (!info) continue;
      if (info.expiresAt !== null && info.expiresAt <= now) {
        closeSocket(ws, CLOSE.credential, 'credential expired');
        closed++;
        continue;
      }
      if (!checks.has(info.token)) checks.set(info.token, authenticate(this.env, getDb(this.env.DB), `Bearer ${info.token}`, mcpResource(this.env), this.#waitUntil));
      const auth = await checks.get(info.token)!;
      if (!auth.ok) {
        closeSocket(ws, CLOSE.credential, `credential ${auth.reason.replace('_', ' ')}`);
        closed++;
      }
    }
    return closed;
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const info = infoOf(ws);
    if (!info) return;
    if (typeof data !== 'string') return closeSocket(ws, CLOSE.unsupported, 'binary frames are not supported: send JSON-RPC as text');
    if (data.length > MAX_MESSAGE_BYTES || new TextEncoder().encode(data).length > MAX_MESSAGE_BYTES) return closeSocket(ws, CLOSE.tooBig, 'MCP messages are limited to 1 MiB');
    let message: Message | Message[] | undefined;
    try {
      message = JSON.parse(data);
    } catch {
      message = undefined; // handleMcp answers with its parse error
    }
    info.lastSeen = Date.now();
    if (info.ping && isObject(message) && message.id === info.ping.id && message.method === undefined) {
      info.ping = null; // the client is alive; heartbeat answers stay here
      return ws.serializeAttachment(info);
    }
    ws.serializeAttachment(info);
    if (info.expiresAt !== null && info.expiresAt <= Date.now()) return closeSocket(ws, CLOSE.credential, 'credential expired');
    try {
      await this.#answer(ws, message, await handleMcp(this.#asRequest(info, data, message), this.#context(info)));
    } catch (error) {
      // As the Worker's top level answers an unexpected error with a generic 500: logged, and a generic JSON-RPC error.
      console.error('MCP WebSocket frame failed', error);
      const id = isObject(message) ? message.id : undefined;
      if (id !== undefined && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32603, message: 'Internal error' } }));
    }
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    // RFC 6455 §5.5.1: an endpoint that receives a Close frame sends one back (1005/1006 are never sent).
    closeSocket(ws, code === 1005 || code === 1006 ? 1000 : code, 'closed by the client');
  }

  /**
   * Every heartbeat interval (and when a credential expires): each socket's credential is authenticated again
   * (catching endings nobody announced, such as an OAuth grant revoked elsewhere, within one interval), expired
   * ones close, and a socket silent for a whole interval gets a JSON-RPC ping (MCP basic utilities, "Ping"); one
   * still unanswered at the next check closes with 4408. With no socket open the alarm stops and the object sleeps.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const interval = heartbeatMs(this.env);
    const due = interval * 0.9; // alarms fire a little early or late
    await this.#recheck(now);
    let nextExpiry: number | null = null;
    for (const ws of this.#open()) {
      const info = infoOf(ws);
      if (!info) continue;
      if (info.ping && now - info.ping.at >= due) {
        closeSocket(ws, CLOSE.heartbeat, 'heartbeat timeout: the client did not answer ping');
        continue;
      }
      if (!info.ping && now - info.lastSeen >= due) {
        info.ping = { id: `${HEARTBEAT_PREFIX}${++info.pings}`, at: now };
        ws.serializeAttachment(info);
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: info.ping.id, method: 'ping' }));
      }
      if (info.expiresAt !== null) nextExpiry = nextExpiry === null ? info.expiresAt : Math.min(nextExpiry, info.expiresAt);
    }
    const open = this.#open().length > 0;
    const oldestEnded = await this.#pruneEnded(now);
    const next = Math.min(open ? now + interval : Number.POSITIVE_INFINITY, oldestEnded === null ? Number.POSITIVE_INFINITY : oldestEnded + ENDED_TTL_MS);
    if (Number.isFinite(next)) await this.#schedule(next, open ? nextExpiry : null);
  }

  /** Forgets ended credentials older than ENDED_TTL_MS; the time the oldest remaining one ended, or null. */
  async #pruneEnded(now: number): Promise<number | null> {
    const ended = await this.ctx.storage.list<number>({ prefix: ENDED_PREFIX });
    const old = [...ended].filter(([, at]) => now - at >= ENDED_TTL_MS).map(([key]) => key);
    for (let i = 0; i < old.length; i += 100) await this.ctx.storage.delete(old.slice(i, i + 100));
    const left = [...ended.values()].filter((at) => now - at < ENDED_TTL_MS);
    return left.length ? Math.min(...left) : null;
  }

  /** Moves the alarm earlier when `at` (or the expiry) comes before the one set. */
  async #schedule(at: number, expiresAt: number | null) {
    const next = expiresAt === null ? at : Math.min(at, expiresAt);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || next < current) await this.ctx.storage.setAlarm(next);
  }

  /**
   * The frame as the HTTP request the HTTP door would get. The standard headers that Streamable HTTP derives from
   * the message (MCP 2026-07-28 "Standard Headers": MCP-Protocol-Version from the _meta envelope, Mcp-Method,
   * Mcp-Name) are derived here the same way; a 2025 client's frames carry the version it negotiated.
   */
  #asRequest(info: SocketInfo, data: string, message: Message | Message[] | undefined): Request {
    const headers = new Headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${info.token}` });
    if (info.origin) headers.set('origin', info.origin);
    const params = isObject(message) && isObject(message.params) ? message.params : undefined;
    const claimed = isObject(params?._meta) ? params._meta['io.modelcontextprotocol/protocolVersion'] : undefined;
    if (isObject(message) && typeof message.method === 'string' && message.id !== undefined && typeof claimed === 'string') {
      headers.set('mcp-protocol-version', claimed);
      headers.set('mcp-method', message.method);
      const field = mcpNameField(message.method);
      const name = field === undefined ? undefined : params?.[field];
      if (typeof name === 'string') headers.set('mcp-name', encodeHeaderValue(name));
    } else if (info.protocolVersion) {
      headers.set('mcp-protocol-version', info.protocolVersion);
    }
    return new Request(mcpResource(this.env), { method: 'POST', headers, body: data });
  }

  #context(info: SocketInfo): RequestContext {
    return {
      env: this.env,
      db: getDb(this.env.DB),
      door: 'mcp',
      audience: mcpResource(this.env),
      authorization: `Bearer ${info.token}`,
      ip: info.ip,
      userAgent: info.userAgent,
      accessAssertion: null,
      waitUntil: this.#waitUntil,
    };
  }

  #waitUntil = (p: Promise<unknown>) => this.ctx.waitUntil(p.catch((e) => console.error('background task failed', e)));

  /** handleMcp's HTTP answer as frames. */
  async #answer(ws: WebSocket, message: Message | Message[] | undefined, response: Response): Promise<void> {
    const send = (text: string) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(text);
    };
    if (response.status === 401) {
      // The credential stopped authenticating between frames: the socket ends, as the HTTP door would refuse.
      const body = (await response.json().catch(() => null)) as { error_description?: string } | null;
      return closeSocket(ws, CLOSE.credential, body?.error_description ?? 'credential invalid');
    }
    const type = response.headers.get('content-type') ?? '';
    if (type.includes('text/event-stream') && response.body) {
      const reader = mapSseEvents(response.body, (e) => {
        if (e.event === undefined || e.event === 'message') send(e.data);
        return '';
      }).getReader();
      while (!(await reader.read()).done);
      return;
    }
    const text = await response.text();
    if (!text) return; // 202: a notification or a response
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      answer = undefined;
    }
    if (Array.isArray(answer) || (isObject(answer) && answer.jsonrpc === '2.0')) {
      this.#negotiated(ws, message, answer);
      return send(text);
    }
    // An HTTP refusal that is not JSON-RPC (403 insufficient_scope): the same refusal, as this request's JSON-RPC error.
    const id = isObject(message) ? message.id : undefined;
    if (id === undefined) return;
    const refusal = isObject(answer) ? answer : {};
    const description = typeof refusal.error_description === 'string' ? refusal.error_description : typeof refusal.message === 'string' ? refusal.message : `HTTP ${response.status}`;
    const challenge = response.headers.get('www-authenticate');
    send(JSON.stringify({ jsonrpc: '2.0', id, error: { code: RPC_DENIED, message: description, data: { status: response.status, ...refusal, ...(challenge ? { www_authenticate: challenge } : {}) } } }));
  }

  /** A 2025 client's initialize result names the version its later frames carry. */
  #negotiated(ws: WebSocket, message: Message | Message[] | undefined, answer: unknown) {
    if (!isObject(message) || message.method !== 'initialize' || !isObject(answer)) return;
    const version = (answer as Message).result?.protocolVersion;
    const info = infoOf(ws);
    if (!info || typeof version !== 'string') return;
    info.protocolVersion = version;
    ws.serializeAttachment(info);
  }
}
