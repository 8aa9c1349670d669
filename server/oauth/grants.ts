import { insertAuditEvent } from '../audit/audit.store';
import { decrypt, encrypt } from '../crypto/encryption';
import { randomSecret, sha256Hex } from '../crypto/hash';
import type { DB, OAuthGrantsTable } from '../db/schema';
import type { Env } from '../env';
import { signJwt } from '../jwt/tokens';
import { newId } from '../lib/ids';
import { isoIn, nowIso } from '../lib/time';
import { OAuthError } from './errors';

/**
 * Grants: one user's authorization of one client for one resource and scope. Codes, refresh tokens
 * and access tokens all hang off a grant, so revoking the grant ends every one of them.
 */
export const ACCESS_TOKEN_TTL_S = 900;
export const CODE_TTL_S = 60;
export const GRANT_TTL_S = 30 * 86_400;
/** A retry of the refresh token that was just rotated gets the same new token back within this window. */
export const REFRESH_GRACE_S = 60;

export const REFRESH_PREFIX = 'crt_';

export interface NewGrant {
  clientId: string;
  chittyId: string | null;
  scope: string;
  resource: string;
  /** The browser session that approved it (authorization code flow); removing its device revokes the grant. */
  sessionId?: string | null;
}

export async function insertGrant(db: DB, g: NewGrant): Promise<OAuthGrantsTable> {
  const row: OAuthGrantsTable = {
    id: newId('gnt'),
    client_id: g.clientId,
    chitty_id: g.chittyId,
    scope: g.scope,
    resource: g.resource,
    refresh_hash: null,
    previous_refresh_hash: null,
    next_refresh_encrypted: null,
    rotated_at: null,
    created_at: nowIso(),
    last_used_at: null,
    expires_at: isoIn(GRANT_TTL_S),
    revoked_at: null,
    revoked_reason: null,
    session_id: g.sessionId ?? null,
  };
  await db.insertInto('oauth_grants').values(row).execute();
  return row;
}

export async function insertCode(db: DB, grantId: string, clientId: string, redirectUri: string, codeChallenge: string): Promise<string> {
  const code = randomSecret(43);
  await db
    .insertInto('oauth_codes')
    .values({ code_hash: await sha256Hex(code), grant_id: grantId, client_id: clientId, redirect_uri: redirectUri, code_challenge: codeChallenge, created_at: nowIso(), expires_at: isoIn(CODE_TTL_S), used_at: null })
    .execute();
  return code;
}

export const findGrant = (db: DB, id: string) => db.selectFrom('oauth_grants').selectAll().where('id', '=', id).executeTakeFirst();

// --- revocation, with an in-isolate cache so the hot path does not read D1 for every request ----------

const REVOCATION_CACHE_MS = 10_000;
const grantState = new Map<string, { live: boolean; until: number }>();

/** Revokes every live grant of a ChittyID (an account disabled, a device removed). */
export async function revokeGrantsOf(db: DB, chittyId: string, reason: string): Promise<number> {
  const grants = await db.selectFrom('oauth_grants').select('id').where('chitty_id', '=', chittyId).where('revoked_at', 'is', null).execute();
  for (const g of grants) await revokeGrant(db, g.id, reason);
  return grants.length;
}

export async function revokeGrant(db: DB, id: string, reason: string): Promise<void> {
  await db.updateTable('oauth_grants').set({ revoked_at: nowIso(), revoked_reason: reason, refresh_hash: null, next_refresh_encrypted: null }).where('id', '=', id).where('revoked_at', 'is', null).execute();
  markGrantsRevoked([id]);
}

/** Records in this isolate's grant-state cache that grants revoked by a write made elsewhere (a D1 batch) are dead. */
export function markGrantsRevoked(ids: readonly string[]): void {
  for (const id of ids) grantState.set(id, { live: false, until: Number.POSITIVE_INFINITY });
}

/**
 * A replayed code or refresh token is an attack signal (RFC 9700 §4.5, §4.14.2): the grant is revoked and the
 * audit log records who presented what.
 */
export async function revokeGrantOnReuse(db: DB, grantId: string, reason: string, clientId: string): Promise<void> {
  await revokeGrant(db, grantId, reason);
  await insertAuditEvent(db, { actor: clientId, action: 'oauth.token', target: grantId, door: 'oauth', outcome: 'denied', detail: { reason, grant_revoked: true } });
}

/**
 * Whether a grant still stands: not revoked, not expired, and its user active. Revocations made by this
 * isolate take effect at once; those made elsewhere within REVOCATION_CACHE_MS (the cache lifetime).
 * This is the only state an access token's validation reads, and it reads it from D1 at most once per
 * grant per REVOCATION_CACHE_MS.
 */
