import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, apiKey, auditHead, auditSince, callTool, count, direct, mcp, query, rest, snapshotDatabase, user, type Caller } from '../../test/workers/helpers';
import { sha256Hex } from '../crypto/hash';

const keyRow = async (id: string) => (await query('SELECT * FROM api_keys WHERE id = ?', id))[0]!;
const create = (caller: Caller | string, body: Record<string, unknown> = {}) =>
  rest('POST', '/v1/api-keys', { name: 'test key', ...body }, typeof caller === 'string' ? caller : caller.token);
const validate = (token: string, apiKeyValue: string) => rest('POST', '/v1/api-keys/validate', { api_key: apiKeyValue }, token);

let root: Caller;
beforeAll(async () => {
  root = await admin();
});

describe('apiKeys.create', () => {
  it('returns the secret once and stores only its SHA-256 hash', async () => {
    const u = await user();
    const head = await auditHead();
    const res = await create(u, { name: 'CI deploy', scopes: ['api_keys:read'], expires_in: '7d' });
    expect(res.status).toBe(201);
    const secret: string = res.body.api_key;
    expect(secret).toMatch(/^chitty_[A-Za-z0-9]{40}$/);
    expect(res.body).toMatchObject({ chitty_id: u.chittyId, name: 'CI deploy', scopes: ['api_keys:read'], prefix: secret.slice(0, 13), revoked_at: null, last_used_at: null });
    expect(Math.abs(Date.parse(res.body.expires_at) - (Date.now() + 7 * 86_400_000))).toBeLessThan(60_000);

    const row = await keyRow(res.body.key_id);
    expect(row.secret_hash).toBe(await sha256Hex(secret));
    expect(Object.values(row).some((v) => typeof v === 'string' && v.includes(secret.slice(13)))).toBe(false);
    expect(row).toMatchObject({ chitty_id: u.chittyId, created_by: u.chittyId, scopes: '["api_keys:read"]' });

    const list = await rest('GET', '/v1/api-keys', undefined, u.token);
    expect(list.body.items.map((k: { key_id: string }) => k.key_id)).toEqual([res.body.key_id]);
    expect(list.body.items[0]).not.toHaveProperty('api_key');
    expect(JSON.stringify(list.body)).not.toContain(secret.slice(13));

    const events = await auditSince(head);
    expect(events).toMatchObject([{ actor: u.chittyId, action: 'apiKeys.create', target: res.body.key_id, door: 'rest', outcome: 'success' }]);
    expect(JSON.stringify(events)).not.toContain(secret.slice(13));
  });

  it('gives a key the scopes of the creating credential when none are asked for', async () => {
    const u = await user();
    const narrow = await apiKey(u, ['api_keys:generate', 'api_keys:read']);
    const res = await create(narrow);
    expect(res.status).toBe(201);
    expect(res.body.scopes).toEqual(['api_keys:generate', 'api_keys:read']);
  });

  it('refuses, with 403 and nothing written, a key asking for broader scopes than its creator key', async () => {
    const u = await user();
    const narrow = await apiKey(u, ['api_keys:generate']);
    const before = await count('api_keys');
    for (const scopes of [['*'], ['api_keys:*'], ['api_keys:generate', 'jwt:generate'], ['mcp:write']]) {
      const res = await create(narrow, { scopes });
      expect(res.status, JSON.stringify(scopes)).toBe(403);
    }
    expect(await count('api_keys')).toBe(before);
  });

  it('refuses a key limited to permissions:check with 403 on create, while it can check', async () => {
    const u = await user();
    const key = await apiKey(u, ['permissions:check']);
    const check = await rest('POST', '/v1/permissions/check', { permission: 'api_keys:generate' }, key);
    expect(check.status).toBe(200);
    expect(check.body).toMatchObject({ allowed: true, chitty_id: u.chittyId });
    const before = await count('api_keys');
    const res = await create(key);
    expect(res.status).toBe(403);
    expect(res.body.data).toEqual({ permission: 'api_keys:generate' });
    expect(await count('api_keys')).toBe(before);
  });

  it('lets an admin generate a key for another ChittyID, and refuses a user with 403', async () => {
    const u = await user();
    const other = await user();
    const res = await create(root, { chitty_id: u.chittyId, scopes: ['permissions:check'] });
    expect(res.status).toBe(201);
    expect(await keyRow(res.body.key_id)).toMatchObject({ chitty_id: u.chittyId, created_by: root.chittyId });
    const before = await count('api_keys');
    const denied = await create(other, { chitty_id: u.chittyId });
    expect(denied.status).toBe(403);
    expect(denied.body.data).toEqual({ permission: 'api_keys:generate:any' });
    expect(await count('api_keys')).toBe(before);
  });

  it.each([
    ['a lifetime over 5 years', { expires_in: '2000d' }],
    ['a blank name', { name: '  ' }],
    ['an empty scope list', { scopes: [] }],
    ['a malformed scope', { scopes: ['API KEYS'] }],
    ['an unknown field', { secret: 'chitty_mine' }],
  ])('answers 400 and writes nothing for %s', async (_label, body) => {
    const before = await snapshotDatabase();
    const res = await create(root, body);
    expect(res.status).toBe(400);
    const after = await snapshotDatabase();
    expect(after.api_keys).toEqual(before.api_keys);
  });
});

