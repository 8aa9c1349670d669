import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { denyToolForUsers, eventually, gatewayAudit, registerGatewayUpstream, resourceToken, upstreamRequests } from '../../test/workers/gateway-helpers';
import { admin, ORIGIN, user, type Caller } from '../../test/workers/helpers';
import { TestSocket } from '../../test/workers/ws-client';

/** The WebSocket tunnel /gw/{server}/ws (websocket.ts); vitest.config.ts sets a 0.4 s heartbeat. */
let root: Caller;
const mcpResource = (serverId: string) => `${ORIGIN}/gw/${serverId}/mcp`;
const wsUrl = (serverId: string) => `${ORIGIN}/gw/${serverId}/ws`;


async function upgrade(serverId: string, headers: Record<string, string>) {
  return SELF.fetch(wsUrl(serverId), { headers: { upgrade: 'websocket', 'sec-websocket-protocol': 'mcp', ...headers } });
}

async function connect(serverId: string, bearer: string, answerPings = true) {
  const res = await upgrade(serverId, { authorization: `Bearer ${bearer}` });
  expect(res.status).toBe(101);
  expect(res.headers.get('sec-websocket-protocol')).toBe('mcp');
  return new TestSocket(res.webSocket!, answerPings);
}

const requestsTo = upstreamRequests;

beforeAll(async () => {
  root = await admin();
});

describe('WebSocket upgrade', () => {
  it('answers 401 with the route’s challenge before any upgrade when there is no token or a token for another resource', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://mcp.example/mcp');
    const none = await upgrade(serverId, {});
    expect(none.status).toBe(401);
    expect(none.webSocket).toBeNull();
    expect(none.headers.get('www-authenticate')).toContain(`resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource/gw/${serverId}/mcp"`);
    const forSse = await resourceToken(`${ORIGIN}/gw/${serverId}/sse`);
    const wrong = await upgrade(serverId, { authorization: `Bearer ${forSse}` });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('refuses a plain request, a handshake without the mcp subprotocol and a foreign Origin', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://mcp.example/mcp');
    const bearer = await resourceToken(mcpResource(serverId));
    expect((await SELF.fetch(wsUrl(serverId), { headers: { authorization: `Bearer ${bearer}` } })).status).toBe(426);
    const noProtocol = await SELF.fetch(wsUrl(serverId), { headers: { upgrade: 'websocket', authorization: `Bearer ${bearer}` } });
    expect(noProtocol.status).toBe(400);
    expect(await noProtocol.text()).toContain('subprotocol');
    expect((await upgrade(serverId, { authorization: `Bearer ${bearer}`, origin: 'https://evil.example' })).status).toBe(403);
  });

  it('takes the token from a bearer.<token> subprotocol (browsers), and answers with mcp only', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://mcp.example/mcp');
    const bearer = await resourceToken(mcpResource(serverId));
    const res = await upgrade(serverId, { 'sec-websocket-protocol': `mcp, bearer.${bearer}` });
    expect(res.status).toBe(101);
    expect(res.headers.get('sec-websocket-protocol')).toBe('mcp');
    const t = new TestSocket(res.webSocket!);
    expect((await t.request(3, 'ping')).result).toEqual({});
    t.ws.close(1000, 'done');
  });
});

