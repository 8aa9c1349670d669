import * as v from 'valibot';
import { base, CONFLICT, NOT_FOUND } from './base';
import { ChittyIdSchema, NullableTimestampSchema, TimestampSchema } from './schemas';

const UrlSchema = v.pipe(v.string(), v.maxLength(512), v.url('Invalid URL'));
const OAuthScopeSchema = v.picklist(['mcp:read', 'mcp:write', 'chittyos:services', 'cross_sync'], 'Invalid scope: expected mcp:read, mcp:write, chittyos:services or cross_sync');
const ClientIdSchema = v.pipe(v.string(), v.minLength(3), v.maxLength(512));

export const OAuthClientSchema = v.object({
  client_id: v.string(),
  kind: v.picklist(['preregistered', 'dynamic', 'metadata_document']),
  client_name: v.string(),
  redirect_uris: v.array(v.string()),
  grant_types: v.array(v.string()),
  token_endpoint_auth_method: v.string(),
  scopes: v.nullable(v.array(v.string())),
  client_uri: v.nullable(v.string()),
  chitty_id: v.pipe(v.nullable(v.string()), v.description('The client’s own ChittyID, used for client_credentials')),
  jwks_uri: v.pipe(v.nullable(v.string()), v.description('Where a private_key_jwt client publishes its public keys')),
  jwks: v.pipe(v.nullable(v.looseObject({ keys: v.array(v.looseObject({ kty: v.string() })) })), v.description('A private_key_jwt client’s public keys, when given inline')),
  token_endpoint_auth_signing_alg: v.nullable(v.string()),
  created_at: TimestampSchema,
  last_used_at: NullableTimestampSchema,
});

const AuthMethodSchema = v.picklist(['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'], 'Invalid token_endpoint_auth_method');
const SigningAlgSchema = v.picklist(['RS256', 'PS256', 'ES256', 'EdDSA'], 'Invalid token_endpoint_auth_signing_alg: expected RS256, PS256, ES256 or EdDSA');
/** A JWK Set of public keys (RFC 7517 §5); the server checks each key further (asymmetric, public only). */
const JwksSchema = v.pipe(
  v.looseObject({ keys: v.pipe(v.array(v.looseObject({ kty: v.pipe(v.string(), v.maxLength(8)) })), v.minLength(1), v.maxLength(20)) }),
  v.description('A JSON Web Key Set of the client’s public signing keys, for private_key_jwt'),
);
const GrantTypeSchema = v.picklist(
  ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
  'Invalid grant type: expected authorization_code, refresh_token, client_credentials or urn:ietf:params:oauth:grant-type:jwt-bearer',
);

export const registerOAuthClient = base
  .route({
    method: 'POST',
    path: '/oauth/clients',
    successStatus: 201,
    tags: ['OAuth'],
    summary: 'Pre-register an OAuth client',
    description:
      'Registers an OAuth client ahead of time, with a chosen client_id (e.g. chittymcp-universal-server). Clients with client_secret_basic or client_secret_post get a secret, shown once; private_key_jwt clients give their public keys (jwks or jwks_uri) instead; clients allowed client_credentials get a ChittyID of their own.',
  })
  .meta({ tool: 'register_oauth_client', permission: 'oauth:clients:write', audit: true })
  .errors({ CONFLICT })
  .input(
    v.strictObject({
      client_id: v.optional(v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9._-]{2,63}$/, 'Invalid client_id: 3 to 64 characters a-z 0-9 . _ -'), v.maxLength(64))),
      client_name: v.pipe(v.string(), v.minLength(1), v.maxLength(100)),
      redirect_uris: v.pipe(v.array(UrlSchema), v.maxLength(10)),
      scopes: v.optional(v.pipe(v.array(OAuthScopeSchema), v.minLength(1), v.maxLength(4))),
      token_endpoint_auth_method: v.optional(AuthMethodSchema, 'client_secret_basic'),
      grant_types: v.optional(v.pipe(v.array(GrantTypeSchema), v.minLength(1), v.maxLength(3)), ['authorization_code', 'refresh_token']),
      client_uri: v.optional(UrlSchema),
      jwks: v.optional(JwksSchema),
      jwks_uri: v.optional(v.pipe(UrlSchema, v.description('Where the client publishes its public keys (https), for private_key_jwt'))),
      token_endpoint_auth_signing_alg: v.optional(SigningAlgSchema),
    }),
  )
  .output(v.object({ ...OAuthClientSchema.entries, client_secret: v.nullable(v.pipe(v.string(), v.description('Shown once'))) }));

