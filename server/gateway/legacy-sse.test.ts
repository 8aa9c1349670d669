import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { denyToolForUsers, gatewayAudit, registerGatewayUpstream, resourceToken } from '../../test/workers/gateway-helpers';
import { admin, ORIGIN, user, type Caller } from '../../test/workers/helpers';

/** Legacy HTTP+SSE upstreams (MCP 2024-11-05) through /gw/{server}/sse and /gw/{server}/message (legacy-sse.ts). */
let root: Caller;
const LEGACY = 'https://legacy.example/sse';
const legacyAuth = { type: 'header', header_name: 'X-Api-Key', header_value: 'legacy-secret' };
const sseResource = (serverId: string) => `${ORIGIN}/gw/${serverId}/sse`;

interface Stream {
  status: number;
  headers: Headers;
  /** The next complete event on the stream. */
  next(): Promise<{ event: string; data: string }>;
  endpoint: string;
  close(): Promise<void>;
}

async function open(url: string, bearer: string): Promise<Stream> {
  const res = await SELF.fetch(url, { headers: { accept: 'text/event-stream', authorization: `Bearer ${bearer}` } });
  expect(res.status, await (res.ok ? Promise.resolve('') : res.clone().text())).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const next = async (): Promise<{ event: string; data: string }> => {
    let end: number;
    while ((end = buffer.indexOf('\n\n')) < 0) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`stream ended; left: ${buffer}`);
      buffer += decoder.decode(value, { stream: true });
    }
    const block = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    // Comment-only blocks (the gateway's keep-alive) are no events (HTML Living Standard §9.2.6).
    if (block.split('\n').every((l) => l.startsWith(':'))) return next();
    const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
    const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    return { event, data };
  };
  const first = await next();
  expect(first.event).toBe('endpoint');
  return { status: res.status, headers: res.headers, next, endpoint: first.data, close: () => reader.cancel() };
}

const post = (endpoint: string, message: unknown, bearer: string) =>
  SELF.fetch(new URL(endpoint, ORIGIN), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` }, body: JSON.stringify(message) });

/** Sends a request and waits for its answer on the stream. */
async function request(s: Stream, bearer: string, id: number, method: string, params: unknown = {}) {
  const res = await post(s.endpoint, { jsonrpc: '2.0', id, method, params }, bearer);
  expect(res.status).toBe(202);
  for (;;) {
    const e = await s.next();
    const m = JSON.parse(e.data);
    if (m.id === id) return m;
  }
}

async function initialize(s: Stream, bearer: string) {
  const init = await request(s, bearer, 1, 'initialize', { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'legacy-test', version: '1' } });
  expect(init.result.serverInfo.name).toBe('test-legacy');
  expect((await post(s.endpoint, { jsonrpc: '2.0', method: 'notifications/initialized' }, bearer)).status).toBe(202);
}

beforeAll(async () => {
  root = await admin();
});

describe('legacy SSE route as a protected resource', () => {
  it('answers 401 pointing at the /sse resource’s metadata, which names /sse as the resource', async () => {
    const serverId = await registerGatewayUpstream(root, LEGACY, { transport: 'sse', auth: legacyAuth });
    const res = await SELF.fetch(`${ORIGIN}/gw/${serverId}/sse`, { headers: { accept: 'text/event-stream' } });
    expect(res.status).toBe(401);
    const metadataUrl = `${ORIGIN}/.well-known/oauth-protected-resource/gw/${serverId}/sse`;
    expect(res.headers.get('www-authenticate')).toContain(`resource_metadata="${metadataUrl}"`);
    const metadata = (await (await SELF.fetch(metadataUrl)).json()) as { resource: string; authorization_servers: string[] };
    expect(metadata).toMatchObject({ resource: sseResource(serverId), authorization_servers: [ORIGIN] });
  });

  it('refuses a token issued for the route’s /mcp resource, on the stream and on the message endpoint', async () => {
    const serverId = await registerGatewayUpstream(root, LEGACY, { transport: 'sse', auth: legacyAuth });
    const forMcp = await resourceToken(`${ORIGIN}/gw/${serverId}/mcp`);
    const res = await SELF.fetch(`${ORIGIN}/gw/${serverId}/sse`, { headers: { authorization: `Bearer ${forMcp}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');

    const good = await resourceToken(sseResource(serverId));
    const s = await open(`${ORIGIN}/gw/${serverId}/sse`, good);
    const wrong = await post(s.endpoint, { jsonrpc: '2.0', id: 1, method: 'ping' }, forMcp);
    expect(wrong.status).toBe(401);
    await s.close();
  });

  it('refuses the legacy route for a Streamable HTTP server, naming the right route', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://mcp.example/mcp');
    const res = await SELF.fetch(`${ORIGIN}/gw/${serverId}/sse`, { headers: { authorization: `Bearer ${await resourceToken(sseResource(serverId))}` } });
    expect(res.status).toBe(404);
    expect(await res.text()).toContain(`/gw/${serverId}/mcp`);
  });
});

