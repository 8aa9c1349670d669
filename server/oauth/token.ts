import { sha256Hex } from '../crypto/hash';
import type { DB, OAuthGrantsTable } from '../db/schema';
import type { Env } from '../env';
import { nowIso } from '../lib/time';
import { authenticateClient, readForm } from './client-auth';
import type { Client } from './clients';
import { noStoreJson, OAuthError } from './errors';
import { ACCESS_TOKEN_TTL_S, findGrant, insertGrant, issueAccessToken, issueRefreshToken, revokeGrantOnReuse, rotateRefreshToken, type TokenResponse } from './grants';
import { narrowScope } from './params';
import { JWT_BEARER_GRANT, jwtBearerGrant } from './id-jag';
import { admitClientIdentity, requestedScope, resolveResource, reviewDirectGrant } from './resources';
import { verifyPkce } from './pkce';

/** POST /oauth/token (OAuth 2.1 §3.2): authorization_code, refresh_token, client_credentials and the jwt-bearer grant (ID-JAG). */
export async function handleToken(request: Request, env: Env, db: DB): Promise<Response> {
  if (request.method !== 'POST') throw new OAuthError('invalid_request', 'use POST', 405, { allow: 'POST' });
  const form = await readForm(request);
  const client = await authenticateClient(env, db, request, form);
  const grantType = form.get('grant_type');
  if (!grantType) throw new OAuthError('invalid_request', 'grant_type is required');
  if (!client.grant_types.includes(grantType)) {
    throw new OAuthError(
      ['authorization_code', 'refresh_token', 'client_credentials', JWT_BEARER_GRANT].includes(grantType) ? 'unauthorized_client' : 'unsupported_grant_type',
      `grant_type ${grantType} is not allowed for this client`,
    );
  }
  const body =
    grantType === 'authorization_code'
      ? await exchangeCode(env, db, client, form)
      : grantType === 'refresh_token'
        ? await refresh(env, db, client, form)
        : grantType === JWT_BEARER_GRANT
          ? await jwtBearerGrant(env, db, client, form)
          : await clientCredentials(env, db, client, form);
  if (client.kind === 'dynamic') {
    // A used registration no longer expires.
    await db.updateTable('oauth_clients').set({ expires_at: null, last_used_at: nowIso() }).where('client_id', '=', client.client_id).execute();
  }
  return noStoreJson(body);
}

export async function exchangeCode(env: Env, db: DB, client: Client, form: URLSearchParams): Promise<TokenResponse> {
  const code = form.get('code');
  const verifier = form.get('code_verifier');
  const redirectUri = form.get('redirect_uri');
  if (!code) throw new OAuthError('invalid_request', 'code is required');
  // OAuth 2.1 §4.1.3: PKCE is mandatory; a token request without code_verifier is refused.
  if (!verifier) throw new OAuthError('invalid_request', 'code_verifier is required (PKCE)');

  const hash = await sha256Hex(code);
  const row = await db.selectFrom('oauth_codes').selectAll().where('code_hash', '=', hash).executeTakeFirst();
  if (!row) throw new OAuthError('invalid_grant', 'authorization code is invalid');
  // Single use, enforced atomically: of two concurrent redemptions exactly one sets used_at.
  const claim = await db.updateTable('oauth_codes').set({ used_at: nowIso() }).where('code_hash', '=', hash).where('used_at', 'is', null).executeTakeFirst();
  if (Number(claim.numUpdatedRows) !== 1) {
    // OAuth 2.1 §4.1.3 / RFC 9700 §4.5: a replayed code revokes every token issued from it.
    await revokeGrantOnReuse(db, row.grant_id, 'authorization_code_replay', client.client_id);
    throw new OAuthError('invalid_grant', 'authorization code was already used; its tokens have been revoked');
  }
  if (row.client_id !== client.client_id) {
    await revokeGrantOnReuse(db, row.grant_id, 'authorization_code_other_client', client.client_id);
    throw new OAuthError('invalid_grant', 'authorization code was issued to another client');
  }
  if (row.expires_at <= nowIso()) throw new OAuthError('invalid_grant', 'authorization code has expired');
  // OAuth 2.1 §4.1.3: redirect_uri must be identical to the one in the authorization request, if sent there.
  if (redirectUri !== null && redirectUri !== row.redirect_uri) throw new OAuthError('invalid_grant', 'redirect_uri does not match the authorization request');
  if (!(await verifyPkce(verifier, row.code_challenge))) throw new OAuthError('invalid_grant', 'code_verifier does not match the code_challenge');

  const grant = await findGrant(db, row.grant_id);
  if (!grant || grant.revoked_at) throw new OAuthError('invalid_grant', 'the authorization was revoked');
  // RFC 8707 §2.2: a resource at the token endpoint must be one the grant covers.
  const resource = form.get('resource');
  if (resource !== null && (await resolveResource(env, db, resource)).resource !== grant.resource) throw new OAuthError('invalid_target', 'resource does not match the authorization request');
  const refreshToken = client.grant_types.includes('refresh_token') ? await issueRefreshToken(db, grant.id) : undefined;
  return {
    access_token: await issueAccessToken(env, db, grant),
    token_type: 'Bearer',
    expires_in: ACCESS_TOKEN_TTL_S,
    scope: grant.scope,
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  };
}

export async function refresh(env: Env, db: DB, client: Client, form: URLSearchParams): Promise<TokenResponse> {
  const presented = form.get('refresh_token');
  if (!presented) throw new OAuthError('invalid_request', 'refresh_token is required');
  const raw = form.get('resource');
  const resource = raw === null ? null : (await resolveResource(env, db, raw)).resource;
  // Checked before the token rotates, so that a refused request leaves the refresh token as it was.
  const checkRequest = (grant: OAuthGrantsTable) => {
    // The resource stays bound to the grant; a different one is refused.
    if (resource !== null && resource !== grant.resource) throw new OAuthError('invalid_target', 'resource differs from the one this grant was issued for');
    return narrowScope(form.get('scope'), grant.scope);
  };
  const { grant, refreshToken } = await rotateRefreshToken(env, db, presented, client.client_id, checkRequest);
  // A direct resource's policy is decided again: access removed in the portal ends the grant here.
  const scope = await reviewDirectGrant(db, grant, checkRequest(grant));
  return { access_token: await issueAccessToken(env, db, grant, scope), token_type: 'Bearer', expires_in: ACCESS_TOKEN_TTL_S, scope, refresh_token: refreshToken };
}

/** OAuth 2.1 §4.2: confidential clients acting for themselves, as their own ChittyID. */
async function clientCredentials(env: Env, db: DB, client: Client, form: URLSearchParams): Promise<TokenResponse> {
  if (client.token_endpoint_auth_method === 'none' || !client.chitty_id) throw new OAuthError('unauthorized_client', 'client_credentials needs a confidential, pre-registered client');
  const resolved = await resolveResource(env, db, form.get('resource'));
  const scope = await admitClientIdentity(db, resolved, client.chitty_id, requestedScope(form.get('scope'), client, resolved));
  const grant = await insertGrant(db, { clientId: client.client_id, chittyId: client.chitty_id, scope, resource: resolved.resource });
  return { access_token: await issueAccessToken(env, db, grant), token_type: 'Bearer', expires_in: ACCESS_TOKEN_TTL_S, scope: grant.scope };
}
