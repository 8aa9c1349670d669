import { env, SELF } from 'cloudflare:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, auditHead, auditSince, ORIGIN, query, rest, user, type Caller } from '../../test/workers/helpers';
import { getDb } from '../db/schema';
import type { Env } from '../env';
import { signJwt } from './tokens';

const ISSUER = 'http://chittyauth.test';
let root: Caller;
beforeAll(async () => {
  root = await admin();
});

const generate = (caller: Caller, body: Record<string, unknown> = {}) => rest('POST', '/v1/jwt', body, caller.token);
const validate = (caller: Caller, token: string, audience?: string) => rest('POST', '/v1/jwt/validate', { token, ...(audience ? { audience } : {}) }, caller.token);
const jwks = async () => {
  const res = await SELF.fetch(`${ORIGIN}/.well-known/jwks.json`);
  expect(res.status).toBe(200);
  return (await res.json()) as JSONWebKeySet;
};

describe('jwt.generate', () => {
  it('signs a JWT with custom claims and expires_in 24h that jwt.validate accepts', async () => {
    const u = await user();
    const head = await auditHead();
    const res = await generate(u, { claims: { team: 'platform', level: 3, tags: ['a', 'b'] }, expires_in: '24h' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ token_type: 'JWT' });
    expect(Math.abs(Date.parse(res.body.expires_at) - (Date.now() + 86_400_000))).toBeLessThan(60_000);

    const checked = await validate(u, res.body.token);
    expect(checked.body).toMatchObject({
      valid: true,
      reason: null,
      header: { alg: 'ES256', typ: 'JWT', kid: res.body.kid },
      claims: { iss: ISSUER, sub: u.chittyId, jti: res.body.jti, team: 'platform', level: 3, tags: ['a', 'b'] },
    });
    expect(checked.body.claims.exp - checked.body.claims.iat).toBe(86_400);

    const events = await auditSince(head);
    expect(events).toMatchObject([{ actor: u.chittyId, action: 'jwt.generate', target: res.body.jti, outcome: 'success' }]);
    expect(events[0]!.detail).not.toContain(res.body.token);
  });

  it('signs a token that anyone verifies with jose over /.well-known/jwks.json', async () => {
    const u = await user();
    const res = await generate(u, { claims: { purpose: 'interop' }, audience: 'https://partner.example', expires_in: '24h' });
    const { payload, protectedHeader } = await jwtVerify(res.body.token, createLocalJWKSet(await jwks()), {
      issuer: ISSUER,
      audience: 'https://partner.example',
      algorithms: ['ES256'],
    });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'JWT', kid: res.body.kid });
    expect(payload).toMatchObject({ sub: u.chittyId, purpose: 'interop', aud: 'https://partner.example' });
  });

  it('publishes only public keys in the JWKS', async () => {
    await generate(root);
    const set = await jwks();
    expect(set.keys.length).toBeGreaterThan(0);
    for (const key of set.keys) {
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(key).not.toHaveProperty('d');
    }
  });

  it.each(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'scope', 'client_id', 'sid', 'cnf', 'act'])('refuses the reserved claim %s with 400 naming it', async (claim) => {
    const head = await auditHead();
    const res = await generate(root, { claims: { ok: true, [claim]: 'mine' } });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain(claim);
    expect(res.body.data.issues).toEqual([{ path: `claims.${claim}`, message: expect.stringContaining(claim) }]);
    // Bad input changes nothing, not even the log.
    expect(await auditSince(head)).toEqual([]);
  });

  it.each([['31d'], ['2592001'], [2_592_001], ['721h']])('refuses expires_in %j over 30 days with 400', async (expiresIn) => {
    const res = await generate(root, { expires_in: expiresIn });
    expect(res.status).toBe(400);
    expect(res.body.data.issues[0].path).toBe('expires_in');
  });

  it('accepts expires_in of exactly 30 days', async () => {
    const res = await generate(root, { expires_in: '30d' });
    expect(res.status).toBe(201);
    expect(Math.abs(Date.parse(res.body.expires_at) - (Date.now() + 30 * 86_400_000))).toBeLessThan(60_000);
  });

  it.each([ISSUER, `${ISSUER}/mcp`])('refuses this service (%s) as the audience', async (audience) => {
    const res = await generate(root, { audience });
    expect(res.status).toBe(400);
    expect(res.body.data.issues[0].path).toBe('audience');
  });

  it('refuses a user signing for another ChittyID with 403', async () => {
    const u = await user();
    const res = await generate(u, { chitty_id: root.chittyId });
    expect(res.status).toBe(403);
    expect(res.body.data).toEqual({ permission: 'jwt:generate:any' });
  });

  it('is not accepted as a Bearer credential on /v1', async () => {
    const u = await user();
    const res = await generate(u, { expires_in: '1h' });
    const refused = await rest('GET', '/v1/accounts/me', undefined, res.body.token);
    expect(refused.status).toBe(401);
    expect((await rest('POST', '/v1/api-keys', { name: 'via jwt' }, res.body.token)).status).toBe(401);
    expect(await query('SELECT id FROM api_keys WHERE name = ?', 'via jwt')).toEqual([]);
  });
});

