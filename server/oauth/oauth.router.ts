import { ORPCError } from '@orpc/server';
import { base64url } from 'jose';
import { createAccountWithRoles } from '../accounts/accounts.router';
import { findAccountByUsername } from '../accounts/accounts.store';
import { startSession } from '../accounts/sign-in';
import { describeToken } from '../auth/describe-token';
import { randomSecret, sha256Hex } from '../crypto/hash';
import type { DB, OAuthClientsTable, OAuthGrantsTable, OAuthTrustedIdpsTable } from '../db/schema';
import type { Env } from '../env';
import { mintIdentity } from '../identities/authority';
import { newId } from '../lib/ids';
import { nowIso } from '../lib/time';
import { invalidInput } from '../adapters/errors';
import { authzOf, os } from '../orpc';
import { cfAccessToClientError, verifyAccessAssertion } from './cf-access';
import { authenticateClientWithSecret } from './client-auth';
import { findClientRow, isDevelopment, redirectUriMatches, resolveClient } from './clients';
import { OAuthError } from './errors';
import { findGrant, revokeGrant } from './grants';
import { endSockets } from '../auth/live-sockets';
import { findTrustedIdpByIssuer, JWT_BEARER_GRANT } from './id-jag';
import { mcpResource } from './metadata';
import { checkResource, checkScope } from './params';
import { validateClientKeys } from './register';
import { exchangeCode, refresh } from './token';

const toOAuthClient = (row: OAuthClientsTable) => ({
  client_id: row.client_id,
  kind: row.kind,
  client_name: row.client_name,
  redirect_uris: JSON.parse(row.redirect_uris) as string[],
  grant_types: JSON.parse(row.grant_types) as string[],
  token_endpoint_auth_method: row.token_endpoint_auth_method,
  scopes: row.scope ? row.scope.split(' ') : null,
  client_uri: row.client_uri,
  chitty_id: row.chitty_id,
  jwks_uri: row.jwks_uri,
  jwks: row.jwks ? (JSON.parse(row.jwks) as { keys: { kty: string }[] }) : null,
  token_endpoint_auth_signing_alg: row.token_endpoint_auth_signing_alg,
  created_at: row.created_at,
  last_used_at: row.last_used_at,
});

const toTrustedIdp = (row: OAuthTrustedIdpsTable) => ({
  idp_id: row.id,
  issuer: row.issuer,
  jwks_uri: row.jwks_uri,
  jwks: row.jwks ? (JSON.parse(row.jwks) as { keys: { kty: string }[] }) : null,
  client_ids: JSON.parse(row.client_ids) as string[],
  account_claim: row.account_claim,
  scopes: row.scope ? row.scope.split(' ') : null,
  created_at: row.created_at,
});

const hasSecret = (method: OAuthClientsTable['token_endpoint_auth_method']) => method === 'client_secret_basic' || method === 'client_secret_post';

/**
 * A private_key_jwt client's public keys as stored: exactly one of jwks and jwks_uri (RFC 7591 §2), checked
 * as DCR checks them (server/oauth/register.ts). Other methods take no keys.
 */
function registrationKeys(env: Env, method: OAuthClientsTable['token_endpoint_auth_method'], input: { jwks?: unknown; jwks_uri?: string; token_endpoint_auth_signing_alg?: string }) {
  if (method !== 'private_key_jwt') {
    if (input.jwks !== undefined || input.jwks_uri !== undefined || input.token_endpoint_auth_signing_alg !== undefined) {
      throw invalidInput('token_endpoint_auth_method', 'jwks, jwks_uri and token_endpoint_auth_signing_alg are only for private_key_jwt');
    }
    return { jwks: null, jwks_uri: null, token_endpoint_auth_signing_alg: null };
  }
  try {
    const keys = validateClientKeys(input, method, isDevelopment(env));
    return { jwks: keys.jwks ? JSON.stringify(keys.jwks) : null, jwks_uri: keys.jwks_uri, token_endpoint_auth_signing_alg: keys.token_endpoint_auth_signing_alg };
  } catch (error) {
    if (error instanceof OAuthError) throw invalidInput(input.jwks_uri !== undefined ? 'jwks_uri' : 'jwks', error.description);
    throw error;
  }
}

