import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, apiKey, auditHead, auditSince, count, query, rest, user, type Caller } from '../../test/workers/helpers';
import { formatChittyId } from '../identities/chitty-id';

let root: Caller;
beforeAll(async () => {
  root = await admin();
});

const check = (caller: Caller | string, permission: string, chittyId?: string) =>
  rest('POST', '/v1/permissions/check', { permission, ...(chittyId ? { chitty_id: chittyId } : {}) }, typeof caller === 'string' ? caller : caller.token);
const grant = (caller: Caller, body: Record<string, unknown>) => rest('POST', '/v1/permissions/grants', body, caller.token);
const grantRows = (chittyId: string) => query('SELECT role, permission, granted_by, expires_at FROM grants WHERE chitty_id = ? ORDER BY id', chittyId);

describe('permissions.grant', () => {
  it('grants a role: the row is written, the event appended and the role takes effect', async () => {
    const u = await user(['readonly']);
    expect((await rest('POST', '/v1/api-keys', { name: 'before' }, u.token)).status).toBe(403);
    const head = await auditHead();
    const res = await grant(root, { chitty_id: u.chittyId, role: 'user' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ chitty_id: u.chittyId, role: 'user', permission: null, granted_by: root.chittyId, expires_at: null });
    expect(res.body.grant_id).toMatch(/^grt_/);
    expect(await grantRows(u.chittyId)).toContainEqual({ role: 'user', permission: null, granted_by: root.chittyId, expires_at: null });
    const events = await auditSince(head);
    expect(events).toMatchObject([{ actor: root.chittyId, action: 'permissions.grant', target: u.chittyId, outcome: 'success' }]);
    expect(JSON.parse(events[0]!.detail)).toMatchObject({ grant_id: res.body.grant_id, role: 'user' });
    expect((await rest('POST', '/v1/api-keys', { name: 'after' }, u.token)).status).toBe(201);
  });

  it('grants a permission with an expiry', async () => {
    const u = await user(['readonly']);
    const res = await grant(root, { chitty_id: u.chittyId, permission: 'audit:events:read', expires_in: '2h' });
    expect(res.status).toBe(201);
    expect(Math.abs(Date.parse(res.body.expires_at) - (Date.now() + 7_200_000))).toBeLessThan(60_000);
    expect((await rest('GET', '/v1/audit/events?limit=1', undefined, u.token)).status).toBe(200);
  });

  it.each([
    ['neither role nor permission', {}],
    ['both role and permission', { role: 'user', permission: 'api_keys:generate' }],
    ['an unknown role', { role: 'owner' }],
    ['a malformed permission', { permission: 'API_KEYS:GENERATE' }],
    ['a permission with too many segments', { permission: 'a:b:c:d:e:f' }],
  ])('answers 400 and writes nothing for %s', async (_label, body) => {
    const before = await count('grants');
    const res = await grant(root, { chitty_id: root.chittyId, ...body });
    expect(res.status).toBe(400);
    expect(await count('grants')).toBe(before);
  });

  it.each([
    ['not registered', formatChittyId('PEO', 'GHOSTLY1')],
    ['a typo of a registered id', 'CHITTY-PEO-NOBODY-AAA'],
  ])('answers 404 and writes nothing for a ChittyID that is %s', async (_label, chittyId) => {
    const before = await count('grants');
    const res = await grant(root, { chitty_id: chittyId, role: 'user' });
    expect(res.status).toBe(404);
    expect(await count('grants')).toBe(before);
  });

  describe('by a user holding permissions:grant', () => {
    let granter: Caller;
    let target: Caller;
    beforeAll(async () => {
      granter = await user();
      await grant(root, { chitty_id: granter.chittyId, permission: 'permissions:grant' });
      target = await user(['readonly']);
    });

    it('refuses to grant role:admin, with a denied event and no row', async () => {
      const before = await grantRows(target.chittyId);
      const head = await auditHead();
      const res = await grant(granter, { chitty_id: target.chittyId, role: 'admin' });
      expect(res.status).toBe(403);
      expect(res.body.data).toEqual({ permission: 'role:admin' });
      expect(await grantRows(target.chittyId)).toEqual(before);
      expect(await auditSince(head)).toMatchObject([{ actor: granter.chittyId, action: 'permissions.grant', outcome: 'denied' }]);
    });

    it.each([
      ['a wildcard beyond what it holds', { permission: 'api_keys:*' }],
      ['the :any form of what it holds', { permission: 'api_keys:revoke:any' }],
      ['a permission of the admin role only', { permission: 'audit:events:read' }],
      ['everything', { permission: '*' }],
    ])('refuses to grant %s', async (_label, body) => {
      const before = await count('grants');
      expect((await grant(granter, { chitty_id: target.chittyId, ...body })).status).toBe(403);
      expect(await count('grants')).toBe(before);
    });

    it('grants what it holds', async () => {
      const res = await grant(granter, { chitty_id: target.chittyId, permission: 'jwt:generate' });
      expect(res.status).toBe(201);
      expect(await grantRows(target.chittyId)).toContainEqual({ role: null, permission: 'jwt:generate', granted_by: granter.chittyId, expires_at: null });
    });
  });

  it('refuses a plain user with 403', async () => {
    const u = await user();
    const res = await grant(u, { chitty_id: root.chittyId, permission: 'jwt:generate' });
    expect(res.status).toBe(403);
    expect(res.body.data).toEqual({ permission: 'permissions:grant' });
  });
});

