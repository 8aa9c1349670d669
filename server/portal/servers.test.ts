import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, direct, rest, user, type Caller } from '../../test/workers/helpers';
import worker from '../index';

let root: Caller;
let n = 0;
const id = () => `srv-${++n}-${crypto.randomUUID().slice(0, 6)}`;
const register = (body: Record<string, unknown>, token = root.token) => rest('POST', '/v1/servers/register', { name: 'Test server', endpoints: { mcp: 'https://mcp.example/mcp' }, ...body }, token);
const rowCount = async (serverId: string) => env.DB.prepare('SELECT count(*) AS n FROM mcp_servers WHERE id = ?').bind(serverId).first('n');

beforeAll(async () => {
  root = await admin();
});

describe('servers.register', () => {
  it('probes the server over MCP and records it ready with its tools', async () => {
    const server_id = id();
    const res = await register({ server_id, tags: ['demo'] });
    expect(res.status).toBe(200);
    expect(res.body.created).toBe(true);
    expect(res.body.server).toMatchObject({ server_id, status: 'ready', owner: root.chittyId, tags: ['demo'], enabled_for_me: true });
    expect(res.body.server.tools.map((t: { name: string }) => t.name).sort()).toEqual(['add', 'echo']);
    expect(res.body.server.protocol_version).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(res.body.server.capabilities).toHaveProperty('tools');
    expect(res.body.server.my_access).toEqual(['view', 'connect', 'call', 'admin']);
  });

  it('probes a server that speaks only MCP 2026-07-28 and records it ready, with the version it speaks', async () => {
    const res = await register({ server_id: id(), endpoints: { mcp: 'https://modern.example/mcp' } });
    expect(res.status).toBe(200);
    expect(res.body.server).toMatchObject({ status: 'ready', protocol_version: '2026-07-28' });
    expect(res.body.server.tools.map((t: { name: string }) => t.name)).toEqual(['shout', 'locate', 'fail', 'countdown']);
  });

  it('authenticates to the server with a stored header secret that is never returned or stored in plaintext', async () => {
    const server_id = id();
    const res = await register({ server_id, endpoints: { mcp: 'https://tools.example/mcp' }, auth: { type: 'header', header_name: 'X-Api-Key', header_value: 'upstream-secret' } });
    expect(res.body.server).toMatchObject({ status: 'ready', auth: { type: 'header', header_name: 'X-Api-Key', has_secret: true } });
    expect(JSON.stringify(res.body)).not.toContain('upstream-secret');
    const row = await env.DB.prepare('SELECT * FROM mcp_servers WHERE id = ?').bind(server_id).first();
    expect(JSON.stringify(row)).not.toContain('upstream-secret');
  });

  it('records unauthorized when the server refuses the credential', async () => {
    const res = await register({ server_id: id(), endpoints: { mcp: 'https://tools.example/mcp' }, auth: { type: 'header', header_name: 'X-Api-Key', header_value: 'wrong' } });
    expect(res.status).toBe(200);
    expect(res.body.server.status).toBe('unauthorized');
  });

  it('is idempotent for its owner and refuses another owner the same server_id', async () => {
    const server = await rest('POST', '/v1/identities', { type: 'MCP', display_name: 'Self-registering server' }, root.token);
    await rest('POST', '/v1/permissions/grants', { chitty_id: server.body.chitty_id, permission: 'portal:servers:register' }, root.token);
    const key = (await rest('POST', '/v1/api-keys', { chitty_id: server.body.chitty_id, name: 'registration', scopes: ['portal:servers:register'] }, root.token)).body.api_key;
    const server_id = id();
    const first = await register({ server_id, version: '1.0.0' }, key);
    const second = await register({ server_id, version: '2.0.0' }, key);
    expect([first.status, first.body.created, second.status, second.body.created]).toEqual([200, true, 200, false]);
    expect(await env.DB.prepare('SELECT version FROM mcp_servers WHERE id = ?').bind(server_id).first('version')).toBe('2.0.0');

    const other = await rest('POST', '/v1/identities', { type: 'MCP' }, root.token);
    await rest('POST', '/v1/permissions/grants', { chitty_id: other.body.chitty_id, permission: 'portal:servers:register' }, root.token);
    const otherKey = (await rest('POST', '/v1/api-keys', { chitty_id: other.body.chitty_id, name: 'other', scopes: ['portal:servers:register'] }, root.token)).body.api_key;
    const taken = await register({ server_id, version: '9.9.9' }, otherKey);
    expect(taken.status).toBe(409);
    expect(await env.DB.prepare('SELECT version FROM mcp_servers WHERE id = ?').bind(server_id).first('version')).toBe('2.0.0');
  });
});

