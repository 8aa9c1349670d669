import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, admin, ORIGIN, rest, user, type Caller } from '../../test/workers/helpers';
import { authorizeAsBrowser, Browser, fullFlow, REDIRECT, registerClient, token } from '../../test/workers/oauth-helpers';

/** The gateway: /gw/{server}/mcp in front of registered upstream MCP servers (test/fixtures/third-parties.ts). */
let root: Caller;
let n = 0;
const route = (serverId: string) => `${ORIGIN}/gw/${serverId}/mcp`;

async function registerUpstream(mcp: string, auth: Record<string, unknown> = { type: 'none' }) {
  const server_id = `gw-${++n}-${crypto.randomUUID().slice(0, 6)}`;
  const res = await rest('POST', '/v1/servers/register', { server_id, name: 'Upstream', endpoints: { mcp }, auth }, root.token);
  expect(res.status).toBe(200);
  return server_id;
}

/** An OAuth access token whose audience is one gateway route. */
async function routeToken(serverId: string, who: { username: string; password: string } = { username: 'admin', password: ADMIN_PASSWORD }) {
  const client = await registerClient();
  const flow = await authorizeAsBrowser({ clientId: client.body.client_id, resource: route(serverId), username: who.username, password: who.password, browser: new Browser() });
  const t = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: client.body.client_id, redirect_uri: REDIRECT, resource: route(serverId) });
  expect(t.status).toBe(200);
  return t.body.access_token as string;
}

