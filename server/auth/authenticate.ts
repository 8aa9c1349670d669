import { findApiKeyWithGrants, updateApiKeyLastUsed } from '../api-keys/api-keys.store';
import { sha256Hex } from '../crypto/hash';
import { readTogether, type DB, type GrantsTable } from '../db/schema';
import type { Env } from '../env';
import { verifyJwt } from '../jwt/tokens';
import { grantIsLive } from '../oauth/grants';
import { nowIso } from '../lib/time';
import { grantsOfSessionQuery } from '../permissions/permissions.store';
import { sessionForAuthQuery, updateSessionLastSeen, type SessionForAuth } from '../sessions/sessions.store';
import { withGrants } from './authorizer';

export const API_KEY_PREFIX = 'chitty_';
/** last_used_at / last_seen_at are written at most this often per credential (no write per request). */
const TOUCH_INTERVAL_MS = 60_000;

export interface Principal {
  chittyId: string;
  credential: 'session' | 'api_key' | 'access_token';
  credentialId: string;
  /** What the credential may do, capped again by the principal's grants. */
  scopes: string[];
  sessionId: string | null;
  /** The OAuth client an access token was issued to, and the grant it was issued under. */
  clientId?: string;
  grantId?: string;
  /** When the credential stops being valid (epoch ms), null when it does not expire: long-lived connections close then. */
  expiresAt?: number | null;
}

export type AuthFailure = 'missing' | 'malformed' | 'invalid' | 'expired' | 'revoked' | 'disabled' | 'wrong_audience';
export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: AuthFailure };

/** Extracts the bearer credential. RFC 6750 §2.1: the scheme is case-insensitive. */
export function bearerToken(authorization: string | null): string | null | undefined {
  if (!authorization) return undefined;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization.trim());
  return m ? m[1]! : null;
}

const stale = (at: string | null) => !at || Date.now() - Date.parse(at) > TOUCH_INTERVAL_MS;
const epochMs = (iso: string | null) => (iso === null ? null : Date.parse(iso));
const earliest = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));

/**
 * Who is calling. `audience` is the resource the credential must have been issued for:
 * the API (ISSUER) on /v1 and /rpc, the MCP resource on /mcp. API keys are issued here for every door.
 */
export async function authenticate(
  env: Env,
  db: DB,
  authorization: string | null,
  audience: string,
  waitUntil: (p: Promise<unknown>) => void,
): Promise<AuthResult> {
  const token = bearerToken(authorization);
  if (token === undefined) return { ok: false, reason: 'missing' };
  if (token === null) return { ok: false, reason: 'malformed' };

  if (token.startsWith(API_KEY_PREFIX)) {
    // The key and its owner's grants in one round trip: the permission check needs them next.
    const { key, grants } = await findApiKeyWithGrants(db, await sha256Hex(token));
    if (!key) return { ok: false, reason: 'invalid' };
    if (key.revoked_at) return { ok: false, reason: 'revoked' };
    if (key.expires_at && key.expires_at <= nowIso()) return { ok: false, reason: 'expired' };
    if (key.owner_status !== 'active') return { ok: false, reason: 'disabled' };
    if (stale(key.last_used_at)) waitUntil(updateApiKeyLastUsed(db, key.id, nowIso()));
    return {
      ok: true,
      principal: withGrants({ chittyId: key.chitty_id, credential: 'api_key', credentialId: key.id, scopes: JSON.parse(key.scopes), sessionId: null, expiresAt: epochMs(key.expires_at) }, grants),
    };
  }

  const verified = await verifyJwt(env, db, token, { audience, typ: 'at+jwt' });
  if (!verified.ok) {
    return { ok: false, reason: verified.reason === 'expired' ? 'expired' : verified.reason === 'wrong_audience' ? 'wrong_audience' : 'invalid' };
  }
  const claims = verified.claims;
  const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [];
  const tokenExpiry = typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  if (typeof claims.sub !== 'string' || typeof claims.jti !== 'string') return { ok: false, reason: 'invalid' };

  if (typeof claims.sid === 'string') {
    const [sessions, grants] = await readTogether(db, [sessionForAuthQuery(db, claims.sid).compile(), grantsOfSessionQuery(db, claims.sid).compile()]);
    const session = sessions![0] as SessionForAuth | undefined;
    if (!session || session.chitty_id !== claims.sub) return { ok: false, reason: 'invalid' };
    if (session.revoked_at) return { ok: false, reason: 'revoked' };
    if (session.expires_at <= nowIso()) return { ok: false, reason: 'expired' };
    if (session.owner_status !== 'active') return { ok: false, reason: 'disabled' };
    if (stale(session.last_seen_at)) waitUntil(updateSessionLastSeen(db, session.id, nowIso()));
    return { ok: true, principal: withGrants({ chittyId: claims.sub, credential: 'session', credentialId: session.id, scopes, sessionId: session.id, expiresAt: earliest(tokenExpiry, epochMs(session.expires_at)) }, grants as GrantsTable[]) };
  }
  if (typeof claims.gid === 'string' && typeof claims.client_id === 'string') {
    // OAuth access token (RFC 9068): local signature check, then the grant's state (revoked, expired, user
    // disabled), cached per isolate: no D1 read on most requests.
    if (!(await grantIsLive(db, claims.gid))) return { ok: false, reason: 'revoked' };
    return { ok: true, principal: { chittyId: claims.sub, credential: 'access_token', credentialId: claims.jti, scopes, sessionId: null, clientId: claims.client_id, grantId: claims.gid, expiresAt: tokenExpiry } };
  }
  return { ok: false, reason: 'invalid' };
}