describe('legacy SSE proxying', () => {
  it('initializes, lists filtered tools, calls an allowed tool and answers a denied one on the stream, without the upstream seeing it', async () => {
    const serverId = await registerGatewayUpstream(root, LEGACY, { transport: 'sse', auth: legacyAuth });
    await denyToolForUsers(root, serverId, 'add');
    const someone = await user(['user']);
    const bearer = await resourceToken(sseResource(serverId), someone);
    const s = await open(`${ORIGIN}/gw/${serverId}/sse`, bearer);
    expect(s.endpoint).toMatch(new RegExp(`^/gw/${serverId}/message\\?session=v1\\.`));
    expect(s.endpoint).not.toContain('sessionId');

    await initialize(s, bearer);
    const list = await request(s, bearer, 2, 'tools/list');
    expect(list.result.tools.map((t: { name: string }) => t.name)).toEqual(['echo']);
    const echo = await request(s, bearer, 3, 'tools/call', { name: 'echo', arguments: { message: 'through the legacy route' } });
    expect(echo.result.content[0].text).toBe('through the legacy route');
    const denied = await request(s, bearer, 4, 'tools/call', { name: 'add', arguments: { a: 1, b: 2 } });
    expect(denied.error).toMatchObject({ code: -32003 });
    expect(denied.error.message).toContain('not allowed');
    await s.close();

    const seen = (await (await fetch('https://legacy.example/__requests')).json()) as { method: string; headers: Record<string, string>; body?: string }[];
    const ours = seen.filter((r) => r.method === 'GET' || r.body?.includes('"method"'));
    expect(JSON.stringify(seen)).not.toContain(bearer);
    expect(ours.every((r) => !('authorization' in r.headers) && !('cookie' in r.headers))).toBe(true);
    expect(seen.filter((r) => r.method === 'GET').every((r) => r.headers['x-api-key'] === 'legacy-secret')).toBe(true);
    // The denied call never reached the upstream: it got a ping under a sealed id instead.
    expect(seen.some((r) => r.body?.includes('"add"'))).toBe(false);
    expect(seen.some((r) => r.body?.includes('"ping"') && r.body.includes('chittyauth-denied.'))).toBe(true);

    const events = await gatewayAudit(someone.chittyId, 6);
    expect(events.map((e) => [e.outcome, e.detail.method, e.detail.tool ?? null])).toEqual(
      expect.arrayContaining([
        ['success', 'GET', null],
        ['success', 'tools/list', null],
        ['success', 'tools/call', 'echo'],
        ['denied', 'tools/call', 'add'],
      ]),
    );
    expect(events.every((e) => e.detail.transport === 'sse' && typeof e.detail.duration_ms === 'number')).toBe(true);
  });

  it('checks every message of a batch', async () => {
    const serverId = await registerGatewayUpstream(root, LEGACY, { transport: 'sse', auth: legacyAuth });
    await denyToolForUsers(root, serverId, 'add');
    const someone = await user(['user']);
    const bearer = await resourceToken(sseResource(serverId), someone);
    const s = await open(`${ORIGIN}/gw/${serverId}/sse`, bearer);
    await initialize(s, bearer);
    const res = await post(s.endpoint, [
      { jsonrpc: '2.0', id: 10, method: 'tools/call', params: { name: 'add', arguments: { a: 1, b: 2 } } },
      { jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'echo', arguments: { message: 'batched' } } },
    ], bearer);
    expect(res.status).toBe(202);
    const answers = new Map<number, any>();
    while (answers.size < 2) {
      const m = JSON.parse((await s.next()).data);
      answers.set(m.id, m);
    }
    expect(answers.get(10).error.code).toBe(-32003);
    expect(answers.get(11).result.content[0].text).toBe('batched');
    await s.close();
  });

  it('refuses a message URL sealed for another user, or altered', async () => {
    const serverId = await registerGatewayUpstream(root, LEGACY, { transport: 'sse', auth: legacyAuth });
    const mine = await resourceToken(sseResource(serverId));
    const s = await open(`${ORIGIN}/gw/${serverId}/sse`, mine);
    const other = await user(['user']);
    const theirs = await resourceToken(sseResource(serverId), other);
    const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };

    const stolen = await post(s.endpoint, ping, theirs);
    expect(stolen.status).toBe(404);
    expect(await stolen.json()).toMatchObject({ error: 'session_not_found' });
    const sealed = new URL(s.endpoint, ORIGIN).searchParams.get('session')!;
    const flipped = sealed.slice(0, -2) + (sealed.at(-2) === 'A' ? 'B' : 'A') + sealed.at(-1);
    expect((await post(`/gw/${serverId}/message?session=${flipped}`, ping, mine)).status).toBe(404);
    expect((await post(`/gw/${serverId}/message`, ping, mine)).status).toBe(404);
    // Another server's route does not take this server's session either.
    const otherServer = await registerGatewayUpstream(root, LEGACY, { transport: 'sse', auth: legacyAuth });
    const otherBearer = await resourceToken(sseResource(otherServer));
    expect((await post(`/gw/${otherServer}/message?session=${sealed}`, ping, otherBearer)).status).toBe(404);
    // The genuine one works.
    expect((await post(s.endpoint, ping, mine)).status).toBe(202);
    expect(JSON.parse((await s.next()).data)).toMatchObject({ id: 1, result: {} });
    await s.close();
  });

  it('refuses bad message bodies with a clear 4xx', async () => {
    const serverId = await registerGatewayUpstream(root, LEGACY, { transport: 'sse', auth: legacyAuth });
    const bearer = await resourceToken(sseResource(serverId));
    const s = await open(`${ORIGIN}/gw/${serverId}/sse`, bearer);
    const raw = (body: string) => SELF.fetch(new URL(s.endpoint, ORIGIN), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` }, body });
    expect((await raw('not json')).status).toBe(400);
    expect((await raw('[]')).status).toBe(400);
    expect((await raw('[1]')).status).toBe(400);
    expect((await SELF.fetch(new URL(s.endpoint, ORIGIN), { headers: { authorization: `Bearer ${bearer}` } })).status).toBe(405);
    await s.close();
  });

  it('does not follow an endpoint on another origin than the upstream', async () => {
    const serverId = await registerGatewayUpstream(root, 'https://sidestep.example/sse', { transport: 'sse' });
    const bearer = await resourceToken(sseResource(serverId));
    const res = await SELF.fetch(`${ORIGIN}/gw/${serverId}/sse`, { headers: { authorization: `Bearer ${bearer}` } });
    expect(res.status).toBe(200);
    // The stream ends instead of announcing a message URL that would lead to https://mcp.example.
    expect(await res.text()).toBe('');
    const refused = (e: { outcome: string; detail: Record<string, any> }) => e.outcome === 'failure' && e.detail.reason === 'foreign_endpoint' && String(e.detail.endpoint).startsWith('https://mcp.example/messages');
    let events = await gatewayAudit(root.chittyId, 1);
    for (let i = 0; i < 40 && !events.some(refused); i++) events = await new Promise((r) => setTimeout(r, 50)).then(() => gatewayAudit(root.chittyId, 1));
    expect(events.some(refused)).toBe(true);
  });

  it('serves the legacy transport on hostname routes, as a resource of its own', async () => {
    await registerGatewayUpstream(root, LEGACY, { transport: 'sse', auth: legacyAuth });
    const { host } = (await (await SELF.fetch(`${ORIGIN}/encode?domain=legacy.example`)).json()) as { host: string };
    const resource = `http://${host}/sse`;
    const metadata = (await (await SELF.fetch(`http://${host}/.well-known/oauth-protected-resource/sse`)).json()) as { resource: string };
    expect(metadata.resource).toBe(resource);
    const bearer = await resourceToken(resource);
    const s = await open(resource, bearer);
    expect(s.endpoint).toMatch(/^\/message\?session=v1\./);
    const res = await SELF.fetch(`http://${host}${s.endpoint}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` }, body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'ping' }) });
    expect(res.status).toBe(202);
    expect(JSON.parse((await s.next()).data)).toMatchObject({ id: 5, result: {} });
    await s.close();
  });
});

