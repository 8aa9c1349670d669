/**
 * End to end: the gateway's tunnels under a real `wrangler dev`, in front of the reference "everything" server
 * (@modelcontextprotocol/server-everything):
 * - legacy HTTP+SSE (MCP 2024-11-05) at /gw/{id}/sse, the upstream being server-everything's own SSE transport,
 *   driven by the MCP SDK v1 SSEClientTransport;
 * - the WebSocket tunnel at /gw/{id}/ws (the `ws` package, a v1 SDK Client over a small Transport), the upstream
 *   being server-everything's Streamable HTTP transport behind a recording proxy, so the test sees what the
 *   gateway sent it: the DELETE that ends the session (Streamable HTTP "Session Management") when the tunnel
 *   closes, by the client or on heartbeat timeout.
 * Through both: tools/list filtered by the portal policy, an allowed call, a denied call refused by the gateway;
 * and each tunnel message counted against the per-user rate limit set through the portal API.
 * One wrangler dev for the file; the heartbeat (and the legacy stream's keep-alive) is 1 s, so a silent client is
 * closed, and a gone one noticed, quickly.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startEverything, type EverythingServer } from '../helpers/everything';
import { startRecordingProxy, type RecordingProxy } from '../helpers/recording-proxy';
import { WebSocketTransport } from '../helpers/ws-transport';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';

const LEGACY_ID = 'e2e-everything-sse';
const WS_ID = 'e2e-everything-ws';
const LIMITED_ID = 'e2e-everything-limited';
/** The tool the policy denies to users: it would show the upstream's environment. */
const DENIED = 'get-env';

let server: TestServer;
let legacy: EverythingServer;
let modern: EverythingServer;
let proxy: RecordingProxy;
let admin: Caller;
let user: Caller;
let key: string;
const clients: Client[] = [];
const sockets: WebSocket[] = [];

const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;
const wsUrl = (id: string) => `${server.url.replace(/^http/, 'ws')}/gw/${id}/ws`;

