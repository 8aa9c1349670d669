import { decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { newId } from '../lib/ids';
import { activeSigner, ALG, verifierFor } from './keys';

export interface SignOptions {
  typ: 'at+jwt' | 'JWT';
  subject: string;
  audience?: string | string[];
  expiresIn: number;
  claims?: Record<string, unknown>;
}

/** Signs with the active key. Returns the token, its jti, kid and expiry (seconds since epoch). */
export async function signJwt(env: Env, db: DB, o: SignOptions) {
  const { kid, key } = await activeSigner(env, db);
  const jti = newId('jti');
  const iat = Math.floor(Date.now() / 1000);
  const exp = iat + o.expiresIn;
  let jwt = new SignJWT({ ...o.claims })
    .setProtectedHeader({ alg: ALG, kid, typ: o.typ })
    .setIssuer(env.ISSUER)
    .setSubject(o.subject)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(jti);
  if (o.audience) jwt = jwt.setAudience(o.audience);
  return { token: await jwt.sign(key), jti, kid, exp };
}

export type VerifyFailure = 'malformed' | 'bad_signature' | 'unknown_key' | 'expired' | 'not_yet_valid' | 'wrong_issuer' | 'wrong_audience' | 'wrong_type';

export type VerifyResult =
  | { ok: true; header: Record<string, unknown>; claims: JWTPayload }
  | { ok: false; reason: VerifyFailure };

/**
 * Tokens that passed verification, per isolate, with the key that verified them: the same token checked
 * again (every request of a client carries the same one) costs no signature check. A hit is used only while
 * jose would still accept it: before `exp`, and while its kid still resolves to that same key (a retired key
 * past its verify_until, or a rotated key set, sends it through jose again). Failures are never cached.
 */
const VERIFIED_MAX = 10_000;
/** token → (issuer, audience, typ) → what jose returned, and the key it used. */
const verified = new Map<string, Map<string, { key: CryptoKey; header: Record<string, unknown>; claims: JWTPayload }>>();

/** Verifies a JWT we signed. A tagged result: callers decide what the public answer is. */
export async function verifyJwt(env: Env, db: DB, token: string, o: { audience?: string; typ?: string } = {}): Promise<VerifyResult> {
  const checks = `${env.ISSUER}\n${o.audience ?? ''}\n${o.typ ?? ''}`;
  const hit = verified.get(token)?.get(checks);
  if (hit && (hit.claims.exp === undefined || hit.claims.exp > Math.floor(Date.now() / 1000))) {
    if ((await verifierFor(env, db, hit.header.kid as string)) === hit.key) return { ok: true, header: hit.header, claims: hit.claims };
  }
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (header.alg !== ALG) return { ok: false, reason: 'malformed' };
  const key = await verifierFor(env, db, typeof header.kid === 'string' ? header.kid : undefined);
  if (!key) return { ok: false, reason: 'unknown_key' };
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: [ALG],
      issuer: env.ISSUER,
      ...(o.audience ? { audience: o.audience } : {}),
      ...(o.typ ? { typ: o.typ } : {}),
    });
    let forToken = verified.get(token);
    if (!forToken) {
      if (verified.size >= VERIFIED_MAX) verified.clear();
      verified.set(token, (forToken = new Map()));
    }
    forToken.set(checks, { key, header, claims: payload });
    return { ok: true, header, claims: payload };
  } catch (error) {
    return { ok: false, reason: classify(error) };
  }
}

function classify(error: unknown): VerifyFailure {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'not_yet_valid';
    if (error.claim === 'iss') return 'wrong_issuer';
    if (error.claim === 'aud') return 'wrong_audience';
    if (error.claim === 'typ') return 'wrong_type';
  }
  return 'malformed';
}