describe('WebSocket tunnel', () => {
  it('relays initialize, filtered tools/list and tools/call, answers a denied call itself, and audits each message', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://tools.example/mcp', { auth: { type: 'header', header_name: 'X-Api-Key', header_value: 'upstream-secret' } });
    await denyToolForUsers(root, serverId, 'add');
    const someone = await user(['user']);
    const bearer = await resourceToken(mcpResource(serverId), someone);
    const before = (await requestsTo('https://tools.example')).length;
    const t = await connect(serverId, bearer);
    await t.initialize();
    const list = await t.request(2, 'tools/list');
    expect(list.result.tools.map((x: { name: string }) => x.name)).toEqual(['echo']);
    const echo = await t.request(3, 'tools/call', { name: 'echo', arguments: { message: 'over the socket' } });
    expect(echo.result.content[0].text).toBe('over the socket');
    const denied = await t.request(4, 'tools/call', { name: 'add', arguments: { a: 1, b: 2 } });
    expect(denied.error).toMatchObject({ code: -32003 });
    t.ws.close(1000, 'done');

    const seen = (await requestsTo('https://tools.example')).slice(before);
    expect(seen.length).toBeGreaterThanOrEqual(4);
    expect(seen.every((r) => r.headers['x-api-key'] === 'upstream-secret' && !('authorization' in r.headers))).toBe(true);
    expect(JSON.stringify(seen)).not.toContain(bearer);
    expect(seen.some((r) => r.body?.includes('"add"'))).toBe(false);
    // After initialize the negotiated protocol version goes along (Streamable HTTP requires it).
    expect(seen.filter((r) => r.body?.includes('tools/list')).every((r) => r.headers['mcp-protocol-version'] === '2025-06-18')).toBe(true);

    const events = await gatewayAudit(someone.chittyId, 5);
    expect(events.map((e) => [e.outcome, e.detail.method, e.detail.tool ?? null])).toEqual(
      expect.arrayContaining([
        ['success', 'initialize', null],
        ['success', 'tools/list', null],
        ['success', 'tools/call', 'echo'],
        ['denied', 'tools/call', 'add'],
      ]),
    );
    expect(events.every((e) => e.detail.transport === 'websocket')).toBe(true);
  });

  it('passes streamed notifications through as frames before the result', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://stream.example/mcp');
    const t = await connect(serverId, await resourceToken(mcpResource(serverId)));
    t.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'countdown', arguments: { steps: 3 }, _meta: { progressToken: 'p9' } } }));
    const result = await t.until(() => t.messages.find((m) => m.id === 9));
    expect(result.result.content[0].text).toBe('liftoff');
    const order = t.messages.map((m) => m.method ?? `result:${m.id}`);
    expect(order).toEqual(['notifications/progress', 'notifications/progress', 'notifications/progress', 'result:9']);
    t.ws.close(1000, 'done');
  });

  it('keeps the upstream session inside the gateway: the client never sees its id', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://session.example/mcp');
    const t = await connect(serverId, await resourceToken(mcpResource(serverId)));
    await t.initialize();
    // The stateful upstream answers only within its session: this proves the session id was kept and sent.
    expect((await t.request(5, 'tools/call', { name: 'echo', arguments: { message: 'in session' } })).result.content[0].text).toBe('in session');
    expect(JSON.stringify(t.messages)).not.toMatch(/mcp-session-id/i);
    t.ws.close(1000, 'done');
  });

  it('answers malformed frames with JSON-RPC errors and keeps the socket open', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://mcp.example/mcp');
    const t = await connect(serverId, await resourceToken(mcpResource(serverId)));
    t.ws.send('not json');
    expect((await t.until(() => t.messages.find((m) => m.error?.code === -32700))).id).toBeNull();
    t.ws.send('[{"jsonrpc":"2.0","id":1,"method":"ping"}]');
    expect(await t.until(() => t.messages.find((m) => m.error?.code === -32600))).toBeTruthy();
    expect((await t.request(6, 'ping')).result).toEqual({});
    t.ws.close(1000, 'done');
  });
});