/** Opens a tunnel; rejects with the HTTP status that refused the upgrade. */
function open(id: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(id), ['mcp'], { headers: { authorization: `Bearer ${key}` } });
    sockets.push(ws);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => reject(Object.assign(new Error(`refused: HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
  });
}

const closedOf = (ws: WebSocket) => new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));

async function eventually<T>(find: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function register(server_id: string, mcp: string, transport: 'sse' | 'streamable-http') {
  const res = await server.rest('POST', '/v1/servers/register', { server_id, name: `E2E ${server_id}`, endpoints: { mcp }, transport, auth: { type: 'none' } }, admin.token);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  // Users may call every tool but DENIED (the portal's policy procedure).
  const policy = await server.rest('PUT', `/v1/servers/${server_id}/policy`, {
    access: { view: ['admin', 'user'], connect: ['admin', 'user'], call: ['admin', 'user'], admin: ['admin'] },
    tools: [{ tool: DENIED, effect: 'deny', role: 'user' }],
  }, admin.token);
  expect(policy.status, JSON.stringify(policy.body)).toBe(200);
}

beforeAll(async () => {
  [server, legacy, modern] = await Promise.all([startTestServer({ vars: { GATEWAY_WS_HEARTBEAT_SECONDS: '1' } }), startEverything(60_000, 'sse'), startEverything()]);
  proxy = await startRecordingProxy(modern.url);
  admin = await server.admin();
  user = await server.account(['user']);
  key = await server.apiKey(user);
  await register(LEGACY_ID, legacy.url, 'sse');
  await register(WS_ID, `${proxy.origin}/mcp`, 'streamable-http');
  await register(LIMITED_ID, `${proxy.origin}/mcp`, 'streamable-http');
  // 4 requests a minute for each user: the tunnel's opening and three messages.
  const limited = await server.rest('PATCH', `/v1/servers/${LIMITED_ID}`, { rate_limits: { per_user: { requests: 4, window_seconds: 60 } } }, admin.token);
  expect(limited.status, JSON.stringify(limited.body)).toBe(200);
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  for (const ws of sockets) ws.terminate();
  await Promise.all([server?.stop(), legacy?.stop(), modern?.stop(), proxy?.close()]);
});

describe('gateway legacy SSE route end to end (/gw/{id}/sse)', () => {
  /** server-everything's SSE transport logs each session's start and end. */
  const sessions = () => ({ connected: legacy.logs().match(/Client Connected: /g)?.length ?? 0, disconnected: legacy.logs().match(/Client Disconnected: /g)?.length ?? 0 });

  it('lists the tools the policy allows, calls one, refuses the denied one, and ends the upstream session when the stream ends', async () => {
    const before = sessions();
    const c = new Client({ name: 'e2e-legacy-sse', version: '1.0.0' });
    clients.push(c);
    await c.connect(new SSEClientTransport(new URL(`${server.url}/gw/${LEGACY_ID}/sse`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
    expect(c.getServerVersion()?.name).toContain('everything');
    expect(sessions().connected).toBe(before.connected + 1);

    const tools = (await c.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['echo', 'get-sum']));
    expect(tools).not.toContain(DENIED);
    expect(text(await c.callTool({ name: 'echo', arguments: { message: 'through the legacy tunnel' } }))).toBe('Echo: through the legacy tunnel');
    const denied = await c.callTool({ name: DENIED, arguments: {} }).then(
      () => null,
      (e: Error) => e,
    );
    expect(denied?.message).toContain('not allowed');
    expect(legacy.logs()).not.toMatch(/"get-env"/);

    expect(sessions().disconnected).toBe(before.disconnected);
    await c.close();
    // The client's stream ended: the gateway notices at its next keep-alive (1 s here) and ends its stream to
    // the upstream, which ends the session there (2024-11-05 has no DELETE: the stream is the session).
    await eventually(() => (sessions().disconnected === before.disconnected + 1 ? true : undefined), 'server-everything to see the session end');
  });
});

describe('gateway WebSocket route end to end (/gw/{id}/ws)', () => {
  const deleteOf = (session: string) => proxy.log.find((r) => r.method === 'DELETE' && r.session === session);
  /** The session the upstream gave the gateway on the initialize that followed `mark`. */
  const sessionAfter = (mark: number) => proxy.log.slice(mark).find((r) => r.rpc === 'initialize' && r.answeredSession)?.answeredSession ?? undefined;

  it('lists the tools the policy allows, calls one, refuses the denied one, and DELETEs the upstream session when the client closes', async () => {
    const mark = proxy.log.length;
    const ws = await open(WS_ID);
    expect(ws.protocol).toBe('mcp');
    const c = new Client({ name: 'e2e-ws-tunnel', version: '1.0.0' });
    clients.push(c);
    await c.connect(new WebSocketTransport(ws));
    const session = sessionAfter(mark);
    expect(session).toBeTruthy();

    const tools = (await c.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['echo', 'get-sum']));
    expect(tools).not.toContain(DENIED);
    expect(text(await c.callTool({ name: 'echo', arguments: { message: 'through the socket' } }))).toBe('Echo: through the socket');
    const calls = proxy.log.filter((r) => r.rpc === 'tools/call').length;
    const denied = await c.callTool({ name: DENIED, arguments: {} }).then(
      () => null,
      (e: Error) => e,
    );
    expect(denied?.message).toContain('not allowed');
    expect(proxy.log.filter((r) => r.rpc === 'tools/call').length).toBe(calls);
    // Every request of the tunnel went in the upstream's session, without the client's credential.
    const ours = proxy.log.slice(mark);
    expect(ours.filter((r) => r.rpc && r.rpc !== 'initialize').every((r) => r.session === session)).toBe(true);
    expect(JSON.stringify(ours.map((r) => r.headers))).not.toContain(key);

    expect(deleteOf(session!)).toBeUndefined();
    const closed = closedOf(ws);
    await c.close();
    expect((await closed).code).toBe(1000);
    const deleted = await eventually(() => deleteOf(session!), 'the DELETE of the upstream session');
    // server-everything knew the session and ended it.
    await eventually(() => deleted.status, 'the upstream to answer the DELETE');
    expect(deleted.status).toBe(200);
  });

  it('DELETEs the upstream session when a client that stops answering pings is closed (4408)', async () => {
    const mark = proxy.log.length;
    const ws = await open(WS_ID);
    const closed = closedOf(ws);
    const answers: Record<string, any>[] = [];
    ws.on('message', (data) => answers.push(JSON.parse(String(data))));
    // The 2025 handshake by hand, then silence: the gateway's heartbeat ping goes unanswered.
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'silent', version: '1' } } }));
    await eventually(() => answers.find((m) => m.id === 1), 'the initialize result');
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    const session = sessionAfter(mark)!;
    expect(session).toBeTruthy();
    const { code, reason } = await closed;
    expect(code).toBe(4408);
    expect(reason).toContain('heartbeat');
    expect(answers.some((m) => m.method === 'ping' && String(m.id).startsWith('chittyauth-heartbeat-'))).toBe(true);
    await eventually(() => deleteOf(session), 'the DELETE of the upstream session');
  });

  it('counts each message against the per-user limit: a refused one is answered on the open socket with RATE_LIMITED', async () => {
    const ws = await open(LIMITED_ID);
    const c = new Client({ name: 'e2e-ws-limited', version: '1.0.0' });
    clients.push(c);
    // The opening, initialize, notifications/initialized and tools/list: the four the limit allows.
    await c.connect(new WebSocketTransport(ws));
    expect((await c.listTools()).tools.length).toBeGreaterThan(0);
    const calls = proxy.log.filter((r) => r.rpc === 'tools/call').length;
    const refused = await c.callTool({ name: 'echo', arguments: { message: 'one too many' } }).then(
      () => null,
      (e: Error & { code?: number; data?: Record<string, unknown> }) => e,
    );
    expect(refused?.code).toBe(-32029);
    expect(refused?.message).toContain(`your limit of 4 requests per 60 s to ${LIMITED_ID}`);
    expect(refused?.data).toMatchObject({ limit: 'per_user', requests: 4, window_seconds: 60 });
    expect(Number(refused?.data?.retry_after)).toBeGreaterThanOrEqual(1);
    expect(proxy.log.filter((r) => r.rpc === 'tools/call').length).toBe(calls);
    // The socket stays open: the next message is answered (refused again), not dropped with the connection.
    expect(ws.readyState).toBe(WebSocket.OPEN);
    await expect(c.ping()).rejects.toMatchObject({ code: -32029 });
    expect(ws.readyState).toBe(WebSocket.OPEN);
    // And a new tunnel is refused at the upgrade, as a request over the limit.
    await expect(open(LIMITED_ID)).rejects.toMatchObject({ status: 429 });
    await c.close();
  });
});
