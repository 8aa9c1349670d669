import { env } from 'cloudflare:test';
import { base64url } from 'jose';
import { describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, admin, apiKey, auditHead, auditSince, count, mcp, mcpSessionToken, query, rest, snapshotDatabase, user } from '../../test/workers/helpers';

const PASSWORD = 'a long enough password';
const attemptsOf = async (username: string) =>
  Number((await query("SELECT COALESCE(SUM(count), 0) AS n FROM rate_limits WHERE key LIKE ?", `signin:ua:${username.toLowerCase()}:%`))[0]!.n);
const accountRow = async (chittyId: string) => (await query('SELECT * FROM accounts WHERE chitty_id = ?', chittyId))[0]!;
const signIn = (username: string, password: string) => rest('POST', '/v1/accounts/sign-in', { username, password });

/** Tables a refused account operation must leave untouched. */
const accountTables = async () => {
  const { identities, accounts, grants, sessions, api_keys } = await snapshotDatabase();
  return { identities, accounts, grants, sessions, api_keys };
};

// The tests of this file share one database and run in order: bootstrap first.
describe('accounts.bootstrap', () => {
  it('refuses a wrong setup token with 403 and creates nothing', async () => {
    const before = await accountTables();
    const res = await rest('POST', '/v1/accounts/bootstrap', { setup_token: 'wrong-token', username: 'admin', password: ADMIN_PASSWORD });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('FORBIDDEN_SETUP');
    expect(await accountTables()).toEqual(before);
    expect(await count('identities')).toBe(0);
  });

  it('creates the first admin with an admin grant', async () => {
    const res = await rest('POST', '/v1/accounts/bootstrap', { setup_token: env.SETUP_TOKEN, username: 'admin', password: ADMIN_PASSWORD });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ username: 'admin', status: 'active', roles: ['admin'] });
    const row = await accountRow(res.body.chitty_id);
    expect(row.password_hash).toMatch(/^pbkdf2-sha256\$100000\$/);
    expect(await query('SELECT role, permission FROM grants WHERE chitty_id = ?', res.body.chitty_id)).toEqual([{ role: 'admin', permission: null }]);
    const [event] = await query("SELECT * FROM audit_events WHERE action = 'accounts.bootstrap' AND outcome = 'success'");
    expect(event).toMatchObject({ actor: res.body.chitty_id, target: res.body.chitty_id, door: 'rest' });
  });

  it('runs only once: a second bootstrap answers 409 and creates nothing', async () => {
    const before = await accountTables();
    const res = await rest('POST', '/v1/accounts/bootstrap', { setup_token: env.SETUP_TOKEN, username: 'second-admin', password: ADMIN_PASSWORD });
    expect(res.status).toBe(409);
    expect(await accountTables()).toEqual(before);
  });
});

describe('accounts.create', () => {
  it('creates an account with the given roles', async () => {
    const root = await admin();
    const head = await auditHead();
    const res = await rest('POST', '/v1/accounts', { username: 'reader', password: PASSWORD, display_name: 'Reader', roles: ['readonly'] }, root.token);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ username: 'reader', display_name: 'Reader', status: 'active', roles: ['readonly'] });
    expect(res.body.chitty_id).toMatch(/^CHITTY-PEO-/);
    expect(await accountRow(res.body.chitty_id)).toMatchObject({ username: 'reader', failed_attempts: 0 });
    expect(await query('SELECT role, granted_by FROM grants WHERE chitty_id = ?', res.body.chitty_id)).toEqual([{ role: 'readonly', granted_by: root.chittyId }]);
    expect(await auditSince(head)).toMatchObject([
      { actor: root.chittyId, action: 'accounts.create', target: res.body.chitty_id, door: 'rest', outcome: 'success' },
    ]);
  });

  it('gives the user role by default', async () => {
    const root = await admin();
    const res = await rest('POST', '/v1/accounts', { username: 'defaulted', password: PASSWORD }, root.token);
    expect(res.body.roles).toEqual(['user']);
  });

  it.each(['reader', 'READER', 'Reader'])('answers 409 and writes nothing when the username %s is taken', async (username) => {
    const root = await admin();
    const before = await accountTables();
    const res = await rest('POST', '/v1/accounts', { username, password: PASSWORD, roles: ['admin'] }, root.token);
    expect(res.status).toBe(409);
    expect(await accountTables()).toEqual(before);
  });

  it.each([
    ['a short password', { username: 'shorty', password: 'short' }],
    ['a username with a space', { username: 'has space', password: PASSWORD }],
    ['an unknown role', { username: 'rolling', password: PASSWORD, roles: ['superuser'] }],
    ['an unknown field', { username: 'extra', password: PASSWORD, admin: true }],
  ])('answers 400 and writes nothing for %s', async (_label, body) => {
    const root = await admin();
    const before = await accountTables();
    const res = await rest('POST', '/v1/accounts', body, root.token);
    expect(res.status).toBe(400);
    expect(await accountTables()).toEqual(before);
  });

  it('refuses a user with 403, writes nothing and appends a denied audit event', async () => {
    const u = await user();
    const before = await accountTables();
    const head = await auditHead();
    const res = await rest('POST', '/v1/accounts', { username: 'sneaky', password: PASSWORD, roles: ['admin'] }, u.token);
    expect(res.status).toBe(403);
    expect(res.body.data).toEqual({ permission: 'accounts:users:create' });
    expect(await accountTables()).toEqual(before);
    const events = await auditSince(head);
    expect(events).toMatchObject([{ actor: u.chittyId, action: 'accounts.create', door: 'rest', outcome: 'denied' }]);
    expect(JSON.parse(events[0]!.detail)).toMatchObject({ permission: 'accounts:users:create' });
  });
});