async function rpc(serverId: string, method: string, params: unknown, bearer: string, headers: Record<string, string> = {}) {
  const res = await SELF.fetch(route(serverId), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', authorization: `Bearer ${bearer}`, ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const text = await res.text();
  const data = text.startsWith('{') ? JSON.parse(text) : JSON.parse(text.split('\n').filter((l) => l.startsWith('data:')).at(-1)!.slice(5));
  return { status: res.status, headers: res.headers, body: data };
}

beforeAll(async () => {
  root = await admin();
});

describe('gateway route as a protected resource', () => {
  it('answers 401 with the route’s own resource metadata, which names the route as the resource', async () => {
    const serverId = await registerUpstream('https://mcp.example/mcp');
    const res = await SELF.fetch(route(serverId), { method: 'POST', body: '{}' });
    expect(res.status).toBe(401);
    const metadataUrl = `${ORIGIN}/.well-known/oauth-protected-resource/gw/${serverId}/mcp`;
    expect(res.headers.get('www-authenticate')).toContain(`resource_metadata="${metadataUrl}"`);
    const metadata = (await (await SELF.fetch(metadataUrl)).json()) as { resource: string; authorization_servers: string[] };
    expect(metadata).toMatchObject({ resource: route(serverId), authorization_servers: [ORIGIN] });
  });

  it('refuses a token issued for /mcp or for another route', async () => {
    const a = await registerUpstream('https://mcp.example/mcp');
    const b = await registerUpstream('https://mcp.example/mcp');
    const forMcp = (await fullFlow()).tokens.body.access_token;
    const forB = await routeToken(b);
    for (const t of [forMcp, forB]) {
      const res = await rpc(a, 'tools/list', {}, t);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });
});

describe('gateway proxying', () => {
  it('fronts an upstream that speaks only MCP 2026-07-28: its routing headers go through, and a filtered list is private', async () => {
    const serverId = await registerUpstream('https://modern.example/mcp');
    const bearer = await routeToken(serverId);
    const envelope = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'gw-test', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
    const modern = { 'mcp-protocol-version': '2026-07-28' };
    const list = await rpc(serverId, 'tools/list', { _meta: envelope }, bearer, { ...modern, 'mcp-method': 'tools/list' });
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    expect(list.body.result.tools.map((t: { name: string }) => t.name)).toEqual(['shout', 'locate', 'fail', 'countdown']);
    // The upstream said public (the same list for everyone); through the gateway the list depends on the user.
    expect(list.body.result).toMatchObject({ ttlMs: 60_000, cacheScope: 'private' });
    const call = await rpc(serverId, 'tools/call', { name: 'shout', arguments: { message: 'hi' }, _meta: envelope }, bearer, { ...modern, 'mcp-method': 'tools/call', 'mcp-name': 'shout' });
    expect(call.status, JSON.stringify(call.body)).toBe(200);
    expect(call.body.result.content[0].text).toBe('HI');
    const seen = (await (await fetch('https://modern.example/__requests')).json()) as { headers: Record<string, string> }[];
    expect(seen.at(-1)!.headers).toMatchObject({ 'mcp-method': 'tools/call', 'mcp-name': 'shout' });
  });

  it('lists and calls the upstream’s tools, and never hands the upstream the ChittyAuth token', async () => {
    const serverId = await registerUpstream('https://tools.example/mcp', { type: 'header', header_name: 'X-Api-Key', header_value: 'upstream-secret' });
    const bearer = await routeToken(serverId);
    const list = await rpc(serverId, 'tools/list', {}, bearer);
    expect(list.status).toBe(200);
    expect(list.body.result.tools.map((t: { name: string }) => t.name).sort()).toEqual(['add', 'echo']);
    const call = await rpc(serverId, 'tools/call', { name: 'add', arguments: { a: 2, b: 3 } }, bearer);
    expect(call.body.result.content[0].text).toBe('5');

    const seen = (await (await fetch('https://tools.example/__requests')).json()) as { headers: Record<string, string> }[];
    const last = seen.slice(-2);
    expect(last.every((r) => r.headers['x-api-key'] === 'upstream-secret')).toBe(true);
    expect(JSON.stringify(seen)).not.toContain(bearer);
    expect(last.every((r) => !('authorization' in r.headers) && !('cookie' in r.headers))).toBe(true);
  });

  it('hides denied tools from tools/list and refuses calling them, and audits both', async () => {
    const serverId = await registerUpstream('https://mcp.example/mcp');
    const someone = await user(['user']);
    await rest('PUT', `/v1/servers/${serverId}/policy`, {
      access: { view: ['admin', 'user'], connect: ['admin', 'user'], call: ['admin', 'user'], admin: ['admin'] },
      tools: [{ tool: 'add', effect: 'deny', role: 'user' }],
    }, root.token);
    const bearer = await routeToken(serverId, someone);
    const list = await rpc(serverId, 'tools/list', {}, bearer);
    expect(list.body.result.tools.map((t: { name: string }) => t.name)).toEqual(['echo']);
    const denied = await rpc(serverId, 'tools/call', { name: 'add', arguments: { a: 1, b: 1 } }, bearer);
    expect(denied.body.error).toMatchObject({ code: -32003 });
    expect(denied.body.error.message).toContain('not allowed');
    // The denial is written before the answer; the routine list call in the background, so poll for it.
    let events: [string, string][] = [];
    for (let i = 0; i < 20 && events.length < 2; i++) {
      const rows = await env.DB.prepare("SELECT outcome, detail FROM audit_events WHERE action = 'gateway.call' AND actor = ?").bind(someone.chittyId).all<{ outcome: string; detail: string }>();
      events = rows.results.map((e) => [e.outcome, JSON.parse(e.detail).method as string]);
      if (events.length < 2) await new Promise((r) => setTimeout(r, 50));
    }
    expect(events.sort()).toEqual([
      ['denied', 'tools/call'],
      ['success', 'tools/list'],
    ]);
  });

  it('refuses a user whose policy or own switch does not allow connecting', async () => {
    const serverId = await registerUpstream('https://mcp.example/mcp');
    const someone = await user(['user']);
    const bearer = await routeToken(serverId, someone);
    await rest('PUT', `/v1/servers/${serverId}/enabled`, { enabled: false }, someone.token);
    expect((await rpc(serverId, 'tools/list', {}, bearer)).status).toBe(403);
  });

  it('passes server-sent events through as they arrive, not after the upstream finishes', async () => {
    const serverId = await registerUpstream('https://stream.example/mcp');
    const bearer = await routeToken(serverId);
    const res = await SELF.fetch(route(serverId), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${bearer}`, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'countdown', arguments: { steps: 4 }, _meta: { progressToken: 'p1' } } }),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const arrivals: { at: number; text: string }[] = [];
    let buffer = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        arrivals.push({ at: Date.now(), text: buffer.slice(0, end) });
        buffer = buffer.slice(end + 2);
      }
    }
    const progress = arrivals.filter((a) => a.text.includes('notifications/progress'));
    const result = arrivals.find((a) => a.text.includes('liftoff'))!;
    expect(progress).toHaveLength(4);
    // The first progress event reached us well before the upstream produced its last one (150 ms apart).
    expect(result.at - progress[0]!.at).toBeGreaterThanOrEqual(300);
  });

  it('seals upstream session ids to the user, so another user cannot use them', async () => {
    const serverId = await registerUpstream('https://session.example/mcp');
    const bearer = await routeToken(serverId);
    const init = await rpc(serverId, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'test', version: '1' } }, bearer);
    const sealed = init.headers.get('mcp-session-id')!;
    expect(sealed).toBeTruthy();
    const upstreamIds = ((await (await fetch('https://session.example/__requests')).json()) as unknown[]).length;
    expect(upstreamIds).toBeGreaterThan(0);
    const call = await rpc(serverId, 'tools/call', { name: 'echo', arguments: { message: 'same session' } }, bearer, { 'mcp-session-id': sealed });
    expect(call.body.result.content[0].text).toBe('same session');

    const other = await user(['user']);
    const otherBearer = await routeToken(serverId, other);
    const stolen = await rpc(serverId, 'tools/call', { name: 'echo', arguments: { message: 'x' } }, otherBearer, { 'mcp-session-id': sealed }).catch(() => null);
    expect(stolen?.status ?? 404).toBe(404);
  });
});

describe('gateway hostname routes', () => {
  it('encodes a domain as its gateway host', async () => {
    const res = (await (await SELF.fetch(`${ORIGIN}/encode?domain=mcp.atlassian.com`)).json()) as { host: string; url: string };
    expect(res.host).toBe('nvrxaltborwgc43tnfqw4ltdn5wq-enc.gw.chittyauth.test');
    expect(res.url).toBe('http://nvrxaltborwgc43tnfqw4ltdn5wq-enc.gw.chittyauth.test/mcp');
    expect((await SELF.fetch(`${ORIGIN}/encode?domain=not a domain`)).status).toBe(400);
  });

  it('routes the encoded host of a registered domain, with a resource and tokens of its own', async () => {
    const serverId = await registerUpstream('https://stream.example/mcp');
    const { host } = (await (await SELF.fetch(`${ORIGIN}/encode?domain=stream.example`)).json()) as { host: string };
    const resource = `http://${host}/mcp`;
    const metadata = (await (await SELF.fetch(`http://${host}/.well-known/oauth-protected-resource/mcp`)).json()) as { resource: string; authorization_servers: string[] };
    expect(metadata).toMatchObject({ resource, authorization_servers: [ORIGIN] });

    const client = await registerClient();
    const flow = await authorizeAsBrowser({ clientId: client.body.client_id, resource, browser: new Browser() });
    const t = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: client.body.client_id, redirect_uri: REDIRECT, resource });
    expect(t.status).toBe(200);
    const call = (bearer: string) =>
      SELF.fetch(resource, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${bearer}`, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
      });
    const ok = await call(t.body.access_token);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('countdown');
    // A token for the path route of the same server is for another resource.
    expect((await call(await routeToken(serverId))).status).toBe(401);
  });

  it('names an upstream on another port with host:port, apart from the one on the default port', async () => {
    const onPort = await registerUpstream('https://session.example:8443/mcp');
    const encode = async (domain: string) => (await rest('GET', `/v1/gateway/encode?domain=${encodeURIComponent(domain)}`, undefined, root.token)).body;
    const ported = await encode('session.example:8443');
    expect(ported).toMatchObject({ domain: 'session.example:8443', server_id: onPort, path_url: route(onPort) });
    expect(ported.host).toMatch(/^[a-z2-7]+-enc\.gw\.chittyauth\.test$/);
    // The port is part of the name: another port is another (unregistered) upstream.
    expect((await encode('session.example:9443')).server_id).toBeNull();
    const metadata = await SELF.fetch(`http://${ported.host}/.well-known/oauth-protected-resource/mcp`);
    expect(metadata.status).toBe(200);
    expect((await rest('GET', '/v1/gateway/encode?domain=session.example:port', undefined, root.token)).status).toBe(400);
  });

  it('serves nothing for a domain that is not registered', async () => {
    const { host } = (await (await SELF.fetch(`${ORIGIN}/encode?domain=unknown.example`)).json()) as { host: string };
    const res = await SELF.fetch(`http://${host}/mcp`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(404);
  });
});
