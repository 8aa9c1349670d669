import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, apiKey, ORIGIN, rest, user, type Caller } from '../../test/workers/helpers';

/** No caller can end up with, or hand out, more than its own credential holds. */
let root: Caller;
beforeAll(async () => {
  root = await admin();
});

const grantsOf = async (chittyId: string) => (await env.DB.prepare('SELECT role, permission FROM grants WHERE chitty_id = ?').bind(chittyId).all()).results;

describe('permissions.grant', () => {
  it('refuses to grant admin through a key scoped only to permissions:grant', async () => {
    const target = await user(['user']);
    const narrowKey = await apiKey(root, ['permissions:grant']);
    const res = await rest('POST', '/v1/permissions/grants', { chitty_id: target.chittyId, role: 'admin' }, narrowKey);
    expect(res.status).toBe(403);
    expect(await grantsOf(target.chittyId)).toEqual([{ role: 'user', permission: null }]);
  });

  it('refuses a grant the granter does not hold', async () => {
    const granter = await user(['user']);
    await rest('POST', '/v1/permissions/grants', { chitty_id: granter.chittyId, permission: 'permissions:grant' }, root.token);
    const target = await user(['user']);
    const res = await rest('POST', '/v1/permissions/grants', { chitty_id: target.chittyId, permission: 'accounts:users:create' }, granter.token);
    expect(res.status).toBe(403);
    expect(res.body.message).toContain('accounts:users:create');
  });

  it('answers 409 for a grant the identity already holds, and writes no duplicate', async () => {
    const target = await user(['user']);
    const res = await rest('POST', '/v1/permissions/grants', { chitty_id: target.chittyId, role: 'user' }, root.token);
    expect(res.status).toBe(409);
    expect(await grantsOf(target.chittyId)).toHaveLength(1);
  });
});

describe('permissions.revoke', () => {
  it('refuses to revoke the last admin grant', async () => {
    const { results } = await env.DB.prepare("SELECT id FROM grants WHERE role = 'admin'").all<{ id: string }>();
    expect(results).toHaveLength(1);
    const res = await rest('DELETE', `/v1/permissions/grants/${results[0]!.id}`, undefined, root.token);
    expect(res.status).toBe(409);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM grants WHERE role = 'admin'").first('n')).toBe(1);
  });

  it('refuses to revoke a grant the revoker could not have given', async () => {
    const revoker = await user(['user']);
    await rest('POST', '/v1/permissions/grants', { chitty_id: revoker.chittyId, permission: 'permissions:revoke' }, root.token);
    const { results } = await env.DB.prepare("SELECT id FROM grants WHERE role = 'admin'").all<{ id: string }>();
    const res = await rest('DELETE', `/v1/permissions/grants/${results[0]!.id}`, undefined, revoker.token);
    expect(res.status).toBe(403);
  });
});

describe('acting on a more privileged account', () => {
  let deputy: Caller;
  beforeAll(async () => {
    // Holds every accounts and api_keys permission, including :any, but is not an admin.
    deputy = await user(['user']);
    for (const permission of ['accounts:*', 'api_keys:*']) {
      await rest('POST', '/v1/permissions/grants', { chitty_id: deputy.chittyId, permission }, root.token);
    }
  });

  const attempts: [string, string, (admin: string) => string, (admin: string) => Record<string, unknown> | undefined][] = [
    ['sets the admin password', 'PUT', (id) => `/v1/accounts/${id}/password`, () => ({ new_password: 'taken over password' })],
    ['disables the admin', 'POST', (id) => `/v1/accounts/${id}/disable`, () => undefined],
    ['creates an API key for the admin', 'POST', () => '/v1/api-keys', (id) => ({ name: 'backdoor', chitty_id: id })],
  ];
  it.each(attempts)('refuses when a deputy %s', async (_, method, path, body) => {
    const res = await rest(method, path(root.chittyId), body(root.chittyId), deputy.token);
    expect(res.status).toBe(403);
    const a = await rest('GET', '/v1/accounts/me', undefined, root.token);
    expect(a.status).toBe(200);
  });

  it('allows the deputy to act on an ordinary user', async () => {
    const plain = await user(['user']);
    const res = await rest('POST', '/v1/api-keys', { chitty_id: plain.chittyId, name: 'for a user' }, deputy.token);
    expect(res.status).toBe(201);
  });
});

describe('request size', () => {
  it('refuses a chunked body over 1 MiB with 413 before parsing it', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (sent++ < 20) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await SELF.fetch(`${ORIGIN}/v1/api-keys/validate`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${root.token}` }, body });
    expect(res.status).toBe(413);
  });
});

describe('jwt.validate', () => {
  it('reports a sign-in token whose session was ended as revoked', async () => {
    const someone = await user(['user']);
    const sessions = await rest('GET', '/v1/sessions', undefined, someone.token);
    const before = await rest('POST', '/v1/jwt/validate', { token: someone.token }, root.token);
    expect(before.body).toMatchObject({ valid: true });
    await rest('DELETE', `/v1/sessions/${sessions.body.items[0].session_id}`, undefined, someone.token);
    const after = await rest('POST', '/v1/jwt/validate', { token: someone.token }, root.token);
    expect(after.body).toMatchObject({ valid: false, reason: 'revoked' });
  });
});