describe('accounts.signIn', () => {
  it('starts a session and returns a bearer token for it', async () => {
    const u = await user();
    const res = await rest('POST', '/v1/accounts/sign-in', { username: u.username, password: u.password, device_name: 'Laptop' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, chitty_id: u.chittyId });
    const [session] = await query('SELECT * FROM sessions WHERE id = ?', res.body.session_id);
    expect(session).toMatchObject({ chitty_id: u.chittyId, device_name: 'Laptop', client: 'rest', revoked_at: null });
    expect(Date.parse(session!.expires_at) - Date.now()).toBeGreaterThan(3500_000);
    const me = await rest('GET', '/v1/accounts/me', undefined, res.body.access_token);
    expect(me.body).toMatchObject({ chitty_id: u.chittyId, credential: 'session', credential_id: res.body.session_id });
  });

  it('answers 401, starts no session and counts the attempt when the password is wrong', async () => {
    const u = await user();
    const sessions = await count('sessions');
    const res = await signIn(u.username, 'the wrong password');
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('INVALID_CREDENTIALS');
    expect(await count('sessions')).toBe(sessions);
    expect(await attemptsOf(u.username)).toBe(1);
    await signIn(u.username, 'the wrong password again');
    expect(await attemptsOf(u.username)).toBe(2);
  });

  it('clears the attempts of its username and address on a successful sign-in', async () => {
    const u = await user();
    await signIn(u.username, 'the wrong password');
    expect(await attemptsOf(u.username)).toBe(1);
    expect((await signIn(u.username, u.password)).status).toBe(200);
    expect(await attemptsOf(u.username)).toBe(0);
  });

  it('answers 401 with the same message for an unknown username', async () => {
    const u = await user();
    const unknown = await signIn('nobody-here', PASSWORD);
    const wrong = await signIn(u.username, 'the wrong password');
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
  });

  it('throttles after 10 attempts: 429 with Retry-After even with the right password, and audits the lock once', async () => {
    const u = await user();
    const head = await auditHead();
    for (let i = 0; i < 10; i++) expect((await signIn(u.username, `wrong password ${i}`)).status).toBe(401);
    const sessions = await count('sessions', 'chitty_id = ?', u.chittyId);
    const locked = await signIn(u.username, u.password);
    expect(locked.status).toBe(429);
    expect(locked.body.code).toBe('TOO_MANY_REQUESTS');
    const retryAfter = Number(locked.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    expect(locked.body.data).toEqual({ retry_after: retryAfter });
    expect(await count('sessions', 'chitty_id = ?', u.chittyId)).toBe(sessions);
    expect((await signIn(u.username, u.password)).status).toBe(429);
    const locks = (await auditSince(head)).filter((e) => e.action === 'accounts.lock');
    expect(locks).toHaveLength(1);
    expect(JSON.parse(locks[0]!.detail)).toMatchObject({ username: u.username, limit: 'username_address' });
  });

  it('signs in again once the window of the failures has passed', async () => {
    const u = await user();
    // Failures counted in an earlier window do not count now.
    const earlier = Math.floor(Date.now() / 1000 / 900) - 1;
    await env.DB.prepare('INSERT INTO rate_limits (key, count, window_ends) VALUES (?, 50, ?)').bind(`signin:ua:${u.username.toLowerCase()}:unknown:${earlier}`, new Date(Date.now() + 60_000).toISOString()).run();
    expect((await signIn(u.username, u.password)).status).toBe(200);
  });
});

describe('password hash upgrade', () => {
  it('replaces a hash made with older parameters at the next successful sign-in', async () => {
    const u = await user();
    // The stored form of the same password with 1,000 iterations, as an older release might have written it.
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(u.password.normalize('NFKC')), 'PBKDF2', false, ['deriveBits']);
    const bits = new Uint8Array(await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations: 1000 }, key, 256));
    const old = `pbkdf2-sha256$1000$${base64url.encode(salt)}$${base64url.encode(bits)}`;
    await env.DB.prepare('UPDATE accounts SET password_hash = ? WHERE chitty_id = ?').bind(old, u.chittyId).run();
    expect((await signIn(u.username, 'not the password')).status).toBe(401);
    expect((await accountRow(u.chittyId)).password_hash).toBe(old);
    expect((await signIn(u.username, u.password)).status).toBe(200);
    expect((await accountRow(u.chittyId)).password_hash).toMatch(/^pbkdf2-sha256\$100000\$/);
    expect((await signIn(u.username, u.password)).status).toBe(200);
  });
});