describe('servers.register in production (SSRF)', () => {
  it.each([
    ['the cloud metadata address', 'http://169.254.169.254/'],
    ['a private address', 'http://10.0.0.1/'],
    ['a private address over https', 'https://10.0.0.1/mcp'],
    ['loopback', 'https://127.0.0.1/mcp'],
    ['a DNS name for a private address', 'https://private.example/mcp'],
    ['a DNS name for the metadata address', 'https://metadata.example/mcp'],
    ['a server that redirects to the metadata address', 'https://redirect.example/mcp'],
  ])('refuses %s with a clear error and stores nothing', async (_, url) => {
    const server_id = id();
    const res = await direct('POST', '/v1/servers/register', { server_id, name: 'SSRF', endpoints: { mcp: url } }, root.token, { ENVIRONMENT: 'production' });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('URL_REFUSED');
    expect(res.body.message).toMatch(/URL refused: .*(https|private|redirect)/);
    expect(await rowCount(server_id)).toBe(0);
  });

  it('accepts a public https server in production', async () => {
    const res = await direct('POST', '/v1/servers/register', { server_id: id(), name: 'Public', endpoints: { mcp: 'https://mcp.example/mcp' } }, root.token, { ENVIRONMENT: 'production' });
    expect(res.status).toBe(200);
    expect(res.body.server.status).toBe('ready');
  });
});

describe('servers access control', () => {
  let plain: Caller;
  let server_id: string;
  beforeAll(async () => {
    plain = await user(['user']);
    server_id = id();
    await register({ server_id });
  });

  const attempts: [string, () => [string, string, unknown]][] = [
    ['register', () => ['POST', '/v1/servers/register', { server_id: id(), name: 'x', endpoints: { mcp: 'https://mcp.example/mcp' } }]],
    ['edit', () => ['PATCH', `/v1/servers/${server_id}`, { description: 'mine now' }]],
    ['remove', () => ['DELETE', `/v1/servers/${server_id}`, undefined]],
    ['set the policy', () => ['PUT', `/v1/servers/${server_id}/policy`, { access: { view: ['user'], connect: ['user'], call: ['user'], admin: ['user'] } }]],
  ];
  it.each(attempts)('refuses a user without portal:servers:write to %s', async (_, make) => {
    const [method, path, body] = make();
    const res = await rest(method, path, body, plain.token);
    expect(res.status).toBe(403);
    expect(await env.DB.prepare('SELECT description FROM mcp_servers WHERE id = ?').bind(server_id).first('description')).toBe(null);
  });

  it('lets a user see and use the server by default, but not administer it', async () => {
    const res = await rest('GET', `/v1/servers/${server_id}`, undefined, plain.token);
    expect(res.status).toBe(200);
    expect(res.body.my_access).toEqual(['view', 'connect', 'call']);
  });

  it('hides a server whose policy does not let the user view it, as if it did not exist', async () => {
    const hidden = id();
    await register({ server_id: hidden });
    await rest('PUT', `/v1/servers/${hidden}/policy`, { access: { view: ['admin'], connect: ['admin'], call: ['admin'], admin: ['admin'] } }, root.token);
    expect((await rest('GET', `/v1/servers/${hidden}`, undefined, plain.token)).status).toBe(404);
    const list = await rest('GET', '/v1/servers?limit=200', undefined, plain.token);
    expect(list.body.items.map((s: { server_id: string }) => s.server_id)).not.toContain(hidden);
    expect(list.body.items.map((s: { server_id: string }) => s.server_id)).toContain(server_id);
  });

  it('applies tool rules: deny wins, an allow list restricts, a user can switch a server off for themselves', async () => {
    const sid = id();
    await register({ server_id: sid });
    const policy = await rest('PUT', `/v1/servers/${sid}/policy`, {
      access: { view: ['admin', 'user'], connect: ['admin', 'user'], call: ['admin', 'user'], admin: ['admin'] },
      tools: [{ tool: 'add', effect: 'deny', role: 'user' }, { tool: 'echo', effect: 'allow', chitty_id: plain.chittyId }],
    }, root.token);
    expect(policy.status).toBe(200);
    const check = (body: Record<string, unknown>, token = plain.token) => rest('POST', `/v1/servers/${sid}/access`, body, token);
    expect((await check({ action: 'call', tool: 'add' })).body).toMatchObject({ allowed: false });
    expect((await check({ action: 'call', tool: 'echo' })).body).toMatchObject({ allowed: true });
    const other = await user(['user']);
    expect((await check({ action: 'call', tool: 'echo' }, other.token)).body).toMatchObject({ allowed: false, reason: expect.stringContaining('allow list') });
    expect((await check({ action: 'admin' })).body).toMatchObject({ allowed: false });

    await rest('PUT', `/v1/servers/${sid}/enabled`, { enabled: false }, plain.token);
    expect((await check({ action: 'connect' })).body).toMatchObject({ allowed: false, reason: expect.stringContaining('turned off') });
    expect((await rest('GET', `/v1/servers/${sid}`, undefined, root.token)).body.enabled_for_me).toBe(true);
  });

  it('audits registrations and policy changes', async () => {
    const events = await rest('GET', '/v1/audit/events?action=servers.setPolicy&limit=5', undefined, root.token);
    expect(events.body.items.length).toBeGreaterThan(0);
    expect(events.body.items[0]).toMatchObject({ actor: root.chittyId, outcome: 'success', door: 'rest' });
  });
});

