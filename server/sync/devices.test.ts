import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { admin, auditHead, auditSince, callTool, mcp, mcpSessionToken, ORIGIN, query, rest, user } from '../../test/workers/helpers';
import { authorizeAsBrowser, Browser, MCP_RESOURCE, REDIRECT, registerClient, token } from '../../test/workers/oauth-helpers';
import { device } from '../../test/workers/sync-helpers';

const rpc = (path: string, input: unknown, token: string) =>
  SELF.fetch(`${ORIGIN}/rpc/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ json: input }) });

/** The session token a browser holds after signing in at /oauth/authorize (its session cookie). */
const sessionCookie = (browser: Browser) => [...browser.cookies].find(([name]) => name.endsWith('chitty_session'))?.[1] ?? null;

/**
 * A user signs in at /oauth/authorize in a browser (the first request is denied, so no grant is made), and, unless
 * `deviceName` is null, that browser session is bound to a new device. Then an MCP client is authorized through
 * that same signed-in session and exchanges its code: its tokens, its grant and the session's token.
 */
async function mcpClientThrough(u: Awaited<ReturnType<typeof user>>, deviceName: string | null) {
  const browser = new Browser();
  const login = { username: u.username, password: u.password, browser };
  const first = await registerClient({ client_name: 'Sign-in only' });
  expect((await authorizeAsBrowser({ clientId: first.body.client_id, decision: 'deny', ...login })).redirect?.searchParams.get('error')).toBe('access_denied');
  const session = sessionCookie(browser)!;
  expect(session).toBeTruthy();
  let deviceId: string | null = null;
  if (deviceName !== null) {
    const made = await rest('POST', '/v1/devices', { name: deviceName, type: 'claude_desktop' }, session);
    expect(made.status).toBe(201);
    expect(made.body.current).toBe(true);
    deviceId = made.body.device_id;
  }
  const client = await registerClient({ client_name: `MCP client on ${deviceName ?? 'no device'}` });
  const clientId = client.body.client_id as string;
  const flow = await authorizeAsBrowser({ clientId, ...login });
  expect(flow.code).toBeTruthy();
  const tokens = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: clientId, redirect_uri: REDIRECT, resource: MCP_RESOURCE });
  expect(tokens.status).toBe(200);
  const [grant] = await query('SELECT id, session_id FROM oauth_grants WHERE client_id = ?', clientId);
  const sessionId = (await rest('GET', '/v1/sessions', undefined, session)).body.items.find((s: any) => s.current).session_id;
  // The grant remembers the browser session that approved it.
  expect(grant!.session_id).toBe(sessionId);
  return { clientId, deviceId, session, sessionId: sessionId as string, grantId: grant!.id as string, access: tokens.body.access_token as string, refresh: tokens.body.refresh_token as string };
}

const refresh = (c: { clientId: string; refresh: string }) => token({ grant_type: 'refresh_token', refresh_token: c.refresh, client_id: c.clientId });
const grantOf = async (id: string) => (await query('SELECT revoked_at, revoked_reason, refresh_hash FROM oauth_grants WHERE id = ?', id))[0]!;

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
    const root = await admin();
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
    expect(removed.body).toEqual({ device_id: phone.deviceId, sessions_ended: 1, api_keys_revoked: 1, grants_revoked: 0 });

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

  it('removing a device revokes the OAuth grants approved through its sessions; grants approved elsewhere keep working', async () => {
    const u = await user();
    const phone = await mcpClientThrough(u, 'Phone');
    const laptop = await mcpClientThrough(u, 'Laptop');
    const nowhere = await mcpClientThrough(u, null);
    for (const c of [phone, laptop, nowhere]) {
      const me = await callTool('whoami', {}, c.access);
      expect(me.status).toBe(200);
      expect(me.body.result.isError).toBeFalsy();
    }

    const head = await auditHead();
    const removed = await rest('DELETE', `/v1/devices/${phone.deviceId}`, undefined, laptop.session);
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual({ device_id: phone.deviceId, sessions_ended: 1, api_keys_revoked: 0, grants_revoked: 1 });
    const audit = (await auditSince(head)).find((e) => e.target === phone.deviceId && e.outcome === 'success');
    expect(JSON.parse(audit!.detail)).toMatchObject({ sessions_ended: 1, grants_revoked: [phone.grantId] });

    // The MCP client authorized on the phone is stopped: its access token at once, its refresh token for good.
    expect((await callTool('whoami', {}, phone.access)).status).toBe(401);
    const refused = await refresh(phone);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_grant');
    expect(await grantOf(phone.grantId)).toMatchObject({ revoked_reason: 'device_removed', refresh_hash: null });
    expect((await grantOf(phone.grantId)).revoked_at).not.toBeNull();

    // Negative controls: a grant approved on another device, and one approved by a session on no device.
    for (const c of [laptop, nowhere]) {
      expect((await callTool('whoami', {}, c.access)).status).toBe(200);
      const renewed = await refresh(c);
      expect(renewed.status).toBe(200);
      expect((await callTool('whoami', {}, renewed.body.access_token)).status).toBe(200);
      expect((await grantOf(c.grantId)).revoked_at).toBeNull();
    }
    // Removing the laptop now ends only the laptop's grant.
    const second = await rest('DELETE', `/v1/devices/${laptop.deviceId}`, undefined, nowhere.session);
    expect(second.body).toMatchObject({ sessions_ended: 1, grants_revoked: 1 });
    expect((await grantOf(laptop.grantId)).revoked_reason).toBe('device_removed');
    expect((await grantOf(nowhere.grantId)).revoked_at).toBeNull();
  });

  it('removing a device also revokes a grant whose approving session on it was signed out since', async () => {
    const u = await user();
    const phone = await mcpClientThrough(u, 'Phone');
    // The browser session on the phone signs out; the MCP client it authorized keeps its grant.
    expect((await rest('DELETE', `/v1/sessions/${phone.sessionId}`, undefined, u.token)).status).toBe(200);
    expect((await callTool('whoami', {}, phone.access)).status).toBe(200);
    const removed = await rest('DELETE', `/v1/devices/${phone.deviceId}`, undefined, u.token);
    expect(removed.body).toMatchObject({ sessions_ended: 0, grants_revoked: 1 });
    expect((await callTool('whoami', {}, phone.access)).status).toBe(401);
    expect((await grantOf(phone.grantId)).revoked_reason).toBe('device_removed');
  });

  it('ties no grant to a device when no browser session approved it (client_credentials)', async () => {
    const u = await user();
    const root = await admin();
    const service = await rest('POST', '/v1/oauth/clients', { client_name: 'Nightly job', redirect_uris: [], grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' }, root.token);
    expect(service.status).toBe(201);
    const basic = `Basic ${btoa(`${encodeURIComponent(service.body.client_id)}:${encodeURIComponent(service.body.client_secret)}`)}`;
    expect((await token({ grant_type: 'client_credentials', scope: 'mcp:read', resource: MCP_RESOURCE }, { authorization: basic })).status).toBe(200);
    expect(await query('SELECT session_id FROM oauth_grants WHERE client_id = ?', service.body.client_id)).toEqual([{ session_id: null }]);
    // A device with no grants through its sessions: nothing else is revoked.
    const phone = await device(u, 'Phone', 'mobile');
    const removed = await rest('DELETE', `/v1/devices/${phone.deviceId}`, undefined, u.token);
    expect(removed.body.grants_revoked).toBe(0);
  });
});
