import { findApiKeyWithGrants } from '../api-keys/api-keys.store';
import { sha256Hex } from '../crypto/hash';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { verifyJwt } from '../jwt/tokens';
import { nowIso } from '../lib/time';
import { grantIsLive, REFRESH_PREFIX } from '../oauth/grants';
import { findSessionForAuth } from '../sessions/sessions.store';
import { API_KEY_PREFIX } from './authenticate';

export interface TokenInfo {
  active: boolean;
  token_type: 'api_key' | 'session' | 'access_token' | 'refresh_token' | 'jwt' | null;
  sub: string | null;
  client_id: string | null;
  scope: string | null;
  aud: string | string[] | null;
  exp: number | null;
  reason: string | null;
}

const inactive = (reason: string, token_type: TokenInfo['token_type'] = null): TokenInfo => ({ active: false, token_type, sub: null, client_id: null, scope: null, aud: null, exp: null, reason });
const epoch = (iso: string | null) => (iso ? Math.floor(Date.parse(iso) / 1000) : null);

/**
 * What any token issued here is and whether it is active, in RFC 7662's terms. With `audience`, only
 * credentials valid at that resource are active (API keys are issued here for every resource of ours).
 */
export async function describeToken(env: Env, db: DB, token: string, audience?: string): Promise<TokenInfo> {
  if (token.startsWith(API_KEY_PREFIX)) {
    const { key } = await findApiKeyWithGrants(db, await sha256Hex(token));
    if (!key) return inactive('unknown', 'api_key');
    const reason = key.revoked_at ? 'revoked' : key.expires_at && key.expires_at <= nowIso() ? 'expired' : key.owner_status !== 'active' ? 'owner_disabled' : null;
    return { active: reason === null, token_type: 'api_key', sub: key.chitty_id, client_id: null, scope: (JSON.parse(key.scopes) as string[]).join(' '), aud: null, exp: epoch(key.expires_at), reason };
  }
  if (token.startsWith(REFRESH_PREFIX)) {
    if (audience) return inactive('refresh tokens are not accepted by resources', 'refresh_token');
    const grant = await db.selectFrom('oauth_grants').selectAll().where('refresh_hash', '=', await sha256Hex(token)).executeTakeFirst();
    if (!grant) return inactive('unknown', 'refresh_token');
    const live = await grantIsLive(db, grant.id);
    return { active: live, token_type: 'refresh_token', sub: grant.chitty_id ?? grant.client_id, client_id: grant.client_id, scope: grant.scope, aud: grant.resource, exp: epoch(grant.expires_at), reason: live ? null : 'revoked' };
  }
  const v = await verifyJwt(env, db, token, audience ? { audience } : {});
  if (!v.ok) return inactive(v.reason);
  const c = v.claims;
  const base = { sub: c.sub ?? null, client_id: typeof c.client_id === 'string' ? c.client_id : null, scope: typeof c.scope === 'string' ? c.scope : null, aud: c.aud ?? null, exp: c.exp ?? null };
  if (v.header.typ !== 'at+jwt') {
    return audience ? inactive('not an access token', 'jwt') : { active: true, token_type: 'jwt', ...base, reason: null };
  }
  if (typeof c.sid === 'string') {
    const s = await findSessionForAuth(db, c.sid);
    const reason = !s ? 'unknown' : s.revoked_at ? 'revoked' : s.expires_at <= nowIso() ? 'expired' : s.owner_status !== 'active' ? 'owner_disabled' : null;
    return { active: reason === null, token_type: 'session', ...base, reason };
  }
  if (typeof c.gid === 'string') {
    const live = await grantIsLive(db, c.gid);
    return { active: live, token_type: 'access_token', ...base, reason: live ? null : 'revoked' };
  }
  return inactive('malformed');
}
