import { describe, expect, it } from 'vitest';
import { admin, callTool, rest, user } from '../../test/workers/helpers';
import { push } from '../../test/workers/sync-helpers';

async function register(id: string) {
  const root = await admin();
  expect((await rest('POST', '/v1/servers/register', { server_id: id, name: id, endpoints: { mcp: 'https://mcp.example/mcp' } }, root.token)).status).toBe(200);
  return id;
}

describe('sync tokens: cross_sync for one server', () => {
  it('push and pull that server’s state for their user, and nothing else', async () => {
    const [alice, bob] = [await user(), await user()];
    const a = await register(`tok-a-${crypto.randomUUID().slice(0, 6)}`);
    const b = await register(`tok-b-${crypto.randomUUID().slice(0, 6)}`);
    const made = await rest('POST', '/v1/sync/tokens', { server_id: a }, alice.token);
    expect(made.status).toBe(201);
    expect(made.body.scopes).toEqual([`sync:state:read:${a}`, `sync:state:write:${a}`]);
    const token = made.body.api_key as string;

    // Server A pushes Alice's state, and reads it back.
    expect((await push(token, a, 0, { cursor: 'x' })).status).toBe(200);
    expect((await rest('GET', `/v1/sync/state/${a}`, undefined, alice.token)).body.document).toEqual({ cursor: 'x' });

    // Not server B's state, neither write nor read; not over MCP either.
    const toB = await push(token, b, 0, { evil: true });
    expect(toB.status).toBe(403);
    expect(toB.body.data).toEqual({ permission: `sync:state:write:${b}` });
    expect((await rest('GET', `/v1/sync/state/${b}`, undefined, token)).status).toBe(403);
    expect((await callTool('sync_push', { server_id: b, base_revision: 0, document: { evil: true } }, token)).body.result.isError).toBe(true);
    expect((await rest('GET', `/v1/sync/state/${b}`, undefined, alice.token)).body.revision).toBe(0);

    // Another user's state is out of reach: the token only ever acts as Alice, and Bob's document is untouched.
    await push(bob.token, a, 0, { bob: 1 });
    expect((await rest('GET', `/v1/sync/state/${a}`, undefined, token)).body.document).toEqual({ cursor: 'x' });
    expect((await rest('GET', `/v1/sync/state/${a}`, undefined, bob.token)).body.document).toEqual({ bob: 1 });

    // Pull shows only server A's changes, even when Alice changed B herself.
    await push(alice.token, b, 0, { mine: true });
    const pulled = await rest('GET', '/v1/sync/changes', undefined, token);
    expect(pulled.body.changes.map((c: any) => c.server_id)).toEqual([a]);
    expect(pulled.body.documents.map((d: any) => d.server_id)).toEqual([a]);

    // Nothing else of Alice's: not her devices, keys, or another sync token.
    expect((await rest('GET', '/v1/devices', undefined, token)).status).toBe(403);
    expect((await rest('GET', '/v1/api-keys', undefined, token)).status).toBe(403);
    expect((await rest('POST', '/v1/sync/tokens', { server_id: b }, token)).status).toBe(403);
    // MCP lists it only the tools it could call.
    const tools = (await callTool('sync_pull', {}, token)).body.result;
    expect(tools.isError).toBeFalsy();
  });

  it('are refused for an unknown server or another user’s device, and an ordinary key without the scope cannot push', async () => {
    const [alice, bob] = [await user(), await user()];
    const a = await register(`tok-c-${crypto.randomUUID().slice(0, 6)}`);
    expect((await rest('POST', '/v1/sync/tokens', { server_id: 'no-such-server' }, alice.token)).status).toBe(404);
    const bobsDevice = (await rest('POST', '/v1/devices', { name: 'Bob', type: 'web', bind_session: false }, bob.token)).body.device_id;
    expect((await rest('POST', '/v1/sync/tokens', { server_id: a, device_id: bobsDevice }, alice.token)).status).toBe(404);
    const readOnlyKey = (await rest('POST', '/v1/api-keys', { name: 'ro', scopes: ['api_keys:read'] }, alice.token)).body.api_key;
    expect((await push(readOnlyKey, a, 0, { x: 1 })).status).toBe(403);
    const expiring = await rest('POST', '/v1/sync/tokens', { server_id: a, expires_in: '2y' }, alice.token);
    expect(expiring.status).toBe(400);
  });
});
