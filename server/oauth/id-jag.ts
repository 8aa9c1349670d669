import type { JSONWebKeySet, JWTPayload } from 'jose';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { findAccountByUsername } from '../accounts/accounts.store';
import { insertAuditEvent } from '../audit/audit.store';
import type { DB, OAuthTrustedIdpsTable } from '../db/schema';
import type { Env } from '../env';
import { nowIso } from '../lib/time';
import { CLIENT_ASSERTION_ALGS, reasonOf, verifyWithKeys } from './client-keys';
import type { Client } from './clients';
import { OAuthError } from './errors';
import { ACCESS_TOKEN_TTL_S, insertGrant, issueAccessToken, type TokenResponse } from './grants';
import { DEFAULT_SCOPE, SCOPES_SUPPORTED } from './metadata';
import { checkResource } from './params';

/**
 * Enterprise-managed authorization (MCP ext-auth "Enterprise-Managed Authorization", an application of
 * draft-ietf-oauth-identity-assertion-authz-grant): an MCP client presents an ID-JAG, an identity assertion JWT
 * authorization grant issued by the organisation's identity provider, as an RFC 7523 §2.1 JWT bearer grant, and
 * gets an access token for the mapped account with no redirect and no consent page. Only identity providers an
 * admin trusts (`oauth.idps.register`) are accepted, and only for the clients named there.
 */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Advertised in `authorization_grant_profiles_supported` (ext-auth EMA §6). */
export const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag';
const ID_JAG_TYP = 'oauth-id-jag+jwt';
/** IdPs issue ID-JAGs for minutes (the examples: 300 s); anything meant to live longer is refused. */
const ID_JAG_MAX_LIFETIME_S = 600;
const CLOCK_SKEW_S = 30;
const MAX_ASSERTION_LENGTH = 16 * 1024;
const MAX_JTI_LENGTH = 256;

export const findTrustedIdpByIssuer = (db: DB, issuer: string) => db.selectFrom('oauth_trusted_idps').selectAll().where('issuer', '=', issuer).executeTakeFirst();

const invalidGrant = (reason: string) => new OAuthError('invalid_grant', `ID-JAG rejected: ${reason}`);

const idpKeys = (idp: OAuthTrustedIdpsTable) => ({ jwks: idp.jwks ? (JSON.parse(idp.jwks) as JSONWebKeySet) : null, jwks_uri: idp.jwks_uri });

/** The one resource the token is for: the ID-JAG's `resource` (a URI or an array), narrowed by the request's. */
function resourceFor(env: Env, claim: unknown, requested: string | null): string {
  if (claim === undefined) return checkResource(env, requested);
  const asserted = typeof claim === 'string' ? [claim] : Array.isArray(claim) && claim.every((r) => typeof r === 'string') ? (claim as string[]) : null;
  if (!asserted || asserted.length === 0) throw invalidGrant('resource must be a URI or an array of URIs');
  const chosen = requested ?? (asserted.length === 1 ? asserted[0]! : null);
  if (chosen === null) throw new OAuthError('invalid_target', 'the ID-JAG names several resources: send resource to choose one');
  const canonical = checkResource(env, chosen);
  // ext-auth EMA §5.1: the access token MUST be audience-restricted to the resource the ID-JAG names.
  if (!asserted.some((r) => r === chosen || r === canonical)) throw new OAuthError('invalid_target', 'resource is not one the ID-JAG was issued for');
  return canonical;
}

/**
 * ext-auth EMA §7.2.1: the scopes granted are the intersection of those requested and those in the ID-JAG
 * (RFC 6749 §3.3), further capped by what the client and the identity provider are allowed.
 */
function scopeFor(requested: string | null, claim: unknown, client: Client, idp: OAuthTrustedIdpsTable): string {
  if (claim !== undefined && typeof claim !== 'string') throw invalidGrant('scope must be a space-separated string');
  const asserted = claim === undefined ? [DEFAULT_SCOPE] : claim.split(' ').filter(Boolean);
  const wanted = requested ? requested.split(' ').filter(Boolean) : asserted;
  const caps = [SCOPES_SUPPORTED as readonly string[], asserted, client.scope ? client.scope.split(' ') : null, idp.scope ? idp.scope.split(' ') : null];
  const granted = [...new Set(wanted)].filter((s) => caps.every((cap) => cap === null || cap.includes(s)));
  if (granted.length === 0) throw new OAuthError('invalid_scope', 'none of the requested scopes is both asserted by the identity provider and allowed for this client');
  return granted.join(' ');
}