describe('WebSocket heartbeat and cleanup', () => {
  it('pings the client at the configured interval and closes with 4408 when it stops answering', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://mcp.example/mcp');
    const t = await connect(serverId, await resourceToken(mcpResource(serverId)), false);
    const closed = await t.closed;
    expect(closed.code).toBe(4408);
    expect(closed.reason).toContain('heartbeat');
    expect(t.pings).toEqual(['chittyauth-heartbeat-1']);
  });

  it('stays open while the client answers its pings', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://mcp.example/mcp');
    const t = await connect(serverId, await resourceToken(mcpResource(serverId)));
    // Three heartbeats answered: well past the point where an unanswered one closes the socket.
    while (t.pings.length < 3) await new Promise((r) => setTimeout(r, 100));
    expect(t.pings).toEqual(['chittyauth-heartbeat-1', 'chittyauth-heartbeat-2', 'chittyauth-heartbeat-3']);
    expect((await t.request(7, 'ping')).result).toEqual({});
    t.ws.close(1000, 'done');
  });

  it('closes with 4502 when the upstream fails', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://down.example/mcp');
    const t = await connect(serverId, await resourceToken(mcpResource(serverId)));
    t.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }));
    const closed = await t.closed;
    expect(closed.code).toBe(4502);
    expect(closed.reason).toContain('503');
  });
});

describe('WebSocket rate limits', () => {
  it('counts each client message against the per-user limit and answers a refused one on the socket, which stays open', async () => {
    // 3 per minute: the opening and two messages; the third message is refused.
    const serverId = await registerGatewayUpstream(root, 'https://mcp.example/mcp', { rate_limits: { per_user: { requests: 3, window_seconds: 60 } } });
    const someone = await user(['user']);
    const t = await connect(serverId, await resourceToken(mcpResource(serverId), someone));
    const before = (await requestsTo('https://mcp.example')).length;
    expect((await t.request(1, 'ping')).result).toEqual({});
    expect((await t.request(2, 'tools/list')).result.tools.length).toBeGreaterThan(0);
    const refused = await t.request(3, 'tools/call', { name: 'echo', arguments: { message: 'one too many' } });
    expect(refused.error).toMatchObject({ code: -32029, data: { limit: 'per_user', requests: 3, window_seconds: 60 } });
    expect(refused.error.data.retry_after).toBeGreaterThanOrEqual(19);
    expect(refused.error.message).toContain(`your limit of 3 requests per 60 s to ${serverId}`);
    // A refused notification gets no answer; the next request is refused too, on the same open socket.
    t.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }));
    expect((await t.request(4, 'ping')).error.code).toBe(-32029);
    // Heartbeat answers are the gateway's own and never count: the socket outlives two more heartbeats.
    const pings = t.pings.length;
    while (t.pings.length < pings + 2) await new Promise((r) => setTimeout(r, 100));
    expect(t.messages.filter((m) => m.error?.code === -32029).map((m) => m.id)).toEqual([3, 4]);
    t.ws.close(1000, 'done');
    // Only the two allowed messages reached the upstream.
    const seen = (await requestsTo('https://mcp.example')).slice(before).filter((r) => r.method === 'POST');
    expect(seen.map((r) => JSON.parse(r.body!).method)).toEqual(['ping', 'tools/list']);
    // One audit event for the run of refusals.
    const events = await gatewayAudit(someone.chittyId, 3);
    expect(events.filter((e) => e.detail.reason === 'rate_limited')).toEqual([{ outcome: 'denied', detail: expect.objectContaining({ method: 'tools/call', transport: 'websocket', limit: 'per_user' }) }]);
  });

  it('counts the opening: a user over the limit is refused the upgrade with 429', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://mcp.example/mcp', { rate_limits: { per_user: { requests: 1, window_seconds: 60 } } });
    const bearer = await resourceToken(mcpResource(serverId));
    const t = await connect(serverId, bearer);
    const again = await upgrade(serverId, { authorization: `Bearer ${bearer}` });
    expect(again.status).toBe(429);
    expect(again.webSocket).toBeNull();
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    t.ws.close(1000, 'done');
  });
});