describe('apiKeys.validate', () => {
  it('reports a live key as valid with its owner', async () => {
    const u = await user();
    const key = await apiKey(u);
    const res = await validate(root.token, key);
    expect(res.body).toMatchObject({ valid: true, reason: null, key: { chitty_id: u.chittyId } });
    expect(res.body.key).not.toHaveProperty('api_key');
  });

  it.each(['chitty_doesnotexist0000000000000000000000000', 'not-even-a-key'])('reports unknown for %s', async (value) => {
    expect((await validate(root.token, value)).body).toEqual({ valid: false, reason: 'unknown', key: null });
  });

  it('reports revoked for a revoked key', async () => {
    const u = await user();
    const made = await create(u);
    await rest('DELETE', `/v1/api-keys/${made.body.key_id}`, undefined, u.token);
    expect((await validate(root.token, made.body.api_key)).body).toMatchObject({ valid: false, reason: 'revoked' });
  });

  it('reports expired, and refuses the key on /v1, once expires_at has passed', async () => {
    const u = await user();
    const made = await create(u, { expires_in: '1h' });
    expect((await rest('GET', '/v1/accounts/me', undefined, made.body.api_key)).status).toBe(200);
    await env.DB.prepare('UPDATE api_keys SET expires_at = ? WHERE id = ?').bind(new Date(Date.now() - 1000).toISOString(), made.body.key_id).run();
    expect((await validate(root.token, made.body.api_key)).body).toMatchObject({ valid: false, reason: 'expired' });
    const refused = await rest('GET', '/v1/accounts/me', undefined, made.body.api_key);
    expect(refused.status).toBe(401);
    expect(refused.body.data).toEqual({ reason: 'expired' });
  });

  it('reports owner_disabled for the key of a disabled account', async () => {
    const u = await user();
    const key = await apiKey(u);
    await rest('POST', `/v1/accounts/${u.chittyId}/disable`, {}, root.token);
    expect((await validate(root.token, key)).body).toMatchObject({ valid: false, reason: 'owner_disabled' });
  });
});