export const listOAuthClients = base
  .route({ method: 'GET', path: '/oauth/clients', tags: ['OAuth'], summary: 'List OAuth clients', description: 'Pre-registered and dynamically registered clients.' })
  .meta({ tool: 'list_oauth_clients', permission: 'oauth:clients:read', readOnly: true })
  .input(v.strictObject({ kind: v.optional(v.picklist(['preregistered', 'dynamic'])) }))
  .output(v.object({ items: v.array(OAuthClientSchema) }));

export const getOAuthClient = base
  .route({ method: 'GET', path: '/oauth/clients/{client_id}', tags: ['OAuth'], summary: 'Get an OAuth client' })
  .meta({ tool: 'get_oauth_client', permission: 'oauth:clients:read', readOnly: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ client_id: ClientIdSchema }))
  .output(OAuthClientSchema);

export const updateOAuthClient = base
  .route({ method: 'PATCH', path: '/oauth/clients/{client_id}', tags: ['OAuth'], summary: 'Update an OAuth client', description: 'Changes a registered client; `rotate_secret` issues a new secret (shown once) and invalidates the old one; a private_key_jwt client’s keys are replaced by new `jwks` or `jwks_uri`.' })
  .meta({ tool: 'update_oauth_client', permission: 'oauth:clients:write', audit: true })
  .errors({ NOT_FOUND })
  .input(
    v.strictObject({
      client_id: ClientIdSchema,
      client_name: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(100))),
      redirect_uris: v.optional(v.pipe(v.array(UrlSchema), v.minLength(1), v.maxLength(10))),
      scopes: v.optional(v.pipe(v.array(OAuthScopeSchema), v.minLength(1), v.maxLength(4))),
      rotate_secret: v.optional(v.boolean(), false),
      jwks: v.optional(JwksSchema),
      jwks_uri: v.optional(UrlSchema),
    }),
  )
  .output(v.object({ ...OAuthClientSchema.entries, client_secret: v.nullable(v.string()) }));

export const deleteOAuthClient = base
  .route({ method: 'DELETE', path: '/oauth/clients/{client_id}', tags: ['OAuth'], summary: 'Delete an OAuth client', description: 'Deletes a client and revokes every grant and token issued to it.' })
  .meta({ tool: 'delete_oauth_client', permission: 'oauth:clients:write', audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ client_id: ClientIdSchema }))
  .output(v.object({ deleted: v.boolean(), grants_revoked: v.number() }));

export const TrustedIdpSchema = v.object({
  idp_id: v.string(),
  issuer: v.string(),
  jwks_uri: v.nullable(v.string()),
  jwks: v.nullable(v.looseObject({ keys: v.array(v.looseObject({ kty: v.string() })) })),
  client_ids: v.array(v.string()),
  account_claim: v.picklist(['email', 'sub', 'preferred_username']),
  scopes: v.nullable(v.array(v.string())),
  created_at: TimestampSchema,
});

export const registerTrustedIdp = base
  .route({
    method: 'POST',
    path: '/oauth/idps',
    successStatus: 201,
    tags: ['OAuth'],
    summary: 'Trust an identity provider',
    description:
      'Trusts an enterprise identity provider to issue ID-JAGs (identity assertion JWT authorization grants) for this authorization server: the named clients may exchange them at /oauth/token (grant_type urn:ietf:params:oauth:grant-type:jwt-bearer) for access tokens of the account whose username equals the assertion’s account_claim, with at most the given scopes.',
  })
  .meta({ tool: 'register_trusted_idp', permission: 'oauth:idps:write', audit: true })
  .errors({ CONFLICT })
  .input(
    v.strictObject({
      issuer: v.pipe(UrlSchema, v.description('The identity provider’s issuer identifier (https), exactly as in its ID-JAGs’ iss')),
      jwks_uri: v.optional(v.pipe(UrlSchema, v.description('Where the identity provider publishes its signing keys (https)'))),
      jwks: v.optional(JwksSchema),
      client_ids: v.pipe(v.array(ClientIdSchema), v.minLength(1), v.maxLength(20), v.description('The clients that may present this identity provider’s ID-JAGs')),
      account_claim: v.optional(v.picklist(['email', 'sub', 'preferred_username'], 'Invalid account_claim: expected email, sub or preferred_username'), 'email'),
      scopes: v.optional(v.pipe(v.array(OAuthScopeSchema), v.minLength(1), v.maxLength(4))),
    }),
  )
  .output(TrustedIdpSchema);

