import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, auditHead, auditSince, mcp, mcpSessionToken, ORIGIN, query, rest, user, type Caller } from '../../test/workers/helpers';

let root: Caller;
beforeAll(async () => {
  root = await admin();
});

const signIn = async (username: string, password: string, device_name?: string) => {
  const res = await rest('POST', '/v1/accounts/sign-in', { username, password, ...(device_name ? { device_name } : {}) });
  expect(res.status).toBe(200);
  return res.body as { access_token: string; session_id: string; chitty_id: string };
};
const list = (token: string, query = '') => rest('GET', `/v1/sessions${query}`, undefined, token);
/** The typed-client door (oRPC RPC protocol). */
const rpcWhoami = (token: string) =>
  SELF.fetch(`${ORIGIN}/rpc/accounts/me`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });

describe('sessions.list', () => {
  it('lists the caller live sessions and flags the current one', async () => {
    const u = await user();
    const phone = await signIn(u.username, u.password, 'Phone');
    const res = await list(phone.access_token);
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(2);
    expect(res.body.items.filter((s: { current: boolean }) => s.current)).toMatchObject([{ session_id: phone.session_id, device_name: 'Phone', chitty_id: u.chittyId }]);
    const fromFirst = await list(u.token);
    expect(fromFirst.body.items.find((s: { session_id: string }) => s.session_id === phone.session_id).current).toBe(false);
    expect(fromFirst.body.items.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
  });

  it('leaves ended sessions out unless include_ended is set', async () => {
    const u = await user();
    const other = await signIn(u.username, u.password);
    await rest('DELETE', `/v1/sessions/${other.session_id}`, undefined, u.token);
    const ids = (r: { body: { items: { session_id: string }[] } }) => r.body.items.map((s) => s.session_id);
    expect(ids(await list(u.token))).not.toContain(other.session_id);
    expect(ids(await list(u.token, '?include_ended=true'))).toContain(other.session_id);
  });

  it('lists another ChittyID sessions for an admin, none of them current', async () => {
    const u = await user();
    const res = await list(root.token, `?chitty_id=${u.chittyId}`);
    expect(res.body.items).toMatchObject([{ chitty_id: u.chittyId, current: false }]);
  });
});

describe('sessions.revoke', () => {
  it('ends the session at once: its token gets 401 on REST, RPC and MCP', async () => {
    const u = await user();
    const other = await signIn(u.username, u.password, 'Tablet');
    const otherOnMcp = await mcpSessionToken(u.chittyId, other.session_id);
    expect((await rest('GET', '/v1/accounts/me', undefined, other.access_token)).status).toBe(200);
    expect((await rpcWhoami(other.access_token)).status).toBe(200);
    expect((await mcp('tools/list', {}, otherOnMcp)).status).toBe(200);
    const head = await auditHead();

    const res = await rest('DELETE', `/v1/sessions/${other.session_id}`, undefined, u.token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ session_id: other.session_id, current: false });
    expect(res.body.revoked_at).not.toBeNull();
    expect((await query('SELECT revoked_at FROM sessions WHERE id = ?', other.session_id))[0]).toEqual({ revoked_at: res.body.revoked_at });
    expect(await auditSince(head)).toMatchObject([{ actor: u.chittyId, action: 'sessions.revoke', target: other.session_id, outcome: 'success' }]);

    const refused = await rest('GET', '/v1/accounts/me', undefined, other.access_token);
    expect(refused.status).toBe(401);
    expect(refused.body.data).toEqual({ reason: 'revoked' });
    expect((await rpcWhoami(other.access_token)).status).toBe(401);
    const viaMcp = await mcp('tools/list', {}, otherOnMcp);
    expect(viaMcp.status).toBe(401);
    expect(JSON.stringify(viaMcp.body)).toContain('revoked');
    expect((await rest('GET', '/v1/accounts/me', undefined, u.token)).status).toBe(200);
  });

  it('ends the calling session itself', async () => {
    const u = await user();
    const me = await rest('GET', '/v1/accounts/me', undefined, u.token);
    const res = await rest('DELETE', `/v1/sessions/${me.body.credential_id}`, undefined, u.token);
    expect(res.status).toBe(200);
    expect(res.body.current).toBe(true);
    expect((await rest('GET', '/v1/accounts/me', undefined, u.token)).status).toBe(401);
  });

  it('answers 404 for another user session, which keeps working', async () => {
    const owner = await user();
    const other = await user();
    const ownerSession = (await rest('GET', '/v1/accounts/me', undefined, owner.token)).body.credential_id;
    const head = await auditHead();
    const res = await rest('DELETE', `/v1/sessions/${ownerSession}`, undefined, other.token);
    expect(res.status).toBe(404);
    expect((await query('SELECT revoked_at FROM sessions WHERE id = ?', ownerSession))[0]).toEqual({ revoked_at: null });
    expect((await rest('GET', '/v1/accounts/me', undefined, owner.token)).status).toBe(200);
    expect(await auditSince(head)).toMatchObject([{ actor: other.chittyId, action: 'sessions.revoke', outcome: 'failure' }]);
  });

  it('answers 404 for a session that does not exist', async () => {
    const u = await user();
    expect((await rest('DELETE', '/v1/sessions/ses_00000000000000000000000000', undefined, u.token)).status).toBe(404);
  });

  it('lets an admin end another user session', async () => {
    const u = await user();
    const session = (await rest('GET', '/v1/accounts/me', undefined, u.token)).body.credential_id;
    expect((await rest('DELETE', `/v1/sessions/${session}`, undefined, root.token)).status).toBe(200);
    expect((await rest('GET', '/v1/accounts/me', undefined, u.token)).status).toBe(401);
  });
});

describe('sessions (MCP door)', () => {
  it('refuses a sign-in token on /mcp: it was issued for the API, not the MCP resource', async () => {
    const u = await user();
    const res = await mcp('tools/list', {}, u.token);
    expect(res.status).toBe(401);
    expect(JSON.stringify(res.body)).toContain('wrong_audience');
  });
});