describe('legacy SSE keep-alive', () => {
  it('sends a comment every heartbeat interval while the upstream is silent, and relays events around it', async () => {
    const serverId = await registerGatewayUpstream(root, LEGACY, { transport: 'sse', auth: legacyAuth });
    const bearer = await resourceToken(sseResource(serverId));
    const res = await SELF.fetch(`${ORIGIN}/gw/${serverId}/sse`, { headers: { authorization: `Bearer ${bearer}` } });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const started = Date.now();
    // vitest.config.ts sets a 0.4 s heartbeat: two keep-alives within a second or so.
    while ((text.match(/^: keep-alive$/gm)?.length ?? 0) < 2) text += decoder.decode((await reader.read()).value, { stream: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    expect(text).toMatch(/^event: endpoint\ndata: \/gw\//);
    await reader.cancel();
  });
});

describe('legacy SSE rate limits', () => {
  it('counts the stream and each POSTed message, each message of a batch too, and answers 429 with Retry-After', async () => {
    // 4 per minute: the stream, one message, then a batch of two; the next message is refused.
    const serverId = await registerGatewayUpstream(root, LEGACY, { transport: 'sse', auth: legacyAuth, rate_limits: { per_user: { requests: 4, window_seconds: 60 } } });
    const someone = await user(['user']);
    const bearer = await resourceToken(sseResource(serverId), someone);
    const s = await open(`${ORIGIN}/gw/${serverId}/sse`, bearer);
    expect((await request(s, bearer, 1, 'ping')).result).toEqual({});
    // A batch of three is more than the two left: refused whole, and it uses up nothing.
    const ping = (id: number) => ({ jsonrpc: '2.0', id, method: 'ping' });
    const tooBig = await post(s.endpoint, [ping(2), ping(3), ping(4)], bearer);
    expect(tooBig.status).toBe(429);
    expect(await tooBig.json()).toMatchObject({ error: 'rate_limited', limit: 'per_user', requests: 4, window_seconds: 60 });
    expect((await post(s.endpoint, [ping(5), ping(6)], bearer)).status).toBe(202);
    const answered = new Set<number>();
    while (answered.size < 2) answered.add(JSON.parse((await s.next()).data).id);
    expect([...answered].sort()).toEqual([5, 6]);
    const refused = await post(s.endpoint, ping(7), bearer);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(14);
    expect(((await refused.json()) as { message: string }).message).toContain(`your limit of 4 requests per 60 s to ${serverId}`);
    await s.close();
    // Each run of refusals is audited once: the batch's, and after the allowed batch, the ping's.
    const events = await gatewayAudit(someone.chittyId, 4);
    expect(events.filter((e) => e.detail.reason === 'rate_limited').map((e) => [e.outcome, e.detail.method, e.detail.transport])).toEqual([['denied', 'batch', 'sse'], ['denied', 'ping', 'sse']]);
  });
});