describe('apiKeys.revoke', () => {
  it('revokes a key at once: it gets 401 on /v1 and on /mcp', async () => {
    const u = await user();
    const made = await create(u);
    const key: string = made.body.api_key;
    expect((await mcp('tools/list', {}, key)).status).toBe(200);
    const head = await auditHead();
    const res = await rest('DELETE', `/v1/api-keys/${made.body.key_id}`, undefined, u.token);
    expect(res.status).toBe(200);
    expect(res.body.revoked_at).not.toBeNull();
    expect((await keyRow(made.body.key_id)).revoked_at).toBe(res.body.revoked_at);
    expect(await auditSince(head)).toMatchObject([{ actor: u.chittyId, action: 'apiKeys.revoke', target: made.body.key_id, outcome: 'success' }]);

    const refused = await rest('GET', '/v1/accounts/me', undefined, key);
    expect(refused.status).toBe(401);
    expect(refused.body.data).toEqual({ reason: 'revoked' });
    const viaMcp = await mcp('tools/list', {}, key);
    expect(viaMcp.status).toBe(401);
    expect((await callTool('whoami', {}, key)).status).toBe(401);
  });

  it('keeps the first revocation time when a revoked key is revoked again', async () => {
    const u = await user();
    const made = await create(u);
    const first = await rest('DELETE', `/v1/api-keys/${made.body.key_id}`, undefined, u.token);
    const again = await rest('DELETE', `/v1/api-keys/${made.body.key_id}`, undefined, u.token);
    expect(again.status).toBe(200);
    expect(again.body.revoked_at).toBe(first.body.revoked_at);
  });

  it('answers 404 to a user revoking another user key, which stays valid', async () => {
    const owner = await user();
    const other = await user();
    const made = await create(owner);
    const res = await rest('DELETE', `/v1/api-keys/${made.body.key_id}`, undefined, other.token);
    expect(res.status).toBe(404);
    expect((await keyRow(made.body.key_id)).revoked_at).toBeNull();
    expect((await validate(root.token, made.body.api_key)).body.valid).toBe(true);
    expect((await rest('GET', '/v1/accounts/me', undefined, made.body.api_key)).status).toBe(200);
  });

  it('answers the same 404 for a key that does not exist', async () => {
    const u = await user();
    const res = await rest('DELETE', '/v1/api-keys/key_00000000000000000000000000', undefined, u.token);
    expect(res.status).toBe(404);
  });

  it('lets an admin revoke another user key', async () => {
    const owner = await user();
    const made = await create(owner);
    const res = await rest('DELETE', `/v1/api-keys/${made.body.key_id}`, undefined, root.token);
    expect(res.status).toBe(200);
    expect((await keyRow(made.body.key_id)).revoked_at).not.toBeNull();
    expect((await rest('GET', '/v1/accounts/me', undefined, made.body.api_key)).status).toBe(401);
  });

  it('revokes through the MCP tool the same way', async () => {
    const u = await user();
    const made = await create(u);
    const res = await callTool('revoke_api_key', { key_id: made.body.key_id }, await apiKey(u));
    expect(res.status).toBe(200);
    expect(res.body.result.isError).toBeFalsy();
    expect((await keyRow(made.body.key_id)).revoked_at).not.toBeNull();
    const [event] = await query("SELECT * FROM audit_events WHERE action = 'apiKeys.revoke' AND target = ?", made.body.key_id);
    expect(event).toMatchObject({ door: 'mcp', outcome: 'success', actor: u.chittyId });
  });
});

describe('apiKeys.list', () => {
  it('lists only live keys unless include_revoked is set', async () => {
    const u = await user();
    const live = await create(u, { name: 'live' });
    const dead = await create(u, { name: 'dead' });
    await rest('DELETE', `/v1/api-keys/${dead.body.key_id}`, undefined, u.token);
    const ids = (r: { body: { items: { key_id: string }[] } }) => r.body.items.map((k) => k.key_id);
    expect(ids(await rest('GET', '/v1/api-keys', undefined, u.token))).toEqual([live.body.key_id]);
    expect(ids(await rest('GET', '/v1/api-keys?include_revoked=true', undefined, u.token))).toEqual([dead.body.key_id, live.body.key_id]);
  });
});

describe('authenticate (API key)', () => {
  it('sets last_used_at after the key is used', async () => {
    const u = await user();
    const made = await create(u);
    expect((await keyRow(made.body.key_id)).last_used_at).toBeNull();
    const before = new Date().toISOString();
    const res = await direct('GET', '/v1/accounts/me', undefined, made.body.api_key);
    expect(res.status).toBe(200);
    const usedAt = (await keyRow(made.body.key_id)).last_used_at;
    expect(usedAt).not.toBeNull();
    expect(usedAt >= before).toBe(true);
  });
});