const toOAuthGrant = (row: OAuthGrantsTable & { client_name?: string | null }) => ({
  grant_id: row.id,
  client_id: row.client_id,
  client_name: row.client_name ?? null,
  chitty_id: row.chitty_id,
  scope: row.scope,
  resource: row.resource,
  created_at: row.created_at,
  last_used_at: row.last_used_at,
  expires_at: row.expires_at,
  revoked_at: row.revoked_at,
});


function checkRegistrationUris(uris: string[]) {
  for (const [i, uri] of uris.entries()) {
    const u = new URL(uri);
    const loopback = u.hostname === 'localhost' || u.hostname === '127.0.0.1' || u.hostname === '[::1]';
    if (u.hash) throw invalidInput(`redirect_uris[${i}]`, 'must not contain a fragment');
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) throw invalidInput(`redirect_uris[${i}]`, 'must use https (http only for loopback addresses)');
  }
}

async function clientRowOr404(db: DB, clientId: string) {
  const row = await findClientRow(db, clientId);
  if (!row) throw new ORPCError('NOT_FOUND', { status: 404, message: `No OAuth client ${clientId}` });
  return row;
}

/** OAuth errors keep their RFC code when they surface through the contract. */
function asOrpc(error: unknown): never {
  if (error instanceof OAuthError) throw new ORPCError('OAUTH_ERROR', { status: error.status === 401 ? 401 : 400, message: `${error.code}: ${error.description}`, data: { error: error.code, error_description: error.description } });
  throw error;
}