describe('permissions.check', () => {
  it('matches a wildcard grant: api_keys:* covers api_keys:generate', async () => {
    const u = await user(['readonly']);
    expect((await check(u, 'api_keys:generate')).body).toEqual({ allowed: false, chitty_id: u.chittyId, permission: 'api_keys:generate', matched_by: [] });
    await grant(root, { chitty_id: u.chittyId, permission: 'api_keys:*' });
    expect((await check(u, 'api_keys:generate')).body).toEqual({ allowed: true, chitty_id: u.chittyId, permission: 'api_keys:generate', matched_by: ['permission:api_keys:*'] });
    expect((await check(u, 'api_keys:revoke:any')).body.allowed).toBe(true);
    expect((await check(u, 'jwt:generate')).body.allowed).toBe(false);
  });

  it('names every grant that allows the permission in matched_by', async () => {
    const u = await user();
    await grant(root, { chitty_id: u.chittyId, permission: 'api_keys:*' });
    const res = await check(u, 'api_keys:generate');
    expect(res.body.allowed).toBe(true);
    expect(res.body.matched_by.sort()).toEqual(['permission:api_keys:*', 'role:user']);
    expect((await check(root, 'audit:chain:verify')).body.matched_by).toEqual(['role:admin']);
  });

  it('checks another ChittyID for an admin, and refuses a user with 403', async () => {
    const u = await user();
    const other = await user();
    expect((await check(root, 'jwt:generate', u.chittyId)).body).toMatchObject({ allowed: true, chitty_id: u.chittyId, matched_by: ['role:user'] });
    const res = await check(other, 'jwt:generate', u.chittyId);
    expect(res.status).toBe(403);
    expect(res.body.data).toEqual({ permission: 'permissions:check:any' });
  });

  it('ignores an expired grant, in check and in enforcement', async () => {
    const u = await user(['readonly']);
    const res = await grant(root, { chitty_id: u.chittyId, permission: 'audit:*' });
    expect((await check(u, 'audit:events:read')).body.allowed).toBe(true);
    expect((await rest('GET', '/v1/audit/events?limit=1', undefined, u.token)).status).toBe(200);
    await env.DB.prepare('UPDATE grants SET expires_at = ? WHERE id = ?').bind(new Date(Date.now() - 1000).toISOString(), res.body.grant_id).run();
    expect((await check(u, 'audit:events:read')).body).toMatchObject({ allowed: false, matched_by: [] });
    expect((await rest('GET', '/v1/audit/events?limit=1', undefined, u.token)).status).toBe(403);
    const listed = await rest('GET', '/v1/permissions/grants', undefined, u.token);
    expect(listed.body.items.map((g: { grant_id: string }) => g.grant_id)).not.toContain(res.body.grant_id);
  });
});

