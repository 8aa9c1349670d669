import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { connectUpstream, portalBrowser, registerOAuthUpstream } from '../../test/workers/gateway-helpers';
import { admin, apiKey, ORIGIN, rest, type Caller } from '../../test/workers/helpers';

let root: Caller;
let key: string;

async function rpc(serverId: string, method: string, params: unknown) {
  const res = await SELF.fetch(`${ORIGIN}/gw/${serverId}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${key}`, 'mcp-protocol-version': '2025-06-18' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return (await res.json()) as { result?: any; error?: { code: number; message: string; data?: { connect_url: string } } };
}

const upstreamRequests = async () => (await (await fetch('https://secure.example/__requests')).json()) as { headers: Record<string, string> }[];

beforeAll(async () => {
  root = await admin();
  key = await apiKey(root);
});

describe('gateway upstream OAuth', () => {
  it('asks the user to connect, runs the upstream authorization with PKCE, state, resource and iss, then proxies with the upstream’s token', async () => {
    const serverId = await registerOAuthUpstream(root);
    const first = await rpc(serverId, 'tools/list', {});
    expect(first.error?.code).toBe(-32001);
    expect(first.error?.data?.connect_url).toBe(`${ORIGIN}/gw/${serverId}/connect`);

    const browser = await portalBrowser();
    const journey = await connectUpstream(browser, serverId);
    const p = journey.authorizeUrl.searchParams;
    expect([p.get('code_challenge_method'), p.get('resource'), p.get('redirect_uri')]).toEqual(['S256', 'https://secure.example/mcp', `${ORIGIN}/gw/callback`]);
    expect(p.get('state')).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(journey.callback.searchParams.get('iss')).toBe('https://secure.example');
    expect(journey.status).toBe(200);
    expect(journey.html).toContain('Connected');

    const list = await rpc(serverId, 'tools/list', {});
    expect(list.result.tools.map((t: { name: string }) => t.name).sort()).toEqual(['add', 'echo']);
    const call = await rpc(serverId, 'tools/call', { name: 'echo', arguments: { message: 'through the gateway' } });
    expect(call.result.content[0].text).toBe('through the gateway');

    const seen = await upstreamRequests();
    const mcpCalls = seen.filter((r) => r.headers.authorization?.startsWith('Bearer up_at_'));
    expect(mcpCalls.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(seen)).not.toContain(key);
  });

  it('registers as a web application (application_type, SEP-837)', async () => {
    await connectUpstream(await portalBrowser(), await registerOAuthUpstream(root));
    const registrations = (await (await fetch('https://secure.example/__registrations')).json()) as Record<string, unknown>[];
    expect(registrations.at(-1)).toMatchObject({ application_type: 'web', redirect_uris: [`${ORIGIN}/gw/callback`], token_endpoint_auth_method: 'none' });
  });

  it('refuses an upstream whose protected resource metadata names another resource (RFC 9728 §3.3), before any registration', async () => {
    const serverId = await registerOAuthUpstream(root, 'https://mismatch.example/mcp');
    const browser = await portalBrowser();
    const page = await (await browser.fetch(`${ORIGIN}/gw/${serverId}/connect`)).text();
    const approve = await browser.post(`${ORIGIN}/gw/${serverId}/connect`, { csrf_token: /name="csrf_token" value="([^"]+)"/.exec(page)![1]!, action: 'approve' });
    expect(approve.status).toBe(502);
    const text = await approve.text();
    expect(text).toContain('https://elsewhere.example/mcp');
    expect(text).toContain('RFC 9728');
    expect(await (await fetch('https://mismatch.example/__registrations')).json()).toEqual([]);
  });

  it('authenticates to the token endpoint as the registration says: a confidential client with client_secret_basic', async () => {
    const serverId = await registerOAuthUpstream(root, 'https://confidential.example/mcp');
    const journey = await connectUpstream(await portalBrowser(), serverId);
    expect(journey.html).toContain('Connected');
    const call = await rpc(serverId, 'tools/call', { name: 'echo', arguments: { message: 'basic' } });
    expect(call.result.content[0].text).toBe('basic');
    const stored = await env.DB.prepare('SELECT auth_method, client_secret_encrypted FROM gateway_upstream_clients WHERE server_id = ?').bind(serverId).first<{ auth_method: string; client_secret_encrypted: string }>();
    expect(stored!.auth_method).toBe('client_secret_basic');
    expect(stored!.client_secret_encrypted).not.toContain('up_secret_');
  });

  it('finds metadata only its 401 challenge names (resource_metadata), and asks for the scope the challenge names', async () => {
    const serverId = await registerOAuthUpstream(root, 'https://hidden.example/mcp');
    const journey = await connectUpstream(await portalBrowser(), serverId);
    expect(journey.html).toContain('Connected');
    expect(journey.authorizeUrl.searchParams.get('scope')).toBe('files:write');
    expect((await rpc(serverId, 'tools/call', { name: 'echo', arguments: { message: 'found' } })).result.content[0].text).toBe('found');
  });

  it('identifies itself with its own Client ID Metadata Document where the upstream accepts them, registering nothing', async () => {
    const doc = (await (await SELF.fetch(`${ORIGIN}/gw/client.json`)).json()) as Record<string, unknown>;
    expect(doc).toMatchObject({ client_id: `${ORIGIN}/gw/client.json`, redirect_uris: [`${ORIGIN}/gw/callback`], token_endpoint_auth_method: 'none', application_type: 'web' });
    const serverId = await registerOAuthUpstream(root, 'https://cimd.example/mcp');
    const journey = await connectUpstream(await portalBrowser(), serverId);
    expect(journey.authorizeUrl.searchParams.get('client_id')).toBe(`${ORIGIN}/gw/client.json`);
    expect(journey.html).toContain('Connected');
    expect((await rpc(serverId, 'tools/call', { name: 'echo', arguments: { message: 'by document' } })).result.content[0].text).toBe('by document');
    expect(await (await fetch('https://cimd.example/__registrations')).json()).toEqual([]);
  });

  it('steps up on 403 insufficient_scope: asks the user to connect again, then requests the scope the upstream named', async () => {
    const serverId = await registerOAuthUpstream(root, 'https://stepup.example/mcp');
    const browser = await portalBrowser();
    const first = await connectUpstream(browser, serverId);
    expect(first.authorizeUrl.searchParams.get('scope')).toBe('files:read');
    // Listing works with files:read; the call needs files:write.
    expect((await rpc(serverId, 'tools/list', {})).result.tools.length).toBeGreaterThan(0);
    const refused = await rpc(serverId, 'tools/call', { name: 'echo', arguments: { message: 'write' } });
    expect(refused.error?.code).toBe(-32001);
    expect(refused.error?.data?.connect_url).toBe(`${ORIGIN}/gw/${serverId}/connect`);
    const second = await connectUpstream(browser, serverId);
    expect(second.authorizeUrl.searchParams.get('scope')!.split(' ').sort()).toEqual(['files:read', 'files:write']);
    expect((await rpc(serverId, 'tools/call', { name: 'echo', arguments: { message: 'write' } })).result.content[0].text).toBe('write');
  });

  it('registers again when the server moves to another authorization server, and never sends the old client there (SEP-2352)', async () => {
    const serverId = await registerOAuthUpstream(root, 'https://moving.example/mcp');
    const browser = await portalBrowser();
    const before = await connectUpstream(browser, serverId);
    expect(before.authorizeUrl.origin).toBe('https://moving.example');
    const oldClient = before.authorizeUrl.searchParams.get('client_id');
    expect((await fetch('https://moving.example/__move')).status).toBe(204);
    const page = await (await browser.fetch(`${ORIGIN}/gw/${serverId}/connect`)).text();
    const approve = await browser.post(`${ORIGIN}/gw/${serverId}/connect`, { csrf_token: /name="csrf_token" value="([^"]+)"/.exec(page)![1]!, action: 'approve' });
    const after = new URL(approve.headers.get('location')!);
    expect(after.origin).toBe('https://moved.example');
    const registered = (await (await fetch('https://moved.example/__registrations')).json()) as unknown[];
    expect(registered).toHaveLength(1);
    const stored = await env.DB.prepare('SELECT issuer, client_id FROM gateway_upstream_clients WHERE server_id = ?').bind(serverId).first<{ issuer: string; client_id: string }>();
    expect(stored!.issuer).toBe('https://moved.example');
    expect(after.searchParams.get('client_id')).toBe(stored!.client_id);
    expect(stored!.client_id).not.toBe(oldClient);
  });

  it('keeps upstream tokens encrypted at rest', async () => {
    const rows = (await env.DB.prepare('SELECT * FROM gateway_connections').all()).results;
    expect(rows.length).toBeGreaterThan(0);
    expect(JSON.stringify(rows)).not.toMatch(/up_at_|up_rt_/);
  });

  it('refreshes an expiring upstream token transparently, once', async () => {
    const serverId = await registerOAuthUpstream(root);
    await connectUpstream(await portalBrowser(), serverId);
    await env.DB.prepare("UPDATE gateway_connections SET expires_at = '2000-01-01T00:00:00.000Z' WHERE server_id = ?").bind(serverId).run();
    const before = (await upstreamRequests()).length;
    const [a, b] = await Promise.all([rpc(serverId, 'tools/list', {}), rpc(serverId, 'tools/list', {})]);
    expect(a.result.tools.length).toBe(2);
    expect(b.result.tools.length).toBe(2);
    const refreshes = (await upstreamRequests()).slice(before).filter((r) => r.headers['content-type']?.includes('x-www-form-urlencoded'));
    expect(refreshes).toHaveLength(1);
    const row = await env.DB.prepare('SELECT expires_at, status FROM gateway_connections WHERE server_id = ?').bind(serverId).first<{ expires_at: string; status: string }>();
    expect(row!.status).toBe('connected');
    expect(row!.expires_at > new Date().toISOString()).toBe(true);
  });

  it('refreshes once and sends the call again when the upstream ends an access token before its expiry', async () => {
    const serverId = await registerOAuthUpstream(root);
    await connectUpstream(await portalBrowser(), serverId);
    await fetch('https://secure.example/__expire-access');
    const before = (await upstreamRequests()).length;
    const call = await rpc(serverId, 'tools/call', { name: 'echo', arguments: { message: 'after refresh' } });
    expect(call.result.content[0].text).toBe('after refresh');
    const seen = (await upstreamRequests()).slice(before);
    // The refused call, the refresh grant, the call again with the new token.
    expect(seen.map((r) => (r.headers['content-type']?.includes('x-www-form-urlencoded') ? 'token' : 'mcp'))).toEqual(['mcp', 'token', 'mcp']);
    expect(seen[0]!.headers.authorization).not.toBe(seen[2]!.headers.authorization);
    expect(await env.DB.prepare('SELECT status FROM gateway_connections WHERE server_id = ?').bind(serverId).first('status')).toBe('connected');
  });

  it('keeps a current upstream token in memory: the next call reads no connection from D1', async () => {
    const serverId = await registerOAuthUpstream(root);
    await connectUpstream(await portalBrowser(), serverId);
    expect((await rpc(serverId, 'tools/list', {})).result.tools).toHaveLength(2);
    // Behind this isolate's back (as another isolate would): the row says reconnect. The cached token still works
    // at the upstream, so the call goes through; the row is read again once the upstream refuses the token.
    await env.DB.prepare("UPDATE gateway_connections SET status = 'needs_reconnect' WHERE server_id = ?").bind(serverId).run();
    expect((await rpc(serverId, 'tools/list', {})).result.tools).toHaveLength(2);
    await fetch('https://secure.example/__expire-access');
    expect((await rpc(serverId, 'tools/list', {})).error?.code).toBe(-32001);
  });

  it('asks to reconnect when the upstream no longer accepts the token', async () => {
    const serverId = await registerOAuthUpstream(root);
    await connectUpstream(await portalBrowser(), serverId);
    await fetch('https://secure.example/__forget-tokens');
    const res = await rpc(serverId, 'tools/list', {});
    expect(res.error?.code).toBe(-32001);
    expect(await env.DB.prepare('SELECT status FROM gateway_connections WHERE server_id = ?').bind(serverId).first('status')).toBe('needs_reconnect');
  });

  it('refuses a callback whose state another user started, or that is replayed', async () => {
    const serverId = await registerOAuthUpstream(root);
    const browser = await portalBrowser();
    const page = await (await browser.fetch(`${ORIGIN}/gw/${serverId}/connect`)).text();
    const approve = await browser.post(`${ORIGIN}/gw/${serverId}/connect`, { csrf_token: /name="csrf_token" value="([^"]+)"/.exec(page)![1]!, action: 'approve' });
    const callback = (await fetch(approve.headers.get('location')!, { redirect: 'manual' })).headers.get('location')!;

    const someone = await rest('POST', '/v1/accounts', { username: `other-${crypto.randomUUID().slice(0, 6)}`, password: 'a long enough password' }, root.token);
    const other = await portalBrowser(someone.body.username, 'a long enough password');
    const stolen = await other.fetch(callback);
    expect(stolen.status).toBe(400);
    expect(await stolen.text()).toContain('not started by you');

    expect((await browser.fetch(callback)).status).toBe(200);
    const replay = await browser.fetch(callback);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain('already used');
  });

  it('lists my connections and disconnects one, revoking its tokens upstream', async () => {
    const serverId = await registerOAuthUpstream(root);
    await connectUpstream(await portalBrowser(), serverId);
    const mine = await rest('GET', '/v1/gateway/connections', undefined, root.token);
    expect(mine.body.items.map((c: { server_id: string }) => c.server_id)).toContain(serverId);
    const revoked = async () => ((await (await fetch('https://secure.example/__revoked')).json()) as string[]).length;
    const revokedBefore = await revoked();
    const res = await rest('DELETE', `/v1/gateway/connections/${serverId}`, undefined, root.token);
    expect(res.body).toEqual({ disconnected: true, revoked_upstream: true });
    expect(await revoked()).toBeGreaterThan(revokedBefore);
    expect((await rpc(serverId, 'tools/list', {})).error?.code).toBe(-32001);
  });
});