export const oauth = {
  clients: {
    register: os.oauth.clients.register.handler(async ({ input, context }) => {
      const authz = authzOf(context);
      checkRegistrationUris(input.redirect_uris);
      const needsRedirect = input.grant_types.includes('authorization_code');
      if (needsRedirect && input.redirect_uris.length === 0) throw invalidInput('redirect_uris', 'at least one is needed for authorization_code');
      if (input.grant_types.includes('client_credentials') && input.token_endpoint_auth_method === 'none') throw invalidInput('grant_types', 'client_credentials needs a confidential client');
      if (input.grant_types.includes(JWT_BEARER_GRANT) && input.token_endpoint_auth_method === 'none') throw invalidInput('grant_types', 'the jwt-bearer grant needs a confidential client');
      const clientId = input.client_id ?? newId('cli');
      if (await findClientRow(context.db, clientId)) throw new ORPCError('CONFLICT', { status: 409, message: `client_id ${clientId} is taken` });
      const keys = registrationKeys(context.env, input.token_endpoint_auth_method, input);
      const secret = hasSecret(input.token_endpoint_auth_method) ? `cs_${randomSecret(48)}` : null;
      const identity = input.grant_types.includes('client_credentials')
        ? await mintIdentity(context.env, context.db, { type: 'APP', displayName: input.client_name })
        : null;
      const now = nowIso();
      const row: OAuthClientsTable = {
        client_id: clientId,
        kind: 'preregistered',
        client_secret_hash: secret ? await sha256Hex(secret) : null,
        client_name: input.client_name,
        redirect_uris: JSON.stringify(input.redirect_uris),
        grant_types: JSON.stringify(input.grant_types),
        token_endpoint_auth_method: input.token_endpoint_auth_method,
        scope: input.scopes ? input.scopes.join(' ') : null,
        client_uri: input.client_uri ?? null,
        logo_uri: null,
        chitty_id: identity?.chitty_id ?? null,
        created_by: authz.principal.chittyId,
        created_at: now,
        updated_at: now,
        expires_at: null,
        last_used_at: null,
        ...keys,
      };
      await context.db.insertInto('oauth_clients').values(row).execute();
      context.audit.target = clientId;
      context.audit.detail = { client_name: input.client_name, grant_types: input.grant_types };
      return { ...toOAuthClient(row), client_secret: secret };
    }),

    list: os.oauth.clients.list.handler(async ({ input, context }) => {
      let q = context.db.selectFrom('oauth_clients').selectAll();
      if (input.kind) q = q.where('kind', '=', input.kind);
      return { items: (await q.orderBy('created_at', 'desc').limit(500).execute()).map(toOAuthClient) };
    }),

    get: os.oauth.clients.get.handler(async ({ input, context }) => toOAuthClient(await clientRowOr404(context.db, input.client_id))),

    update: os.oauth.clients.update.handler(async ({ input, context }) => {
      const row = await clientRowOr404(context.db, input.client_id);
      if (input.redirect_uris) checkRegistrationUris(input.redirect_uris);
      const secret = input.rotate_secret && hasSecret(row.token_endpoint_auth_method) ? `cs_${randomSecret(48)}` : null;
      // New keys replace the old ones (a rotation); the same rules as at registration.
      const keys = input.jwks !== undefined || input.jwks_uri !== undefined ? registrationKeys(context.env, row.token_endpoint_auth_method, { ...input, ...(row.token_endpoint_auth_signing_alg ? { token_endpoint_auth_signing_alg: row.token_endpoint_auth_signing_alg } : {}) }) : null;
      await context.db
        .updateTable('oauth_clients')
        .set({
          ...(input.client_name ? { client_name: input.client_name } : {}),
          ...(input.redirect_uris ? { redirect_uris: JSON.stringify(input.redirect_uris) } : {}),
          ...(input.scopes ? { scope: input.scopes.join(' ') } : {}),
          ...(secret ? { client_secret_hash: await sha256Hex(secret) } : {}),
          ...(keys ? { jwks: keys.jwks, jwks_uri: keys.jwks_uri } : {}),
          updated_at: nowIso(),
        })
        .where('client_id', '=', row.client_id)
        .execute();
      context.audit.target = row.client_id;
      context.audit.detail = { rotated_secret: !!secret, replaced_keys: !!keys };
      return { ...toOAuthClient(await clientRowOr404(context.db, row.client_id)), client_secret: secret };
    }),

    delete: os.oauth.clients.delete.handler(async ({ input, context }) => {
      const row = await clientRowOr404(context.db, input.client_id);
      const grants = await context.db.selectFrom('oauth_grants').select(['id', 'chitty_id']).where('client_id', '=', row.client_id).where('revoked_at', 'is', null).execute();
      for (const g of grants) await revokeGrant(context.db, g.id, 'client_deleted');
      const byUser = new Map<string, string[]>();
      for (const g of grants) if (g.chitty_id) byUser.set(g.chitty_id, [...(byUser.get(g.chitty_id) ?? []), g.id]);
      for (const [chittyId, ended] of byUser) await endSockets(context.env, chittyId, { credentials: ended, reason: 'credential revoked' });
      await context.db.deleteFrom('oauth_consents').where('client_id', '=', row.client_id).execute();
      await context.db.deleteFrom('oauth_clients').where('client_id', '=', row.client_id).execute();
      context.audit.target = row.client_id;
      return { deleted: true, grants_revoked: grants.length };
    }),
  },

  grants: {
    list: os.oauth.grants.list.handler(async ({ input, context }) => {
      const subject = await authzOf(context).subject(input.chitty_id);
      let q = context.db
        .selectFrom('oauth_grants')
        .leftJoin('oauth_clients', 'oauth_clients.client_id', 'oauth_grants.client_id')
        .selectAll('oauth_grants')
        .select('oauth_clients.client_name')
        .where('oauth_grants.chitty_id', '=', subject);
      if (!input.include_revoked) q = q.where('oauth_grants.revoked_at', 'is', null).where('oauth_grants.expires_at', '>', nowIso());
      return { items: (await q.orderBy('oauth_grants.id', 'desc').limit(500).execute()).map(toOAuthGrant) };
    }),

    revoke: os.oauth.grants.revoke.handler(async ({ input, context }) => {
      const authz = authzOf(context);
      const grant = await findGrant(context.db, input.grant_id);
      const notFound = new ORPCError('NOT_FOUND', { status: 404, message: `No grant ${input.grant_id}` });
      if (!grant) throw notFound;
      if (grant.chitty_id !== authz.principal.chittyId && !(await authz.can('oauth:grants:revoke:any'))) throw notFound;
      await revokeGrant(context.db, grant.id, 'revoked_by_user');
      // Sockets opened with this grant's access tokens close now, not at the next re-check.
      const socketsClosed = grant.chitty_id ? await endSockets(context.env, grant.chitty_id, { credentials: [grant.id], reason: 'credential revoked' }) : 0;
      if (grant.chitty_id) {
        // The user withdraws the approval too: the next authorization asks again.
        await context.db.deleteFrom('oauth_consents').where('chitty_id', '=', grant.chitty_id).where('client_id', '=', grant.client_id).where('resource', '=', grant.resource).execute();
      }
      context.audit.target = grant.id;
      context.audit.detail = { sockets_closed: socketsClosed };
      return toOAuthGrant((await findGrant(context.db, grant.id))!);
    }),
  },

  idps: {
    register: os.oauth.idps.register.handler(async ({ input, context }) => {
      const authz = authzOf(context);
      // ext-auth EMA §7.3: the issuer and key discovery endpoints MUST be https.
      if (!input.issuer.startsWith('https://')) throw invalidInput('issuer', 'must be an https URL');
      let keys: ReturnType<typeof validateClientKeys>;
      try {
        keys = validateClientKeys(input, 'private_key_jwt', isDevelopment(context.env));
      } catch (error) {
        if (error instanceof OAuthError) throw invalidInput(input.jwks_uri !== undefined ? 'jwks_uri' : 'jwks', error.description.replace('private_key_jwt', 'an identity provider'));
        throw error;
      }
      if (await findTrustedIdpByIssuer(context.db, input.issuer)) throw new ORPCError('CONFLICT', { status: 409, message: `${input.issuer} is already trusted` });
      const row: OAuthTrustedIdpsTable = {
        id: newId('idp'),
        issuer: input.issuer,
        jwks: keys.jwks ? JSON.stringify(keys.jwks) : null,
        jwks_uri: keys.jwks_uri,
        client_ids: JSON.stringify([...new Set(input.client_ids)]),
        account_claim: input.account_claim,
        scope: input.scopes ? input.scopes.join(' ') : null,
        created_by: authz.principal.chittyId,
        created_at: nowIso(),
      };
      await context.db.insertInto('oauth_trusted_idps').values(row).execute();
      context.audit.target = row.id;
      context.audit.detail = { issuer: row.issuer, client_ids: input.client_ids, account_claim: row.account_claim };
      return toTrustedIdp(row);
    }),

    list: os.oauth.idps.list.handler(async ({ context }) => ({
      items: (await context.db.selectFrom('oauth_trusted_idps').selectAll().orderBy('created_at', 'desc').limit(500).execute()).map(toTrustedIdp),
    })),

    delete: os.oauth.idps.delete.handler(async ({ input, context }) => {
      const deleted = await context.db.deleteFrom('oauth_trusted_idps').where('id', '=', input.idp_id).executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 0) throw new ORPCError('NOT_FOUND', { status: 404, message: `No trusted identity provider ${input.idp_id}` });
      context.audit.target = input.idp_id;
      return { deleted: true };
    }),
  },
};

