import { createLocalJWKSet, decodeJwt, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyOptions } from 'jose';
import * as v from 'valibot';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { nowIso } from '../lib/time';
import { checkFetchableUrl, fetchSmallJson } from '../lib/urls';
import type { Client } from './clients';
import { OAuthError } from './errors';

/**
 * `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, RFC 7521 §4.2, OpenID Connect Core §9):
 * the client signs a short JWT about itself with a private key whose public half it published, inline
 * (`jwks`) or at a URL (`jwks_uri`). Verification is jose's; this file only decides which keys, which
 * algorithms and which claims.
 */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Asymmetric only: `none` and HMAC (whose "secret" would be the public key) are never accepted. */
export const CLIENT_ASSERTION_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export type ClientAssertionAlg = (typeof CLIENT_ASSERTION_ALGS)[number];

/** An assertion lives at most this long (exp − iat, and exp − now). */
export const MAX_ASSERTION_LIFETIME_S = 300;
const CLOCK_SKEW_S = 30;
const MAX_ASSERTION_LENGTH = 8 * 1024;
const MAX_JTI_LENGTH = 256;

const JWKS_MAX_BYTES = 16 * 1024;
const JWKS_MAX_KEYS = 20;
const JWKS_TIMEOUT_MS = 5_000;
const JWKS_MIN_CACHE_S = 60;
const JWKS_MAX_CACHE_S = 3600;
const JWKS_DEFAULT_CACHE_S = 300;

// Members only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const PublicJwkSchema = v.pipe(
  v.looseObject({
    kty: v.picklist(['RSA', 'EC', 'OKP'], 'kty must be RSA, EC or OKP (asymmetric keys only)'),
    kid: v.optional(v.pipe(v.string(), v.maxLength(256))),
    alg: v.optional(v.string()),
    use: v.optional(v.string()),
  }),
  v.check((jwk) => !PRIVATE_MEMBERS.some((m) => m in jwk), 'keys must be public keys (no private or symmetric key material)'),
);

const JwksSchema = v.looseObject({
  keys: v.pipe(v.array(PublicJwkSchema), v.minLength(1, 'keys must not be empty'), v.maxLength(JWKS_MAX_KEYS, `at most ${JWKS_MAX_KEYS} keys`)),
});

export type JwksCheck = { ok: true; jwks: JSONWebKeySet } | { ok: false; reason: string };

/** A JWK Set of public signing keys, or why not. */
export function parseJwks(value: unknown): JwksCheck {
  const parsed = v.safeParse(JwksSchema, value);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = issue.path?.map((p) => p.key).join('.') ?? '';
    return { ok: false, reason: `${path ? `${path}: ` : ''}${issue.message}` };
  }
  const jwks = parsed.output as unknown as JSONWebKeySet;
  try {
    createLocalJWKSet(jwks);
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : 'malformed JSON Web Key Set' };
  }
  return { ok: true, jwks };
}

export const isAssertionAlg = (alg: unknown): alg is ClientAssertionAlg => typeof alg === 'string' && (CLIENT_ASSERTION_ALGS as readonly string[]).includes(alg);

// --- jwks_uri -------------------------------------------------------------------------------------

const isDevelopment = (env: Env) => env.ENVIRONMENT === 'development' || env.ENVIRONMENT === 'test';
const jwksCache = new Map<string, { jwks: JSONWebKeySet; until: number }>();

/** Why an assertion was refused; the message is safe to show to the client. */
class AssertionRejected extends Error {}

function cacheSeconds(res: Response): number {
  const cc = res.headers.get('cache-control') ?? '';
  const m = /max-age=(\d+)/i.exec(cc);
  return Math.min(JWKS_MAX_CACHE_S, Math.max(JWKS_MIN_CACHE_S, m ? Number(m[1]) : JWKS_DEFAULT_CACHE_S));
}

/**
 * The JWK Set at a client's jwks_uri, fetched under the same rules as a Client ID Metadata Document
 * (https to a public address, no redirects, bounded time and size) and cached. `refresh` skips the cache:
 * used once when the assertion's kid is not in the cached set, because the client may have rotated its keys.
 */
async function fetchJwks(env: Env, uri: string, refresh: boolean): Promise<{ jwks: JSONWebKeySet; fresh: boolean }> {
  const cached = jwksCache.get(uri);
  if (!refresh && cached && cached.until > Date.now()) return { jwks: cached.jwks, fresh: false };
  const check = checkFetchableUrl(uri, isDevelopment(env));
  if (!check.ok) throw new AssertionRejected(`jwks_uri refused: ${check.reason}`);
  const fetched = await fetchSmallJson(check.url, { timeoutMs: JWKS_TIMEOUT_MS, maxBytes: JWKS_MAX_BYTES });
  if (!fetched.ok) throw new AssertionRejected(fetched.reason === 'is not JSON' ? 'jwks_uri did not return JSON' : `jwks_uri ${fetched.reason}`);
  const { body, response: res } = fetched;
  const parsed = parseJwks(body);
  if (!parsed.ok) throw new AssertionRejected(`jwks_uri did not return a usable JWK Set: ${parsed.reason}`);
  jwksCache.set(uri, { jwks: parsed.jwks, until: Date.now() + cacheSeconds(res) * 1000 });
  return { jwks: parsed.jwks, fresh: true };
}

// --- verification ---------------------------------------------------------------------------------