export async function grantIsLive(db: DB, id: string): Promise<boolean> {
  const cached = grantState.get(id);
  if (cached && cached.until > Date.now()) return cached.live;
  const row = await db
    .selectFrom('oauth_grants')
    .leftJoin('identities', 'identities.chitty_id', 'oauth_grants.chitty_id')
    .select(['oauth_grants.revoked_at', 'oauth_grants.expires_at', 'identities.status'])
    .where('oauth_grants.id', '=', id)
    .executeTakeFirst();
  const live = !!row && !row.revoked_at && row.expires_at > nowIso() && row.status === 'active';
  if (grantState.size > 10_000) grantState.clear();
  grantState.set(id, { live, until: live ? Date.now() + REVOCATION_CACHE_MS : Number.POSITIVE_INFINITY });
  return live;
}

// --- tokens -------------------------------------------------------------------------------------------

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  refresh_token?: string;
}

/** RFC 9068 JWT access token: typ at+jwt, aud = the resource, client_id, scope, and our grant id. */
export async function issueAccessToken(env: Env, db: DB, grant: Pick<OAuthGrantsTable, 'id' | 'client_id' | 'chitty_id' | 'scope' | 'resource'>, scope = grant.scope) {
  const { token } = await signJwt(env, db, {
    typ: 'at+jwt',
    subject: grant.chitty_id ?? grant.client_id,
    audience: grant.resource,
    expiresIn: ACCESS_TOKEN_TTL_S,
    claims: { client_id: grant.client_id, scope, gid: grant.id },
  });
  return token;
}

const refreshAad = (grantId: string) => `refresh-token:${grantId}`;

/** Gives a grant its first refresh token. */
export async function issueRefreshToken(db: DB, grantId: string): Promise<string> {
  const token = `${REFRESH_PREFIX}${randomSecret(48)}`;
  await db.updateTable('oauth_grants').set({ refresh_hash: await sha256Hex(token) }).where('id', '=', grantId).execute();
  return token;
}

export type RefreshResult = { grant: OAuthGrantsTable; refreshToken: string };

/**
 * Refresh token rotation with reuse detection (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2):
 * - the current token rotates by compare-and-swap, so of concurrent refreshes exactly one rotates;
 * - the token it replaced, presented again within REFRESH_GRACE_S, gets the same new token back
 *   (a client that lost the response is not logged out, and nothing rotates twice);
 * - any other reuse of a replaced token revokes the whole grant.
 * `check` validates the rest of the request against the grant before anything is written: when it throws,
 * the token has not rotated (a refused request must not cost the client its refresh token).
 */
export async function rotateRefreshToken(env: Env, db: DB, presented: string, clientId: string, check: (grant: OAuthGrantsTable) => unknown = () => {}): Promise<RefreshResult> {
  const hash = await sha256Hex(presented);
  for (let attempt = 0; attempt < 3; attempt++) {
    const current = await db.selectFrom('oauth_grants').selectAll().where('refresh_hash', '=', hash).executeTakeFirst();
    if (current) {
      if (current.client_id !== clientId) throw new OAuthError('invalid_grant', 'refresh token was issued to another client');
      if (current.revoked_at || current.expires_at <= nowIso()) throw new OAuthError('invalid_grant', 'refresh token is expired or revoked');
      check(current);
      const next = `${REFRESH_PREFIX}${randomSecret(48)}`;
      const res = await db
        .updateTable('oauth_grants')
        .set({
          refresh_hash: await sha256Hex(next),
          previous_refresh_hash: hash,
          next_refresh_encrypted: await encrypt(env.ENCRYPTION_KEY, next, refreshAad(current.id)),
          rotated_at: nowIso(),
          last_used_at: nowIso(),
          expires_at: isoIn(GRANT_TTL_S),
        })
        .where('id', '=', current.id)
        .where('refresh_hash', '=', hash)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1) return { grant: current, refreshToken: next };
      continue; // lost the race: the token is now the previous one; look again
    }
    const previous = await db.selectFrom('oauth_grants').selectAll().where('previous_refresh_hash', '=', hash).executeTakeFirst();
    if (!previous) throw new OAuthError('invalid_grant', 'refresh token is invalid');
    if (previous.client_id !== clientId) throw new OAuthError('invalid_grant', 'refresh token was issued to another client');
    const withinGrace = previous.rotated_at && Date.now() - Date.parse(previous.rotated_at) < REFRESH_GRACE_S * 1000;
    if (!previous.revoked_at && withinGrace && previous.next_refresh_encrypted) {
      check(previous);
      return { grant: previous, refreshToken: await decrypt(env.ENCRYPTION_KEY, previous.next_refresh_encrypted, refreshAad(previous.id)) };
    }
    await revokeGrantOnReuse(db, previous.id, 'refresh_token_reuse', clientId);
    throw new OAuthError('invalid_grant', 'refresh token was already used; the grant has been revoked');
  }
  throw new OAuthError('invalid_grant', 'refresh token is invalid');
}
