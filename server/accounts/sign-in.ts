import { insertAuditEvent } from '../audit/audit.store';
import { DUMMY_PASSWORD_HASH, hashPassword, needsRehash, verifyPassword } from '../crypto/password';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { signJwt } from '../jwt/tokens';
import { newId } from '../lib/ids';
import { isoIn, nowIso } from '../lib/time';
import { insertSession } from '../sessions/sessions.store';
import { findLiveDevice } from '../sync/sync.store';
import { findAccountByUsername, updateAccountPassword } from './accounts.store';
import { admitSignIn, settleSignIn } from './throttle';

/** Sessions last SESSION_TIMEOUT seconds, between a minute and 30 days (the JWKS keeps retired keys that long). */
const MIN_SESSION_S = 60;
const MAX_SESSION_S = 30 * 86_400;

export const sessionTtl = (env: Env) => Math.min(MAX_SESSION_S, Math.max(MIN_SESSION_S, Math.floor(Number(env.SESSION_TIMEOUT ?? 3600)) || 3600));

export interface SignInRequest {
  username: string;
  password: string;
  deviceName?: string | null;
  /** A registered device of the account (sync: devices); removing it ends the session. */
  deviceId?: string | null;
  userAgent?: string | null;
  ip?: string | null;
  client: string;
}

export type SignInResult =
  | { ok: true; chittyId: string; sessionId: string; token: string; expiresIn: number }
  | { ok: false; reason: 'invalid' | 'unknown_device'; chittyId: string | null }
  /** Throttled before any password check (throttle.ts): says nothing about the account. */
  | { ok: false; reason: 'throttled'; chittyId: null; retryAfter: number; lockedNow: boolean; limit: string };

/**
 * Password sign-in, for the API (accounts.signIn) and the authorization pages alike: throttled per username,
 * per username and address and per address before any hash is computed (throttle.ts); the same work for
 * unknown usernames and wrong passwords (a hash, no write), so neither status nor timing tells them apart;
 * then a session row and its access token.
 */
export async function signInWithPassword(env: Env, db: DB, req: SignInRequest): Promise<SignInResult> {
  const admission = await admitSignIn(db, req.username, req.ip);
  if (!admission.ok) {
    // Every lock is audited, once: by the attempt that first met it in its window.
    if (admission.lockedNow) {
      const door = req.client === 'rest' || req.client === 'rpc' || req.client === 'mcp' ? req.client : 'oauth';
      await insertAuditEvent(db, { actor: 'anonymous', action: 'accounts.lock', target: null, door, outcome: 'denied', detail: { username: req.username, limit: admission.limit, ip: req.ip ?? null, retry_after: admission.retryAfter } });
    }
    return { ok: false, reason: 'throttled', chittyId: null, retryAfter: admission.retryAfter, lockedNow: admission.lockedNow, limit: admission.limit };
  }
  const account = await findAccountByUsername(db, req.username);
  // Hash even for unknown usernames so response time does not reveal which exist.
  const ok = await verifyPassword(req.password, account?.password_hash ?? DUMMY_PASSWORD_HASH);
  if (!account || !ok || account.status !== 'active') return { ok: false, reason: 'invalid', chittyId: account?.chitty_id ?? null };
  await settleSignIn(db, req.username, req.ip);
  // A hash made with older parameters is replaced now, while the password is at hand.
  if (needsRehash(account.password_hash)) await updateAccountPassword(db, account.chitty_id, await hashPassword(req.password), nowIso());
  if (req.deviceId) {
    const device = await findLiveDevice(db, account.chitty_id, req.deviceId);
    if (!device) return { ok: false, reason: 'unknown_device', chittyId: account.chitty_id };
    return { ok: true, ...(await startSession(env, db, account.chitty_id, { ...req, deviceName: req.deviceName ?? device.name })) };
  }
  return { ok: true, ...(await startSession(env, db, account.chitty_id, req)) };
}

/** A session row and its access token for this API (`aud` = ISSUER). */
export async function startSession(env: Env, db: DB, chittyId: string, req: Omit<SignInRequest, 'username' | 'password'>) {
  const ttl = sessionTtl(env);
  const sessionId = newId('ses');
  const now = nowIso();
  await insertSession(db, {
    id: sessionId,
    chitty_id: chittyId,
    device_name: req.deviceName ?? null,
    user_agent: req.userAgent?.slice(0, 256) ?? null,
    ip: req.ip ?? null,
    client: req.client,
    created_at: now,
    last_seen_at: now,
    expires_at: isoIn(ttl),
    revoked_at: null,
    device_id: req.deviceId ?? null,
  });
  const { token } = await signJwt(env, db, { typ: 'at+jwt', subject: chittyId, audience: env.ISSUER, expiresIn: ttl, claims: { sid: sessionId, scope: '*' } });
  return { chittyId, sessionId, token, expiresIn: ttl };
}

/** What the sign-in pages say when an attempt is throttled (the minutes rounded up). */
export const throttledMessage = (retryAfter: number) => `Too many sign-in attempts. Try again in ${Math.ceil(retryAfter / 60)} minute${retryAfter > 60 ? 's' : ''}.`;