describe('permissions.revoke', () => {
  it('deletes the grant, appends an event, and the permission is gone at once', async () => {
    const u = await user(['readonly']);
    const granted = await grant(root, { chitty_id: u.chittyId, permission: 'jwt:generate' });
    expect((await rest('POST', '/v1/jwt', {}, u.token)).status).toBe(201);
    const head = await auditHead();
    const res = await rest('DELETE', `/v1/permissions/grants/${granted.body.grant_id}`, undefined, root.token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ grant_id: granted.body.grant_id, permission: 'jwt:generate' });
    expect(await count('grants', 'id = ?', granted.body.grant_id)).toBe(0);
    expect(await auditSince(head)).toMatchObject([{ actor: root.chittyId, action: 'permissions.revoke', target: u.chittyId, outcome: 'success' }]);
    expect((await check(u, 'jwt:generate')).body.allowed).toBe(false);
    expect((await rest('POST', '/v1/jwt', {}, u.token)).status).toBe(403);
  });

  it('answers 404 for an unknown grant', async () => {
    expect((await rest('DELETE', '/v1/permissions/grants/grt_00000000000000000000000000', undefined, root.token)).status).toBe(404);
  });

  it('refuses a user revoking its own role with 403 and keeps the grant', async () => {
    const u = await user();
    const [own] = await query<{ id: string }>('SELECT id FROM grants WHERE chitty_id = ?', u.chittyId);
    expect((await rest('DELETE', `/v1/permissions/grants/${own!.id}`, undefined, u.token)).status).toBe(403);
    expect(await count('grants', 'id = ?', own!.id)).toBe(1);
  });
});

describe('permissions.list', () => {
  it('lists the caller own grants', async () => {
    const u = await user();
    const res = await rest('GET', '/v1/permissions/grants', undefined, u.token);
    expect(res.body.items).toMatchObject([{ chitty_id: u.chittyId, role: 'user', permission: null }]);
  });

  it('lists another ChittyID grants for an admin', async () => {
    const u = await user(['readonly']);
    const res = await rest('GET', `/v1/permissions/grants?chitty_id=${u.chittyId}`, undefined, root.token);
    expect(res.body.items).toMatchObject([{ chitty_id: u.chittyId, role: 'readonly' }]);
  });
});

describe('permissions.list, sessions.list, apiKeys.list (the :any rule)', () => {
  let u: Caller;
  let victim: Caller & { username: string };
  beforeAll(async () => {
    u = await user();
    victim = await user();
    await apiKey(victim);
  });

  it.each([
    ['grants', (id: string) => `/v1/permissions/grants?chitty_id=${id}`, 'permissions:read:any'],
    ['sessions', (id: string) => `/v1/sessions?chitty_id=${id}`, 'sessions:read:any'],
    ['API keys', (id: string) => `/v1/api-keys?chitty_id=${id}`, 'api_keys:read:any'],
  ])('refuses a user listing another user %s with 403 and a denied event', async (_label, path, permission) => {
    const head = await auditHead();
    const res = await rest('GET', path(victim.chittyId), undefined, u.token);
    expect(res.status).toBe(403);
    expect(res.body.data).toEqual({ permission });
    expect(JSON.stringify(res.body)).not.toContain(victim.username);
    const events = await auditSince(head);
    expect(events).toMatchObject([{ actor: u.chittyId, outcome: 'denied' }]);
    expect(JSON.parse(events[0]!.detail)).toMatchObject({ permission });
  });

  it('lets a user name itself explicitly', async () => {
    expect((await rest('GET', `/v1/sessions?chitty_id=${u.chittyId}`, undefined, u.token)).status).toBe(200);
  });
});

describe('permissions.roles', () => {
  it('lists the built-in roles and named scopes for any caller', async () => {
    const u = await user(['readonly']);
    const res = await rest('GET', '/v1/permissions/roles', undefined, u.token);
    expect(res.status).toBe(200);
    expect(res.body.roles.map((r: { name: string }) => r.name)).toEqual(['admin', 'user', 'readonly']);
    expect(res.body.roles[0]).toEqual({ name: 'admin', permissions: ['*'] });
    expect(res.body.scopes.map((s: { name: string }) => s.name)).toContain('mcp:read');
  });
});
