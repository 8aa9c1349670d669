import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { callTool, mcp, mcpSessionToken, ORIGIN, query, rest, user } from '../../test/workers/helpers';
import { device } from '../../test/workers/sync-helpers';

const rpc = (path: string, input: unknown, token: string) =>
  SELF.fetch(`${ORIGIN}/rpc/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ json: input }) });

describe('devices', () => {
  it('registers, lists, renames and removes the signed-in user’s devices', async () => {
    const u = await user();
    const made = await rest('POST', '/v1/devices', { name: 'Work laptop', type: 'claude_desktop' }, u.token);
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ chitty_id: u.chittyId, name: 'Work laptop', type: 'claude_desktop', current: true });
    // Registered from a sign-in, the calling session is now the device's.
    const sessions = await rest('GET', '/v1/sessions', undefined, u.token);
    expect(sessions.body.items.find((s: any) => s.current).device_id).toBe(made.body.device_id);

    expect((await rest('PATCH', `/v1/devices/${made.body.device_id}`, { name: 'Home laptop' }, u.token)).body.name).toBe('Home laptop');
    const list = await rest('GET', '/v1/devices', undefined, u.token);
    expect(list.body.items).toMatchObject([{ device_id: made.body.device_id, name: 'Home laptop', current: true }]);
    const session = sessions.body.items.find((s: any) => s.current).session_id;
    expect((await callTool('list_devices', {}, await mcpSessionToken(u.chittyId, session))).body.result.structuredContent.items).toHaveLength(1);
  });

  it('rejects an unknown type, a blank name and another user’s device', async () => {
    const [alice, bob] = [await user(), await user()];
    expect((await rest('POST', '/v1/devices', { name: 'Toaster', type: 'fridge' }, alice.token)).status).toBe(400);
    expect((await rest('POST', '/v1/devices', { name: '  ', type: 'web' }, alice.token)).status).toBe(400);
    const hers = await device(alice, 'Alice phone', 'mobile');
    expect((await rest('PATCH', `/v1/devices/${hers.deviceId}`, { name: 'Mine now' }, bob.token)).status).toBe(404);
    expect((await rest('DELETE', `/v1/devices/${hers.deviceId}`, undefined, bob.token)).status).toBe(404);
    // Nor can Bob sign in "on" Alice's device.
    const signIn = await rest('POST', '/v1/accounts/sign-in', { username: bob.username, password: bob.password, device_id: hers.deviceId });
    expect(signIn.status).toBe(400);
    expect(signIn.body.message).toContain('device_id');
  });

  it('removing a device ends its sessions and its API keys at once, on every door, and leaves the other devices alone', async () => {
    const u = await user();
    const phone = await device(u, 'Phone', 'mobile');
    const laptop = await device(u, 'Laptop');
    // A sync token issued to the phone.
    const serverId = `dev-srv-${crypto.randomUUID().slice(0, 6)}`;
    const root = await (await import('../../test/workers/helpers')).admin();
    expect((await rest('POST', '/v1/servers/register', { server_id: serverId, name: 'Notes', endpoints: { mcp: 'https://mcp.example/mcp' } }, root.token)).status).toBe(200);
    const token = await rest('POST', '/v1/sync/tokens', { server_id: serverId, device_id: phone.deviceId }, u.token);
    expect(token.status).toBe(201);
    const syncKey = token.body.api_key as string;

    // The MCP door takes tokens for /mcp: one bound to the phone's session.
    const phoneMcp = await mcpSessionToken(u.chittyId, phone.sessionId);
    // Everything works before.
    expect((await rest('GET', '/v1/accounts/me', undefined, phone.token)).status).toBe(200);
    expect((await rpc('accounts/me', {}, phone.token)).status).toBe(200);
    expect((await mcp('tools/list', {}, phoneMcp)).status).toBe(200);
    expect((await mcp('tools/list', {}, syncKey)).status).toBe(200);
    expect((await rest('GET', `/v1/sync/state/${serverId}`, undefined, syncKey)).status).toBe(200);

    const removed = await rest('DELETE', `/v1/devices/${phone.deviceId}`, undefined, laptop.token);
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual({ device_id: phone.deviceId, sessions_ended: 1, api_keys_revoked: 1 });

    for (const credential of [phone.token, syncKey]) {
      const viaRest = await rest('GET', '/v1/accounts/me', undefined, credential);
      expect(viaRest.status).toBe(401);
      expect(viaRest.body.data).toEqual({ reason: 'revoked' });
      expect((await rpc('accounts/me', {}, credential)).status).toBe(401);
      expect((await mcp('tools/list', {}, credential === phone.token ? phoneMcp : credential)).status).toBe(401);
    }
    expect((await rest('GET', `/v1/sync/state/${serverId}`, undefined, syncKey)).status).toBe(401);
    // The laptop still works; the phone is gone from the list and cannot be removed twice.
    expect((await rest('GET', '/v1/devices', undefined, laptop.token)).body.items.map((d: any) => d.device_id)).toEqual([laptop.deviceId]);
    expect((await rest('DELETE', `/v1/devices/${phone.deviceId}`, undefined, laptop.token)).status).toBe(404);
    expect((await query('SELECT revoked_at FROM sessions WHERE id = ?', phone.sessionId))[0]!.revoked_at).not.toBeNull();
    // A removed device cannot be signed in on again.
    expect((await rest('POST', '/v1/accounts/sign-in', { username: u.username, password: u.password, device_id: phone.deviceId })).status).toBe(400);
  });
});