describe('per-server administration', () => {
  it('lets a self-registered server update and remove itself with only portal:servers:register', async () => {
    const server = await rest('POST', '/v1/identities', { type: 'MCP' }, root.token);
    await rest('POST', '/v1/permissions/grants', { chitty_id: server.body.chitty_id, permission: 'portal:servers:register' }, root.token);
    const key = (await rest('POST', '/v1/api-keys', { chitty_id: server.body.chitty_id, name: 'self', scopes: ['portal:servers:register'] }, root.token)).body.api_key;
    const server_id = id();
    await register({ server_id }, key);
    expect((await rest('PATCH', `/v1/servers/${server_id}`, { description: 'updated by itself' }, key)).status).toBe(200);
    expect((await rest('DELETE', `/v1/servers/${server_id}`, undefined, key)).status).toBe(200);
    expect(await rowCount(server_id)).toBe(0);
  });

  it('lets roles with admin access set the policy, and refuses everyone else', async () => {
    const server_id = id();
    await register({ server_id });
    const delegate = await user(['user']);
    const outsider = await user(['readonly']);
    const policy = { access: { view: ['admin', 'user', 'readonly'], connect: ['admin', 'user'], call: ['admin', 'user'], admin: ['admin', 'user'] } };
    expect((await rest('PUT', `/v1/servers/${server_id}/policy`, policy, root.token)).status).toBe(200);
    expect((await rest('PUT', `/v1/servers/${server_id}/policy`, policy, delegate.token)).status).toBe(200);
    const refused = await rest('PUT', `/v1/servers/${server_id}/policy`, { access: { ...policy.access, admin: ['readonly'] } }, outsider.token);
    expect(refused.status).toBe(403);
    expect((await rest('PATCH', `/v1/servers/${server_id}`, { description: 'x' }, outsider.token)).status).toBe(403);
  });
});

describe('servers.import and servers.export (server.json)', () => {
  it('exports a server as server.json and imports it back under another id', async () => {
    const server_id = id();
    await register({ server_id, version: '3.1.0', tags: ['weather'], endpoints: { mcp: 'https://tools.example/mcp' }, auth: { type: 'header', header_name: 'X-Api-Key', header_value: 'upstream-secret' } });
    const exported = await rest('GET', `/v1/servers/${server_id}/server.json`, undefined, root.token);
    expect(exported.status).toBe(200);
    expect(exported.body).toMatchObject({
      name: `example.tools/${server_id}`,
      version: '3.1.0',
      remotes: [{ type: 'streamable-http', url: 'https://tools.example/mcp', headers: [{ name: 'X-Api-Key', isSecret: true, isRequired: true }] }],
      _meta: { 'cc.chitty.auth/portal': { server_id, tags: ['weather'] } },
    });
    expect(JSON.stringify(exported.body)).not.toContain('upstream-secret');

    const copy = id();
    const refused = await rest('POST', '/v1/servers/import', { server: exported.body, server_id: copy }, root.token);
    expect(refused.status).toBe(400);
    expect(refused.body.message).toContain('header_value');
    const imported = await rest('POST', '/v1/servers/import', { server: exported.body, server_id: copy, header_value: 'upstream-secret' }, root.token);
    expect(imported.status).toBe(200);
    expect(imported.body.server).toMatchObject({ server_id: copy, status: 'ready', version: '3.1.0', tags: ['weather'], auth: { type: 'header', header_name: 'X-Api-Key', has_secret: true } });
  });

  it('derives the server_id from the server.json name', async () => {
    const res = await rest('POST', '/v1/servers/import', { server: { name: `io.example/Derived_${n++}`, remotes: [{ type: 'streamable-http', url: 'https://mcp.example/mcp' }] } }, root.token);
    expect(res.status).toBe(200);
    expect(res.body.server.server_id).toMatch(/^derived-\d+$/);
  });

  it('refuses a server.json without remotes', async () => {
    const res = await rest('POST', '/v1/servers/import', { server: { name: 'io.example/local-only', packages: [] , remotes: [] } }, root.token);
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('remotes');
  });
});

describe('scheduled health checks', () => {
  it('re-checks registered servers', async () => {
    const server_id = id();
    await register({ server_id });
    await env.DB.prepare("UPDATE mcp_servers SET status = 'unknown', checked_at = '2000-01-01T00:00:00.000Z' WHERE id = ?").bind(server_id).run();
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController(), env as never, ctx);
    await waitOnExecutionContext(ctx);
    const row = await env.DB.prepare('SELECT status, checked_at FROM mcp_servers WHERE id = ?').bind(server_id).first<{ status: string; checked_at: string }>();
    expect(row?.status).toBe('ready');
    expect(row!.checked_at > '2020').toBe(true);
  });
});