/** The client an assertion says it is (its unverified `iss`), to find the client when client_id is not sent (RFC 7521 §4.2). */
export function assertionIssuer(assertion: string): string | null {
  try {
    const iss = decodeJwt(assertion).iss;
    return typeof iss === 'string' ? iss : null;
  } catch {
    return null;
  }
}

/**
 * Verifies a JWT with a party's published keys (a client's, or a trusted identity provider's): inline `jwks`,
 * or `jwks_uri` through the cache, fetched again once when the JWT's kid is not in the cached set (the party
 * may have rotated its keys). No more than one extra fetch per JWT.
 */
export async function verifyWithKeys(env: Env, keys: { jwks: JSONWebKeySet | null; jwks_uri: string | null }, jwt: string, options: JWTVerifyOptions): Promise<JWTPayload> {
  if (keys.jwks) return (await jwtVerify(jwt, createLocalJWKSet(keys.jwks), options)).payload;
  if (!keys.jwks_uri) throw new AssertionRejected('no registered keys (jwks or jwks_uri)');
  const cached = await fetchJwks(env, keys.jwks_uri, false);
  try {
    return (await jwtVerify(jwt, createLocalJWKSet(cached.jwks), options)).payload;
  } catch (error) {
    if (!(error instanceof errors.JWKSNoMatchingKey) || cached.fresh) throw error;
    return (await jwtVerify(jwt, createLocalJWKSet((await fetchJwks(env, keys.jwks_uri, true)).jwks), options)).payload;
  }
}

/** Why jose refused a JWT, in words safe to send back; anything that is not a JOSE error is rethrown. */
export function reasonOf(error: unknown, algorithms: readonly string[]): string {
  if (error instanceof AssertionRejected) return error.message;
  if (error instanceof errors.JOSEAlgNotAllowed) return `alg is not allowed; use ${algorithms.join(', ')}`;
  if (error instanceof errors.JWKSNoMatchingKey) return "no key in the JWK Set matches the JWT's kid and alg";
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature verification failed';
  if (error instanceof errors.JWTExpired) return 'the assertion has expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `${error.claim === 'typ' ? 'typ header' : `claim ${error.claim}`} ${error.reason === 'missing' ? 'is missing' : 'is invalid'}`;
  if (error instanceof errors.JOSENotSupported) return 'unsupported alg or key';
  if (error instanceof errors.JOSEError) return 'malformed assertion';
  throw error;
}

const reject = (reason: string) => new OAuthError('invalid_client', `client assertion rejected: ${reason}`, 401);

/**
 * Verifies a client assertion for `client` at `endpoint` (the URL the request was sent to), and spends its jti.
 * Throws invalid_client (401) with the reason.
 */
export async function verifyClientAssertion(env: Env, db: DB, client: Client, assertion: string, endpoint: string): Promise<void> {
  if (assertion.length > MAX_ASSERTION_LENGTH) throw reject('the assertion is too long');
  // The algorithm comes from the client's registration (or our list), never from the assertion's header alone.
  const algorithms: string[] = client.token_endpoint_auth_signing_alg ? [client.token_endpoint_auth_signing_alg] : [...CLIENT_ASSERTION_ALGS];
  // RFC 7523 §3 (3): aud identifies the authorization server; its issuer or token endpoint (or the endpoint called).
  const audience = [...new Set([env.ISSUER, `${env.ISSUER}/`, `${env.ISSUER}/oauth/token`, endpoint])];
  const options = {
    algorithms,
    // RFC 7523 §3 (1), (2): iss and sub are the client_id.
    issuer: client.client_id,
    subject: client.client_id,
    audience,
    // RFC 7523 §3 (4): exp is required; jti for the replay check below.
    requiredClaims: ['exp', 'jti'],
    clockTolerance: CLOCK_SKEW_S,
  };
  let payload: JWTPayload;
  try {
    payload = await verifyWithKeys(env, client, assertion, options);
  } catch (error) {
    throw reject(reasonOf(error, algorithms));
  }

  const now = Math.floor(Date.now() / 1000);
  const exp = payload.exp!;
  // RFC 7523 §3 (4) lets us refuse an exp unreasonably far in the future: an assertion is short-lived.
  if (exp - now > MAX_ASSERTION_LIFETIME_S + CLOCK_SKEW_S) throw reject(`exp is more than ${MAX_ASSERTION_LIFETIME_S} s away`);
  if (payload.iat !== undefined) {
    if (payload.iat > now + CLOCK_SKEW_S) throw reject('iat is in the future');
    if (exp - payload.iat > MAX_ASSERTION_LIFETIME_S) throw reject(`the assertion lives longer than ${MAX_ASSERTION_LIFETIME_S} s`);
  }
  const jti = payload.jti!;
  if (jti.length === 0 || jti.length > MAX_JTI_LENGTH) throw reject(`jti must be 1 to ${MAX_JTI_LENGTH} characters`);
  // RFC 7523 §3 (7): a jti is used once. The primary key makes the check atomic: of two concurrent
  // requests with one assertion, exactly one inserts the row.
  const spent = await db
    .insertInto('oauth_client_assertions')
    .values({ client_id: client.client_id, jti, expires_at: nowIso((exp + CLOCK_SKEW_S) * 1000) })
    .onConflict((oc) => oc.columns(['client_id', 'jti']).doNothing())
    .returning('jti')
    .executeTakeFirst();
  if (!spent) throw reject('jti has been used before (replay)');
}

/** Whether a client has keys to verify an assertion with. */
export const hasClientKeys = (client: Client) => client.jwks !== null || client.jwks_uri !== null;