describe('accounts.unlock', () => {
  it('lets a throttled account sign in again at once, and is audited', async () => {
    const root = await admin();
    const u = await user();
    for (let i = 0; i < 11; i++) await signIn(u.username, `wrong password ${i}`);
    expect((await signIn(u.username, u.password)).status).toBe(429);
    const head = await auditHead();
    const res = await rest('POST', `/v1/accounts/${u.chittyId}/unlock`, {}, root.token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ unlocked: true });
    expect((await signIn(u.username, u.password)).status).toBe(200);
    const [event] = (await auditSince(head)).filter((e) => e.action === 'accounts.unlock');
    expect(event).toMatchObject({ actor: root.chittyId, target: u.chittyId, outcome: 'success' });
  });

  it('is refused to a plain user and answers 404 for an unknown account', async () => {
    const root = await admin();
    const u = await user();
    expect((await rest('POST', `/v1/accounts/${root.chittyId}/unlock`, {}, u.token)).status).toBe(403);
    expect((await rest('POST', '/v1/accounts/CHITTY-PEO-ZZZZZZZZZZ-ZZZ/unlock', {}, root.token)).status).toBe(404);
  });
});

describe('accounts.me', () => {
  it('describes the calling session, its scopes, permissions and account', async () => {
    const u = await user();
    const res = await rest('GET', '/v1/accounts/me', undefined, u.token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ chitty_id: u.chittyId, credential: 'session', scopes: ['*'], account: { username: u.username, roles: ['user'] } });
    expect(res.body.permissions).toContain('api_keys:generate');
    expect(res.body.permissions).not.toContain('*');
  });

  it('describes an API key caller with the key scopes', async () => {
    const u = await user();
    const key = await apiKey(u, ['permissions:check']);
    const res = await rest('GET', '/v1/accounts/me', undefined, key);
    expect(res.body).toMatchObject({ chitty_id: u.chittyId, credential: 'api_key', scopes: ['permissions:check'], permissions: ['permissions:check'] });
    expect(res.body.credential_id).toMatch(/^key_/);
  });

  it('answers 401 without a credential', async () => {
    expect((await rest('GET', '/v1/accounts/me')).status).toBe(401);
  });
});

describe('accounts.setPassword', () => {
  it('requires the current password for one own account', async () => {
    const u = await user();
    const hash = (await accountRow(u.chittyId)).password_hash;
    for (const body of [{ new_password: 'a brand new password' }, { current_password: 'not the password', new_password: 'a brand new password' }]) {
      const res = await rest('PUT', `/v1/accounts/${u.chittyId}/password`, body, u.token);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('INVALID_CREDENTIALS');
    }
    expect((await accountRow(u.chittyId)).password_hash).toBe(hash);
  });

  it('changes the password and ends every other session, whose token then gets 401', async () => {
    const u = await user();
    const other = await signIn(u.username, u.password);
    const otherOnMcp = await mcpSessionToken(u.chittyId, other.body.session_id);
    expect((await mcp('tools/list', {}, otherOnMcp)).status).toBe(200);
    const res = await rest('PUT', `/v1/accounts/${u.chittyId}/password`, { current_password: u.password, new_password: 'a brand new password' }, u.token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ updated: true, sessions_ended: 1 });
    expect((await query('SELECT revoked_at FROM sessions WHERE id = ?', other.body.session_id))[0]!.revoked_at).not.toBeNull();
    expect((await rest('GET', '/v1/accounts/me', undefined, other.body.access_token)).status).toBe(401);
    expect((await mcp('tools/list', {}, otherOnMcp)).status).toBe(401);
    expect((await rest('GET', '/v1/accounts/me', undefined, u.token)).status).toBe(200);
    expect((await signIn(u.username, u.password)).status).toBe(401);
    expect((await signIn(u.username, 'a brand new password')).status).toBe(200);
  });

  it('lets an admin set another account password without the current one, ending all its sessions', async () => {
    const root = await admin();
    const u = await user();
    const res = await rest('PUT', `/v1/accounts/${u.chittyId}/password`, { new_password: 'set by the admin' }, root.token);
    expect(res.body).toEqual({ updated: true, sessions_ended: 1 });
    expect((await rest('GET', '/v1/accounts/me', undefined, u.token)).status).toBe(401);
    expect((await signIn(u.username, 'set by the admin')).status).toBe(200);
  });

  it('refuses a user changing another account password with 403', async () => {
    const u = await user();
    const victim = await user();
    const hash = (await accountRow(victim.chittyId)).password_hash;
    const res = await rest('PUT', `/v1/accounts/${victim.chittyId}/password`, { new_password: 'hijacked password' }, u.token);
    expect(res.status).toBe(403);
    expect(res.body.data).toEqual({ permission: 'accounts:password:write:any' });
    expect((await accountRow(victim.chittyId)).password_hash).toBe(hash);
  });
});