describe('WebSocket tunnel end', () => {
  /** The upstream session id the gateway used for the tunnel's calls (the stateful upstream issues one on initialize). */
  const sessionOf = (seen: { method: string; headers: Record<string, string>; body?: string }[], marker: string) => seen.find((r) => r.method === 'POST' && r.body?.includes(marker))?.headers['mcp-session-id'];

  it('ends the upstream session with DELETE and its Mcp-Session-Id when the client closes', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://session.example/mcp');
    const t = await connect(serverId, await resourceToken(mcpResource(serverId)));
    await t.initialize();
    const marker = `closing-${crypto.randomUUID()}`;
    expect((await t.request(5, 'tools/call', { name: 'echo', arguments: { message: marker } })).result.content[0].text).toBe(marker);
    const session = sessionOf(await requestsTo('https://session.example'), marker);
    expect(session).toMatch(/^[0-9a-f-]{36}$/);
    expect((await requestsTo('https://session.example')).some((r) => r.method === 'DELETE' && r.headers['mcp-session-id'] === session)).toBe(false);
    t.ws.close(1000, 'done');
    const deleted = await eventually(async () => (await requestsTo('https://session.example')).find((r) => r.method === 'DELETE' && r.headers['mcp-session-id'] === session), 'the DELETE');
    // Sent as the tunnel's other requests are: the negotiated version, never the client's token.
    expect(deleted.headers['mcp-protocol-version']).toBe('2025-06-18');
    expect(deleted.headers.authorization).toBeUndefined();
  });

  it('ends the upstream session with DELETE when the heartbeat times out', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://session.example/mcp');
    const t = await connect(serverId, await resourceToken(mcpResource(serverId)), false);
    await t.initialize();
    const marker = `heartbeat-${crypto.randomUUID()}`;
    await t.request(6, 'tools/call', { name: 'echo', arguments: { message: marker } });
    const session = sessionOf(await requestsTo('https://session.example'), marker);
    expect(session).toBeTruthy();
    expect((await t.closed).code).toBe(4408);
    await eventually(async () => (await requestsTo('https://session.example')).find((r) => r.method === 'DELETE' && r.headers['mcp-session-id'] === session), 'the DELETE');
  });

  it('sends no DELETE when the upstream gave no session', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://tools.example/mcp', { auth: { type: 'header', header_name: 'X-Api-Key', header_value: 'upstream-secret' } });
    const t = await connect(serverId, await resourceToken(mcpResource(serverId)));
    const before = (await requestsTo('https://tools.example')).length;
    await t.initialize();
    expect((await t.request(7, 'ping')).result).toEqual({});
    t.ws.close(1000, 'done');
    await t.closed;
    await new Promise((r) => setTimeout(r, 300));
    const seen = (await requestsTo('https://tools.example')).slice(before);
    expect(seen.filter((r) => r.method === 'POST').length).toBeGreaterThanOrEqual(2);
    expect(seen.filter((r) => r.method === 'DELETE')).toEqual([]);
  });
});

describe('WebSocket tunnel across MCP generations (bridge.ts)', () => {
  it('a 2025 client in the tunnel reaches an upstream that serves only 2026-07-28, and closing sends it no DELETE', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://modern.example/mcp');
    const bearer = await resourceToken(mcpResource(serverId));
    const t = await connect(serverId, bearer);
    const init = await t.initialize('2025-06-18');
    expect(init.result).toMatchObject({ protocolVersion: '2025-06-18', serverInfo: { name: 'test-modern-upstream' } });
    const call = await t.request(2, 'tools/call', { name: 'locate', arguments: { region: 'ap-south' } });
    expect(call.result.content[0].text).toBe('in ap-south');
    const seen = (await requestsTo('https://modern.example')) as { headers: Record<string, string>; body?: string }[];
    expect(seen.find((r) => r.body?.includes('ap-south'))?.headers).toMatchObject({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'locate', 'mcp-param-region': 'ap-south' });
    const before = (await requestsTo('https://modern.example')).length;
    t.ws.close(1000, 'done');
    await t.closed;
    await new Promise((r) => setTimeout(r, 200));
    expect((await requestsTo('https://modern.example')).slice(before).filter((r) => r.method === 'DELETE')).toEqual([]);
  });
});