describe('jwt.validate', () => {
  it('reports bad_signature for a token whose signature was altered', async () => {
    const res = await generate(root);
    const [header, payload, signature] = (res.body.token as string).split('.') as [string, string, string];
    const i = 10;
    const flipped = signature.slice(0, i) + (signature[i] === 'A' ? 'B' : 'A') + signature.slice(i + 1);
    expect((await validate(root, `${header}.${payload}.${flipped}`)).body).toEqual({ valid: false, reason: 'bad_signature', header: null, claims: null });
  });

  it('reports bad_signature for a token whose claims were altered', async () => {
    const u = await user();
    const res = await generate(u);
    const [header, payload, signature] = (res.body.token as string).split('.') as [string, string, string];
    const claims = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/')));
    const forged = btoa(JSON.stringify({ ...claims, sub: root.chittyId })).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
    expect((await validate(u, `${header}.${forged}.${signature}`)).body).toMatchObject({ valid: false, reason: 'bad_signature' });
  });

  it('reports expired for a token past its expiry', async () => {
    const u = await user();
    const { token } = await signJwt(env as unknown as Env, getDb(env.DB), { typ: 'JWT', subject: u.chittyId, expiresIn: -60, claims: { team: 'x' } });
    expect((await validate(u, token)).body).toEqual({ valid: false, reason: 'expired', header: null, claims: null });
  });

  it.each([
    ['malformed', 'not.a.jwt'],
    ['malformed', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'],
    ['unknown_key', 'eyJhbGciOiJFUzI1NiIsImtpZCI6ImtpZF9ub25lIn0.eyJzdWIiOiJ4In0.c2ln'],
  ])('reports %s for %s', async (reason, token) => {
    expect((await validate(root, token)).body).toMatchObject({ valid: false, reason });
  });

  it('reports wrong_audience when the token was issued for another audience', async () => {
    const res = await generate(root, { audience: 'https://a.example' });
    expect((await validate(root, res.body.token, 'https://a.example')).body.valid).toBe(true);
    expect((await validate(root, res.body.token, 'https://b.example')).body).toMatchObject({ valid: false, reason: 'wrong_audience' });
  });
});

describe('jwt.rotateKeys', () => {
  it('signs new tokens with a new kid while old tokens keep verifying and the JWKS lists both', async () => {
    const u = await user();
    const before = await generate(u, { claims: { n: 1 } });
    const oldKid: string = before.body.kid;
    const head = await auditHead();

    const rotated = await rest('POST', '/v1/jwt/keys/rotate', {}, root.token);
    expect(rotated.status).toBe(200);
    const newKid: string = rotated.body.active.kid;
    expect(newKid).not.toBe(oldKid);
    expect(rotated.body.retired).toMatchObject([{ kid: oldKid, status: 'retired' }]);
    expect(Date.parse(rotated.body.retired[0].verify_until) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    expect(await query('SELECT kid, status FROM signing_keys ORDER BY created_at')).toEqual([
      { kid: oldKid, status: 'retired' },
      { kid: newKid, status: 'active' },
    ]);
    expect(await auditSince(head)).toMatchObject([{ actor: root.chittyId, action: 'jwt.rotateKeys', target: newKid, outcome: 'success' }]);

    const after = await generate(u, { claims: { n: 2 } });
    expect(after.body.kid).toBe(newKid);
    expect(decodeProtectedHeader(after.body.token).kid).toBe(newKid);

    expect((await validate(u, before.body.token)).body).toMatchObject({ valid: true, header: { kid: oldKid } });
    expect((await validate(u, after.body.token)).body).toMatchObject({ valid: true, header: { kid: newKid } });

    const set = await jwks();
    expect(set.keys.map((k) => k.kid).sort()).toEqual([oldKid, newKid].sort());
    const local = createLocalJWKSet(set);
    await expect(jwtVerify(before.body.token, local, { issuer: ISSUER })).resolves.toBeDefined();
    await expect(jwtVerify(after.body.token, local, { issuer: ISSUER })).resolves.toBeDefined();

    // Sign-in keeps working: session tokens are signed with the new key and accepted.
    expect((await rest('GET', '/v1/accounts/me', undefined, u.token)).status).toBe(200);
  });

  it('refuses a user with 403 and leaves the keys as they were', async () => {
    const u = await user();
    const before = await query('SELECT kid, status FROM signing_keys ORDER BY kid');
    expect((await rest('POST', '/v1/jwt/keys/rotate', {}, u.token)).status).toBe(403);
    expect(await query('SELECT kid, status FROM signing_keys ORDER BY kid')).toEqual(before);
  });

  it('lists signing keys without private material', async () => {
    const res = await rest('GET', '/v1/jwt/keys', undefined, root.token);
    expect(res.status).toBe(200);
    expect(res.body.items.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(res.body)).not.toMatch(/"d"|private|jwk/i);
  });
});

describe('jwt.rotateKeys (storage)', () => {
  it('stores private keys encrypted, never as a plaintext JWK', async () => {
    const rows = await query<{ kid: string; public_jwk: string; private_jwk_encrypted: string }>('SELECT kid, public_jwk, private_jwk_encrypted FROM signing_keys');
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.private_jwk_encrypted).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      expect(row.private_jwk_encrypted).not.toContain('"d":');
      expect(row.public_jwk).not.toContain('"d":');
      expect(JSON.parse(row.public_jwk)).toMatchObject({ kid: row.kid, kty: 'EC' });
    }
  });
});