describe('accounts.disable', () => {
  it('stops the session token and the API key at once and refuses sign-in', async () => {
    const root = await admin();
    const u = await user();
    const key = await apiKey(u);
    const sessionOnMcp = await mcpSessionToken(u.chittyId, (await rest('GET', '/v1/accounts/me', undefined, u.token)).body.credential_id);
    for (const token of [u.token, key]) expect((await rest('GET', '/v1/accounts/me', undefined, token)).status).toBe(200);
    for (const token of [sessionOnMcp, key]) expect((await mcp('tools/list', {}, token)).status).toBe(200);
    const head = await auditHead();

    const res = await rest('POST', `/v1/accounts/${u.chittyId}/disable`, {}, root.token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ chitty_id: u.chittyId, status: 'disabled' });
    expect((await query('SELECT status FROM identities WHERE chitty_id = ?', u.chittyId))[0]).toEqual({ status: 'disabled' });
    expect(await auditSince(head)).toMatchObject([{ actor: root.chittyId, action: 'accounts.disable', target: u.chittyId, outcome: 'success' }]);

    for (const token of [u.token, key]) expect((await rest('GET', '/v1/accounts/me', undefined, token)).status).toBe(401);
    for (const token of [sessionOnMcp, key]) expect((await mcp('tools/list', {}, token)).status).toBe(401);
    expect((await signIn(u.username, u.password)).status).toBe(401);
    expect(await count('sessions', 'chitty_id = ? AND revoked_at IS NULL', u.chittyId)).toBe(0);
  });

  it('refuses disabling one own account with 409', async () => {
    const root = await admin();
    const res = await rest('POST', `/v1/accounts/${root.chittyId}/disable`, {}, root.token);
    expect(res.status).toBe(409);
    expect((await rest('GET', '/v1/accounts/me', undefined, root.token)).status).toBe(200);
  });

  it('refuses a user with 403', async () => {
    const u = await user();
    const victim = await user();
    expect((await rest('POST', `/v1/accounts/${victim.chittyId}/disable`, {}, u.token)).status).toBe(403);
    expect((await rest('GET', '/v1/accounts/me', undefined, victim.token)).status).toBe(200);
  });
});

describe('accounts.enable', () => {
  it('lets a re-enabled account sign in and use its API key again, while ended sessions stay ended', async () => {
    const root = await admin();
    const u = await user();
    const key = await apiKey(u);
    await rest('POST', `/v1/accounts/${u.chittyId}/disable`, {}, root.token);
    const res = await rest('POST', `/v1/accounts/${u.chittyId}/enable`, {}, root.token);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('active');
    expect((await rest('GET', '/v1/accounts/me', undefined, key)).status).toBe(200);
    expect((await rest('GET', '/v1/accounts/me', undefined, u.token)).status).toBe(401);
    expect((await signIn(u.username, u.password)).status).toBe(200);
  });
});

describe('accounts.list / accounts.get', () => {
  it('pages through accounts for an admin', async () => {
    const root = await admin();
    const total = await count('accounts');
    const seen = new Set<string>();
    let cursor: string | null = null;
    do {
      const res: Awaited<ReturnType<typeof rest>> = await rest('GET', `/v1/accounts?limit=3${cursor ? `&cursor=${cursor}` : ''}`, undefined, root.token);
      expect(res.status).toBe(200);
      for (const a of res.body.items) seen.add(a.chitty_id);
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(seen.size).toBe(total);
  });

  it('gets one account and answers 404 for an identity without one', async () => {
    const root = await admin();
    const u = await user();
    expect((await rest('GET', `/v1/accounts/${u.chittyId}`, undefined, root.token)).body).toMatchObject({ username: u.username });
    const org = await rest('POST', '/v1/identities', { type: 'ORG' }, root.token);
    expect((await rest('GET', `/v1/accounts/${org.body.chitty_id}`, undefined, root.token)).status).toBe(404);
  });

  it('refuses a user listing accounts with 403', async () => {
    const u = await user();
    expect((await rest('GET', '/v1/accounts', undefined, u.token)).status).toBe(403);
  });
});
