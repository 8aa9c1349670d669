import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { decrypt, encrypt } from '../crypto/encryption';
import type { DB, SigningKeysTable } from '../db/schema';
import type { Env } from '../env';
import { newId } from '../lib/ids';
import { isoIn, nowIso } from '../lib/time';

/**
 * The signing key set. ES256 keys; the private half is stored encrypted (AES-256-GCM, bound to its kid).
 * Keys are imported once per isolate and cached: the hot path (verifying a token) reads D1 only when a
 * kid it has not seen appears, at most once per REFRESH_FLOOR_MS.
 */
export const ALG = 'ES256';
/** The longest lifetime of any token we sign; a retired key stays published this long. */
export const MAX_TOKEN_LIFETIME_S = 30 * 86_400;
const CACHE_TTL_MS = 60_000;
const REFRESH_FLOOR_MS = 5_000;

interface Verifier {
  kid: string;
  jwk: JWK;
  key: CryptoKey;
}

interface KeyCache {
  loadedAt: number;
  verifiers: Map<string, Verifier>;
  signer: { kid: string; key: CryptoKey } | null;
}

const caches = new WeakMap<D1Database, KeyCache>();

const aad = (kid: string) => `signing-key:${kid}`;

async function load(env: Env, db: DB): Promise<KeyCache> {
  const rows = await db
    .selectFrom('signing_keys')
    .selectAll()
    .where((eb) => eb.or([eb('verify_until', 'is', null), eb('verify_until', '>', nowIso())]))
    .orderBy('created_at', 'desc')
    .execute();
  const verifiers = new Map<string, Verifier>();
  for (const row of rows) {
    const jwk = JSON.parse(row.public_jwk) as JWK;
    verifiers.set(row.kid, { kid: row.kid, jwk, key: (await importJWK(jwk, row.alg)) as CryptoKey });
  }
  const active = rows.find((r) => r.status === 'active');
  const signer = active ? { kid: active.kid, key: await importPrivate(env, active) } : null;
  const cache = { loadedAt: Date.now(), verifiers, signer };
  caches.set(env.DB, cache);
  return cache;
}

async function importPrivate(env: Env, row: SigningKeysTable): Promise<CryptoKey> {
  const jwk = JSON.parse(await decrypt(env.ENCRYPTION_KEY, row.private_jwk_encrypted, aad(row.kid))) as JWK;
  return (await importJWK(jwk, row.alg)) as CryptoKey;
}

async function cached(env: Env, db: DB): Promise<KeyCache> {
  const cache = caches.get(env.DB);
  if (cache && Date.now() - cache.loadedAt < CACHE_TTL_MS) return cache;
  return load(env, db);
}

export async function insertSigningKey(env: Env, db: DB): Promise<SigningKeysTable> {
  const kid = newId('kid');
  const { publicKey, privateKey } = await generateKeyPair(ALG, { extractable: true });
  const row: SigningKeysTable = {
    kid,
    alg: ALG,
    public_jwk: JSON.stringify({ ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' }),
    private_jwk_encrypted: await encrypt(env.ENCRYPTION_KEY, JSON.stringify(await exportJWK(privateKey)), aad(kid)),
    status: 'active',
    created_at: nowIso(),
    retired_at: null,
    verify_until: null,
  };
  await db.insertInto('signing_keys').values(row).execute();
  return row;
}

/** The key to sign with; the first call on an empty database creates it. */
export async function activeSigner(env: Env, db: DB): Promise<{ kid: string; key: CryptoKey }> {
  const cache = await cached(env, db);
  if (cache.signer) return cache.signer;
  await insertSigningKey(env, db);
  const fresh = await load(env, db);
  return fresh.signer!;
}

/** The public key for a kid, or null when no verifiable key has that kid. */
export async function verifierFor(env: Env, db: DB, kid: string | undefined): Promise<CryptoKey | null> {
  if (!kid) return null;
  let cache = await cached(env, db);
  const hit = cache.verifiers.get(kid);
  if (hit) return hit.key;
  if (Date.now() - cache.loadedAt < REFRESH_FLOOR_MS) return null;
  cache = await load(env, db);
  return cache.verifiers.get(kid)?.key ?? null;
}

export async function publicJwks(env: Env, db: DB): Promise<{ keys: JWK[] }> {
  await activeSigner(env, db);
  const cache = await cached(env, db);
  return { keys: [...cache.verifiers.values()].map((v) => v.jwk) };
}

/** New active key; every active key becomes retired and stays verifiable for MAX_TOKEN_LIFETIME_S. */
export async function rotateSigningKeys(env: Env, db: DB) {
  const now = nowIso();
  const retiring = await db.selectFrom('signing_keys').selectAll().where('status', '=', 'active').execute();
  const active = await insertSigningKey(env, db);
  if (retiring.length > 0) {
    await db
      .updateTable('signing_keys')
      .set({ status: 'retired', retired_at: now, verify_until: isoIn(MAX_TOKEN_LIFETIME_S) })
      .where('kid', 'in', retiring.map((r) => r.kid))
      .execute();
  }
  await load(env, db);
  const retired = await db.selectFrom('signing_keys').selectAll().where('kid', 'in', retiring.length ? retiring.map((r) => r.kid) : ['']).execute();
  return { active, retired };
}

export const listSigningKeys = (db: DB) => db.selectFrom('signing_keys').selectAll().orderBy('created_at', 'desc').execute();
