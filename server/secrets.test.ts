import { env } from 'cloudflare:test';
import type { JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, admin, rest, snapshotDatabase, user } from '../test/workers/helpers';
import { decrypt } from './crypto/encryption';
import { sha256Hex } from './crypto/hash';

/** Every value of every column of every row, as text, with where it came from. */
async function everyStoredValue(): Promise<{ where: string; text: string }[]> {
  const out: { where: string; text: string }[] = [];
  for (const [table, rows] of Object.entries(await snapshotDatabase())) {
    rows.forEach((row, i) => {
      for (const [column, value] of Object.entries(row as Record<string, unknown>)) {
        if (value === null || value === undefined) continue;
        const text = value instanceof ArrayBuffer ? new TextDecoder().decode(value) : String(value);
        out.push({ where: `${table}[${i}].${column}`, text });
      }
    });
  }
  return out;
}

describe('secrets at rest', () => {
  it('stores no API key, password or private key material in plaintext in any D1 row', async () => {
    const root = await admin();
    const u = await user();
    const newPassword = 'a second password for the secrets test';
    expect((await rest('PUT', `/v1/accounts/${u.chittyId}/password`, { current_password: u.password, new_password: newPassword }, u.token)).status).toBe(200);
    const signedIn = await rest('POST', '/v1/accounts/sign-in', { username: u.username, password: newPassword });
    expect(signedIn.status).toBe(200);
    const key = await rest('POST', '/v1/api-keys', { name: 'secret test', scopes: ['permissions:check'] }, signedIn.body.access_token);
    expect(key.status).toBe(201);
    const jwt = await rest('POST', '/v1/jwt', { claims: { note: 'secrets' }, expires_in: '1h' }, u.token);
    expect(jwt.status).toBe(201);
    expect((await rest('POST', '/v1/jwt/keys/rotate', {}, root.token)).status).toBe(200);
    expect((await rest('POST', '/v1/jwt', {}, root.token)).status).toBe(201);
    // A failed sign-in with a password-like string must not log it either.
    const typo = `${newPassword}!`;
    expect((await rest('POST', '/v1/accounts/sign-in', { username: u.username, password: typo })).status).toBe(401);

    const apiKeySecret: string = key.body.api_key;
    const privateDs: string[] = [];
    const signingKeys = (await snapshotDatabase()).signing_keys as { kid: string; private_jwk_encrypted: string }[];
    expect(signingKeys.length).toBeGreaterThanOrEqual(2);
    for (const row of signingKeys) {
      const jwk = JSON.parse(await decrypt(env.ENCRYPTION_KEY, row.private_jwk_encrypted, `signing-key:${row.kid}`)) as JWK;
      expect(jwk.d).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      privateDs.push(jwk.d!);
    }

    const secrets: Record<string, string> = {
      'API key': apiKeySecret,
      'API key random part': apiKeySecret.slice('chitty_'.length + 6),
      'admin password': ADMIN_PASSWORD,
      'initial password': u.password,
      'new password': newPassword,
      'mistyped password': typo,
      'session access token': signedIn.body.access_token,
      'session token signature': signedIn.body.access_token.split('.')[2],
      'generated JWT': jwt.body.token,
      'encryption key': env.ENCRYPTION_KEY,
      'setup token': env.SETUP_TOKEN,
      ...Object.fromEntries(privateDs.map((d, i) => [`private key d #${i}`, d])),
    };

    const stored = await everyStoredValue();
    const leaks = stored.flatMap(({ where, text }) => Object.entries(secrets).filter(([, secret]) => text.includes(secret)).map(([name]) => `${name} in ${where}`));
    expect(leaks).toEqual([]);
    expect(stored.filter(({ text }) => /"d"\s*:/.test(text)).map(({ where }) => where)).toEqual([]);

    // The rows that stand for these secrets are there, in their protected form.
    const texts = stored.map((s) => s.text);
    expect(texts).toContain(await sha256Hex(apiKeySecret));
    expect(stored.filter((s) => s.where.startsWith('accounts[') && s.where.endsWith('.password_hash')).every((s) => s.text.startsWith('pbkdf2-sha256$'))).toBe(true);
    expect(stored.filter((s) => s.where.endsWith('.private_jwk_encrypted')).every((s) => s.text.startsWith('v1.'))).toBe(true);
  });
});
