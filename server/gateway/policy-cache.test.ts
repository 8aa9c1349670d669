import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, ORIGIN, rest, user, type Caller } from '../../test/workers/helpers';

/** The gateway's in-isolate policy cache: changes made through the API apply to the very next call. */
let root: Caller;
let n = 0;

async function setup() {
  const server_id = `pc-${++n}-${crypto.randomUUID().slice(0, 6)}`;
  expect((await rest('POST', '/v1/servers/register', { server_id, name: 'Cached', endpoints: { mcp: 'https://mcp.example/mcp' } }, root.token)).status).toBe(200);
  const someone = await user(['user']);
  const key = (await rest('POST', '/v1/api-keys', { name: 'gw' }, someone.token)).body.api_key as string;
  return { server_id, someone, key };
}

async function call(serverId: string, key: string, tool = 'echo') {
  const res = await SELF.fetch(`${ORIGIN}/gw/${serverId}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', authorization: `Bearer ${key}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: { message: 'hi' } } }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const allowAll = { view: ['admin', 'user'], connect: ['admin', 'user'], call: ['admin', 'user'], admin: ['admin'] };

beforeAll(async () => {
  root = await admin();
});

describe('gateway policy cache', () => {
  it('applies a new tool rule to the next call', async () => {
    const { server_id, key } = await setup();
    expect((await call(server_id, key)).body.result.content[0].text).toBe('hi');
    await rest('PUT', `/v1/servers/${server_id}/policy`, { access: allowAll, tools: [{ tool: 'echo', effect: 'deny', role: 'user' }] }, root.token);
    expect((await call(server_id, key)).body.error.code).toBe(-32003);
  });

  it('applies a withdrawn connect right and a user’s own switch to the next call', async () => {
    const { server_id, someone, key } = await setup();
    expect((await call(server_id, key)).status).toBe(200);
    await rest('PUT', `/v1/servers/${server_id}/enabled`, { enabled: false }, someone.token);
    expect((await call(server_id, key)).status).toBe(403);
    await rest('PUT', `/v1/servers/${server_id}/enabled`, { enabled: true }, someone.token);
    expect((await call(server_id, key)).status).toBe(200);
    await rest('PUT', `/v1/servers/${server_id}/policy`, { access: { ...allowAll, connect: ['admin'] } }, root.token);
    expect((await call(server_id, key)).status).toBe(403);
  });

  it('applies granted and revoked permissions to the next call', async () => {
    const { server_id, someone, key } = await setup();
    await rest('PUT', `/v1/servers/${server_id}/policy`, { access: { ...allowAll, call: ['admin'] } }, root.token);
    expect((await call(server_id, key)).body.error.code).toBe(-32003);
    const grant = await rest('POST', '/v1/permissions/grants', { chitty_id: someone.chittyId, permission: `mcp:${server_id}:call` }, root.token);
    expect(grant.status, JSON.stringify(grant.body)).toBeLessThan(300);
    expect((await call(server_id, key)).body.result.content[0].text).toBe('hi');
    const revoke = await rest('DELETE', `/v1/permissions/grants/${grant.body.grant_id}`, undefined, root.token);
    expect(revoke.status, JSON.stringify(revoke.body)).toBeLessThan(300);
    expect((await call(server_id, key)).body.error.code).toBe(-32003);
  });

  it('stops a removed server at once', async () => {
    const { server_id, key } = await setup();
    expect((await call(server_id, key)).status).toBe(200);
    expect((await rest('DELETE', `/v1/servers/${server_id}`, undefined, root.token)).status).toBe(200);
    expect((await call(server_id, key)).status).toBe(404);
  });

  it('reads no D1 for the policy while cached (a change behind the API’s back is not seen at once)', async () => {
    const { server_id, key } = await setup();
    expect((await call(server_id, key)).status).toBe(200);
    // Another isolate's view of the world: a row written straight to D1, without this isolate's knowledge.
    await env.DB.prepare("INSERT INTO mcp_tool_policies (id, server_id, tool, subject_type, subject, effect, created_at) VALUES (?, ?, 'echo', 'role', 'user', 'deny', ?)").bind(`tpl_${n}`, server_id, new Date().toISOString()).run();
    expect((await call(server_id, key)).status).toBe(200);
  });
});