export const listTrustedIdps = base
  .route({ method: 'GET', path: '/oauth/idps', tags: ['OAuth'], summary: 'List trusted identity providers' })
  .meta({ tool: 'list_trusted_idps', permission: 'oauth:idps:read', readOnly: true })
  .input(v.optional(v.strictObject({}), {}))
  .output(v.object({ items: v.array(TrustedIdpSchema) }));

export const deleteTrustedIdp = base
  .route({ method: 'DELETE', path: '/oauth/idps/{idp_id}', tags: ['OAuth'], summary: 'Stop trusting an identity provider', description: 'Its ID-JAGs are refused from now on; tokens already issued stay valid until they expire or are revoked.' })
  .meta({ tool: 'delete_trusted_idp', permission: 'oauth:idps:write', audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ idp_id: v.pipe(v.string(), v.maxLength(64), v.regex(/^idp_[0-9a-z]{26}$/, 'Invalid id: expected idp_…')) }))
  .output(v.object({ deleted: v.boolean() }));

export const OAuthGrantSchema = v.object({
  grant_id: v.string(),
  client_id: v.string(),
  client_name: v.nullable(v.string()),
  chitty_id: v.nullable(v.string()),
  scope: v.string(),
  resource: v.string(),
  created_at: TimestampSchema,
  last_used_at: NullableTimestampSchema,
  expires_at: TimestampSchema,
  revoked_at: NullableTimestampSchema,
});

export const listOAuthGrants = base
  .route({ method: 'GET', path: '/oauth/grants', tags: ['OAuth'], summary: 'List OAuth grants', description: 'The applications a ChittyID (default: the caller) has authorized: client, scopes, resource, when, last used.' })
  .meta({ tool: 'list_oauth_grants', permission: 'oauth:grants:read', readOnly: true })
  .input(v.strictObject({ chitty_id: v.optional(ChittyIdSchema), include_revoked: v.optional(v.boolean(), false) }))
  .output(v.object({ items: v.array(OAuthGrantSchema) }));

export const revokeOAuthGrant = base
  .route({ method: 'DELETE', path: '/oauth/grants/{grant_id}', tags: ['OAuth'], summary: 'Revoke an OAuth grant', description: 'Revokes an authorization: its refresh and access tokens stop working, and the remembered consent is forgotten.' })
  .meta({ tool: 'revoke_oauth_grant', permission: 'oauth:grants:revoke', audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ grant_id: v.pipe(v.string(), v.maxLength(64), v.regex(/^gnt_[0-9a-z]{26}$/, 'Invalid id: expected gnt_…')) }))
  .output(OAuthGrantSchema);

const TokenInfoSchema = v.object({
  active: v.boolean(),
  token_type: v.nullable(v.picklist(['api_key', 'session', 'access_token', 'refresh_token', 'jwt'])),
  sub: v.nullable(v.string()),
  client_id: v.nullable(v.string()),
  scope: v.nullable(v.string()),
  aud: v.nullable(v.union([v.string(), v.array(v.string())])),
  exp: v.nullable(v.number()),
  reason: v.nullable(v.string()),
});

const TokenInputSchema = v.strictObject({ token: v.pipe(v.string(), v.minLength(1), v.maxLength(8192)) });

export const validateToken = base
  .route({
    method: 'POST',
    path: '/tokens/validate',
    tags: ['Tokens'],
    summary: 'Validate any token',
    description: 'Tells whether a token issued here is active (API key, sign-in token, OAuth access or refresh token, generated JWT), whose it is and what it allows, as RFC 7662 introspection would.',
  })
  .meta({ tool: 'validate_token', permission: 'tokens:validate', readOnly: true })
  .input(TokenInputSchema)
  .output(TokenInfoSchema);

export const validateMcpToken = base
  .route({
    method: 'POST',
    path: '/mcp/validate',
    tags: ['Tokens'],
    summary: 'Validate an MCP token',
    description: 'Tells whether a token is valid for this MCP server (portal and linked-app tokens): an API key, or an access token whose audience is the MCP resource.',
  })
  .meta({ tool: 'validate_mcp_token', permission: 'tokens:validate', readOnly: true })
  .input(TokenInputSchema)
  .output(TokenInfoSchema);

