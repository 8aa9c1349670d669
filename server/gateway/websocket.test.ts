import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { denyToolForUsers, gatewayAudit, registerGatewayUpstream, resourceToken } from '../../test/workers/gateway-helpers';
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

const requestsTo = async (origin: string) => (await (await fetch(`${origin}/__requests`)).json()) as { method: string; headers: Record<string, string>; body?: string }[];

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
