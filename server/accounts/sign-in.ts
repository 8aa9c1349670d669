import { DUMMY_PASSWORD_HASH, verifyPassword } from '../crypto/password';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { signJwt } from '../jwt/tokens';
import { newId } from '../lib/ids';
import { isoIn, nowIso } from '../lib/time';
import { insertSession } from '../sessions/sessions.store';
import { findLiveDevice } from '../sync/sync.store';
import { findAccountByUsername, updateAccountFailedAttempts } from './accounts.store';

const MAX_FAILED_SIGN_INS = 10;
const LOCKOUT_S = 15 * 60;
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
  | { ok: false; reason: 'invalid' | 'locked' | 'unknown_device'; chittyId: string | null };

/**
 * Password sign-in, for the API (accounts.signIn) and the authorization pages alike: lockout after
 * repeated failures, constant work for unknown usernames, a session row and its access token.
 */
export async function signInWithPassword(env: Env, db: DB, req: SignInRequest): Promise<SignInResult> {
  const account = await findAccountByUsername(db, req.username);
  if (account?.locked_until && account.locked_until > nowIso()) return { ok: false, reason: 'locked', chittyId: account.chitty_id };
  // Hash even for unknown usernames so response time does not reveal which exist.
  const ok = await verifyPassword(req.password, account?.password_hash ?? DUMMY_PASSWORD_HASH);
  if (!account || !ok || account.status !== 'active') {
    if (account && !ok) {
      const failed = account.failed_attempts + 1;
      const lock = failed >= MAX_FAILED_SIGN_INS;
      await updateAccountFailedAttempts(db, account.chitty_id, lock ? 0 : failed, lock ? isoIn(LOCKOUT_S) : null);
    }
    return { ok: false, reason: 'invalid', chittyId: account?.chitty_id ?? null };
  }
  if (account.failed_attempts > 0) await updateAccountFailedAttempts(db, account.chitty_id, 0, null);
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