/** POST /oauth/token with grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and an ID-JAG as `assertion`. */
export async function jwtBearerGrant(env: Env, db: DB, client: Client, form: URLSearchParams): Promise<TokenResponse> {
  // draft-ietf-oauth-identity-assertion-authz-grant, Security Considerations: for confidential clients only.
  if (client.token_endpoint_auth_method === 'none') throw new OAuthError('unauthorized_client', 'the jwt-bearer grant needs a client that authenticates (a secret or private_key_jwt)');
  const assertion = form.get('assertion');
  if (!assertion) throw new OAuthError('invalid_request', 'assertion is required (RFC 7523 §2.1)');
  if (assertion.length > MAX_ASSERTION_LENGTH) throw invalidGrant('the assertion is too long');
  let unverified: JWTPayload;
  try {
    decodeProtectedHeader(assertion);
    unverified = decodeJwt(assertion);
  } catch {
    throw invalidGrant('the assertion is not a JWT');
  }
  const idp = typeof unverified.iss === 'string' ? await findTrustedIdpByIssuer(db, unverified.iss) : undefined;
  if (!idp) throw invalidGrant('its issuer is not a trusted identity provider');

  const algorithms = [...CLIENT_ASSERTION_ALGS];
  let payload: JWTPayload;
  try {
    payload = await verifyWithKeys(env, idpKeys(idp), assertion, {
      algorithms,
      // draft §4.4.1: typ MUST be oauth-id-jag+jwt (RFC 8725 §3.11), aud MUST be this authorization server's issuer.
      typ: ID_JAG_TYP,
      issuer: idp.issuer,
      audience: [env.ISSUER, `${env.ISSUER}/`],
      // draft §3.1: iss, sub, aud, client_id, jti, exp and iat are REQUIRED.
      requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat'],
      clockTolerance: CLOCK_SKEW_S,
    });
  } catch (error) {
    throw invalidGrant(reasonOf(error, algorithms));
  }
  // One audience: this authorization server, and no other party the token could be replayed at.
  if (Array.isArray(payload.aud) && payload.aud.length !== 1) throw invalidGrant('aud must name this authorization server only');
  // draft §4.4.1: client_id MUST identify the client that authenticated this request.
  if (payload.client_id !== client.client_id) throw invalidGrant('client_id is not the client that authenticated');
  if (!(JSON.parse(idp.client_ids) as string[]).includes(client.client_id)) throw new OAuthError('unauthorized_client', `this client may not use ID-JAGs from ${idp.issuer}`);
  const now = Math.floor(Date.now() / 1000);
  if (payload.exp! - payload.iat! > ID_JAG_MAX_LIFETIME_S || payload.exp! - now > ID_JAG_MAX_LIFETIME_S + CLOCK_SKEW_S) throw invalidGrant(`it lives longer than ${ID_JAG_MAX_LIFETIME_S} s`);
  if (payload.iat! > now + CLOCK_SKEW_S) throw invalidGrant('iat is in the future');
  const jti = payload.jti!;
  if (jti.length === 0 || jti.length > MAX_JTI_LENGTH) throw invalidGrant(`jti must be 1 to ${MAX_JTI_LENGTH} characters`);

  const resource = resourceFor(env, payload.resource, form.get('resource'));
  const scope = scopeFor(form.get('scope'), payload.scope, client, idp);
  const who = payload[idp.account_claim];
  const account = typeof who === 'string' && who.length <= 320 ? await findAccountByUsername(db, who) : undefined;
  if (!account || account.status !== 'active') throw invalidGrant(`no active account has the username of its ${idp.account_claim} claim`);

  // RFC 7519 §4.1.7: spent once per issuer, atomically (of two concurrent requests exactly one inserts).
  const spent = await db
    .insertInto('oauth_id_jag_jtis')
    .values({ issuer: idp.issuer, jti, expires_at: nowIso((payload.exp! + CLOCK_SKEW_S) * 1000) })
    .onConflict((oc) => oc.columns(['issuer', 'jti']).doNothing())
    .returning('jti')
    .executeTakeFirst();
  if (!spent) throw invalidGrant('jti has been used before (replay)');

  const grant = await insertGrant(db, { clientId: client.client_id, chittyId: account.chitty_id, scope, resource });
  await insertAuditEvent(db, {
    actor: client.client_id,
    action: 'oauth.id_jag',
    target: grant.id,
    door: 'oauth',
    outcome: 'success',
    detail: { issuer: idp.issuer, subject: payload.sub, chitty_id: account.chitty_id, scope, resource },
  });
  // No refresh token: the client asks the identity provider for a new ID-JAG, so the IdP's policy applies again.
  return { access_token: await issueAccessToken(env, db, grant), token_type: 'Bearer', expires_in: ACCESS_TOKEN_TTL_S, scope };
}