export const tokens = {
  validate: os.tokens.validate.handler(async ({ input, context }) => describeToken(context.env, context.db, input.token)),
};

export const mcp = {
  validate: os.mcp.validate.handler(async ({ input, context }) => describeToken(context.env, context.db, input.token, mcpResource(context.env))),

  linkedAppOAuth: os.mcp.linkedAppOAuth.handler(async ({ input, context }) => {
    const { env, db } = context;
    try {
      const client = await resolveClient(env, db, input.client_id);
      if (!redirectUriMatches(client.redirect_uris, input.redirect_uri)) throw invalidInput('redirect_uri', 'is not registered for this client');
      const scope = checkScope(input.scopes?.join(' ') ?? null, client);
      const resource = input.resource ? checkResource(env, input.resource) : mcpResource(env);
      const verifier = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
      const challenge = base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
      const state = base64url.encode(crypto.getRandomValues(new Uint8Array(16)));
      const url = new URL(`${env.ISSUER}/oauth/authorize`);
      for (const [k, v] of Object.entries({ response_type: 'code', client_id: client.client_id, redirect_uri: input.redirect_uri, scope, state, code_challenge: challenge, code_challenge_method: 'S256', resource })) url.searchParams.set(k, v);
      return { authorization_url: url.toString(), state, code_verifier: verifier, code_challenge: challenge, code_challenge_method: 'S256' as const, resource };
    } catch (error) {
      if (error instanceof OAuthError && error.code === 'invalid_client') throw new ORPCError('NOT_FOUND', { status: 404, message: `Unknown client: ${error.description}` });
      return asOrpc(error);
    }
  }),

  linkedAppToken: os.mcp.linkedAppToken.handler(async ({ input, context }) => {
    const { env, db } = context;
    context.audit.target = input.client_id;
    try {
      const client = await authenticateClientWithSecret(env, db, input.client_id, input.client_secret);
      const form = new URLSearchParams();
      for (const [k, v] of Object.entries(input)) if (typeof v === 'string' && k !== 'client_secret') form.set(k, v);
      if (!client.grant_types.includes(input.grant_type)) throw new OAuthError('unauthorized_client', `grant_type ${input.grant_type} is not allowed for this client`);
      const t = input.grant_type === 'authorization_code' ? await exchangeCode(env, db, client, form) : await refresh(env, db, client, form);
      return { access_token: t.access_token, token_type: 'Bearer' as const, expires_in: t.expires_in, scope: t.scope, refresh_token: t.refresh_token ?? null };
    } catch (error) {
      return asOrpc(error);
    }
  }),

  portalAuthenticate: os.mcp.portalAuthenticate.handler(async ({ input, context }) => {
    const { env, db } = context;
    const result = await verifyAccessAssertion(env, input.assertion ?? context.accessAssertion);
    if (!result.ok) throw cfAccessToClientError(result.reason);
    let account = await findAccountByUsername(db, result.email);
    if (!account) {
      // Just-in-time provisioning: Access has authenticated the person; they start with the user role.
      await createAccountWithRoles(env, db, { username: result.email, password: randomSecret(64), displayName: result.email, roles: ['user'], grantedBy: null });
      account = await findAccountByUsername(db, result.email);
    }
    if (!account || account.status !== 'active') throw new ORPCError('INVALID_ASSERTION', { status: 401, message: 'The account for this identity is disabled' });
    const session = await startSession(env, db, account.chitty_id, { client: 'cf_access', deviceName: 'Portal', userAgent: context.userAgent, ip: context.ip });
    context.audit.actor = account.chitty_id;
    context.audit.target = account.chitty_id;
    context.audit.detail = { email: result.email, session_id: session.sessionId };
    return { access_token: session.token, token_type: 'Bearer' as const, expires_in: session.expiresIn, session_id: session.sessionId, chitty_id: account.chitty_id, email: result.email };
  }),
};