export const createLinkedAppOAuth = base
  .route({
    method: 'POST',
    path: '/mcp/linked-app/oauth',
    tags: ['OAuth'],
    summary: 'Start a linked-app authorization',
    description:
      'Builds the authorization URL for a linked app (a registered OAuth client) with PKCE: returns the URL to open, the state and the code_verifier to keep for exchange_oauth_tokens.',
  })
  .meta({ tool: 'create_linked_app_oauth', permission: 'oauth:linked_apps:create' })
  .errors({ NOT_FOUND })
  .input(
    v.strictObject({
      client_id: ClientIdSchema,
      redirect_uri: UrlSchema,
      scopes: v.optional(v.pipe(v.array(OAuthScopeSchema), v.minLength(1), v.maxLength(4))),
      resource: v.optional(UrlSchema),
    }),
  )
  .output(v.object({ authorization_url: v.string(), state: v.string(), code_verifier: v.string(), code_challenge: v.string(), code_challenge_method: v.literal('S256'), resource: v.string() }));

export const exchangeOAuthTokens = base
  .route({
    method: 'POST',
    path: '/mcp/linked-app/token',
    tags: ['OAuth'],
    summary: 'Exchange a code or refresh token',
    description: 'Runs the token endpoint for a linked app: an authorization code with its code_verifier, or a refresh token. Confidential clients give their client_secret.',
  })
  .meta({ tool: 'exchange_oauth_tokens', permission: 'oauth:linked_apps:create', audit: true })
  .errors({ OAUTH_ERROR: { status: 400, message: 'The token request was refused', data: v.object({ error: v.string(), error_description: v.string() }) } })
  .input(
    v.strictObject({
      grant_type: v.picklist(['authorization_code', 'refresh_token']),
      client_id: ClientIdSchema,
      client_secret: v.optional(v.pipe(v.string(), v.maxLength(256))),
      code: v.optional(v.pipe(v.string(), v.maxLength(256))),
      code_verifier: v.optional(v.pipe(v.string(), v.maxLength(128))),
      redirect_uri: v.optional(UrlSchema),
      refresh_token: v.optional(v.pipe(v.string(), v.maxLength(256))),
      resource: v.optional(UrlSchema),
      scope: v.optional(v.pipe(v.string(), v.maxLength(256))),
    }),
  )
  .output(
    v.object({
      access_token: v.string(),
      token_type: v.literal('Bearer'),
      expires_in: v.number(),
      scope: v.string(),
      refresh_token: v.nullable(v.string()),
    }),
  );

export const portalAuthenticate = base
  .route({
    method: 'POST',
    path: '/mcp/portal/authenticate',
    tags: ['OAuth'],
    summary: 'Portal sign-in with Cloudflare Access',
    description:
      'Verifies a Cloudflare Access JWT (the Cf-Access-Jwt-Assertion header, or `assertion`) against the team’s JWKS and audience tag and returns a portal token for the user’s ChittyID. New users get an account with the user role.',
  })
  .meta({ tool: 'mcp_portal_authenticate', permission: null, public: true, audit: true })
  .errors({ INVALID_ASSERTION: { status: 401, message: 'The Cloudflare Access assertion is missing or invalid' }, NOT_CONFIGURED: { status: 503, message: 'Cloudflare Access is not configured' } })
  .input(v.optional(v.strictObject({ assertion: v.optional(v.pipe(v.string(), v.maxLength(8192))) }), {}))
  .output(v.object({ access_token: v.string(), token_type: v.literal('Bearer'), expires_in: v.number(), session_id: v.string(), chitty_id: v.string(), email: v.string() }));

export const oauth = {
  clients: {
    register: registerOAuthClient,
    list: listOAuthClients,
    get: getOAuthClient,
    update: updateOAuthClient,
    delete: deleteOAuthClient,
  },
  grants: {
    list: listOAuthGrants,
    revoke: revokeOAuthGrant,
  },
  idps: {
    register: registerTrustedIdp,
    list: listTrustedIdps,
    delete: deleteTrustedIdp,
  },
};

export const tokens = { validate: validateToken };

export const mcp = {
  validate: validateMcpToken,
  linkedAppOAuth: createLinkedAppOAuth,
  linkedAppToken: exchangeOAuthTokens,
  portalAuthenticate,
};
