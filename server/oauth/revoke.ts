import { insertAuditEvent } from '../audit/audit.store';
import { endSockets } from '../auth/live-sockets';
import { sha256Hex } from '../crypto/hash';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { verifyJwt } from '../jwt/tokens';
import { authenticateClient, readForm } from './client-auth';
import { noStoreJson, OAuthError } from './errors';
import { findGrant, grantIsLive, REFRESH_PREFIX, revokeGrant } from './grants';
import { introspectionAllows } from './resources';

/** The grant behind a refresh or access token, or null. */
async function grantOf(env: Env, db: DB, token: string) {
  if (token.startsWith(REFRESH_PREFIX)) {
    const hash = await sha256Hex(token);
    return db.selectFrom('oauth_grants').selectAll().where((eb) => eb.or([eb('refresh_hash', '=', hash), eb('previous_refresh_hash', '=', hash)])).executeTakeFirst();
  }
  const v = await verifyJwt(env, db, token, { typ: 'at+jwt' });
  if (!v.ok || typeof v.claims.gid !== 'string') return undefined;
  return findGrant(db, v.claims.gid);
}

/** POST /oauth/revoke (RFC 7009). Revoking either token of a grant revokes the grant. */
export async function handleRevoke(request: Request, env: Env, db: DB): Promise<Response> {
  if (request.method !== 'POST') throw new OAuthError('invalid_request', 'use POST', 405, { allow: 'POST' });
  const form = await readForm(request);
  const client = await authenticateClient(env, db, request, form);
  const token = form.get('token');
  if (!token) throw new OAuthError('invalid_request', 'token is required');
  const grant = await grantOf(env, db, token);
  // RFC 7009 §2.1: a token of another client is not revoked; §2.2: unknown tokens still get 200.
  if (grant && grant.client_id === client.client_id && !grant.revoked_at) {
    await revokeGrant(db, grant.id, 'revoked_by_client');
    const socketsClosed = grant.chitty_id ? await endSockets(env, grant.chitty_id, { credentials: [grant.id], reason: 'credential revoked' }) : 0;
    await insertAuditEvent(db, { actor: client.client_id, action: 'oauth.revoke', target: grant.id, door: 'oauth', outcome: 'success', detail: { chitty_id: grant.chitty_id, sockets_closed: socketsClosed } });
  }
  return noStoreJson({});
}

/** POST /oauth/introspect (RFC 7662): for authenticated clients, about their own tokens (and a direct resource's server, about tokens for it). */
export async function handleIntrospect(request: Request, env: Env, db: DB): Promise<Response> {
  if (request.method !== 'POST') throw new OAuthError('invalid_request', 'use POST', 405, { allow: 'POST' });
  const form = await readForm(request);
  const client = await authenticateClient(env, db, request, form);
  if (client.token_endpoint_auth_method === 'none') throw new OAuthError('invalid_client', 'introspection requires client authentication', 401);
  const token = form.get('token');
  if (!token) throw new OAuthError('invalid_request', 'token is required');
  const inactive = noStoreJson({ active: false });
  if (token.startsWith(REFRESH_PREFIX)) {
    const grant = await grantOf(env, db, token);
    if (!grant || grant.client_id !== client.client_id || !(await grantIsLive(db, grant.id)) || grant.refresh_hash !== (await sha256Hex(token))) return inactive;
    return noStoreJson({ active: true, token_type: 'refresh_token', client_id: grant.client_id, scope: grant.scope, sub: grant.chitty_id ?? grant.client_id, aud: grant.resource, iss: env.ISSUER, exp: Math.floor(Date.parse(grant.expires_at) / 1000) });
  }
  const v = await verifyJwt(env, db, token, { typ: 'at+jwt' });
  if (!v.ok || typeof v.claims.gid !== 'string' || !(await introspectionAllows(db, client.client_id, v.claims)) || !(await grantIsLive(db, v.claims.gid))) return inactive;
  const c = v.claims;
  return noStoreJson({ active: true, token_type: 'access_token', client_id: c.client_id, scope: c.scope, sub: c.sub, aud: c.aud, iss: c.iss, exp: c.exp, iat: c.iat, jti: c.jti });
}
