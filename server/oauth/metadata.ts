import type { Env } from '../env';
import { CLIENT_ASSERTION_ALGS } from './client-keys';
import { ID_JAG_PROFILE, JWT_BEARER_GRANT } from './id-jag';

/** Scopes a client can ask for (see server/permissions/policy.ts NAMED_SCOPES for what each allows). */
export const SCOPES_SUPPORTED = ['mcp:read', 'mcp:write', 'chittyos:services', 'cross_sync'] as const;
/** What a client gets when it asks for no scope: least privilege. */
export const DEFAULT_SCOPE = 'mcp:read';

export const mcpResource = (env: Env) => `${env.ISSUER}/mcp`;
export const apiResource = (env: Env) => env.ISSUER;
export const resourceMetadataUrl = (env: Env) => `${env.ISSUER}/.well-known/oauth-protected-resource/mcp`;

/** RFC 8414 §2 authorization server metadata; also served as OpenID Connect discovery. */
export function authorizationServerMetadata(env: Env) {
  const iss = env.ISSUER;
  return {
    issuer: iss,
    authorization_endpoint: `${iss}/oauth/authorize`,
    token_endpoint: `${iss}/oauth/token`,
    registration_endpoint: `${iss}/oauth/register`,
    revocation_endpoint: `${iss}/oauth/revoke`,
    introspection_endpoint: `${iss}/oauth/introspect`,
    jwks_uri: `${iss}/.well-known/jwks.json`,
    scopes_supported: [...SCOPES_SUPPORTED],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', JWT_BEARER_GRANT],
    // ext-auth Enterprise-Managed Authorization §6: the ID-JAG profile of the jwt-bearer grant.
    authorization_grant_profiles_supported: [ID_JAG_PROFILE],
    token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    // RFC 8414 §2: the JWS algorithms for private_key_jwt (asymmetric only; see server/oauth/client-keys.ts).
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
    revocation_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    revocation_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'bearer'],
    introspection_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
    client_id_metadata_document_supported: true,
    // OpenID Connect discovery requires these; ChittyAuth issues no ID tokens.
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['ES256'],
    service_documentation: `${iss}/docs`,
  };
}

/**
 * RFC 9728 §2 protected resource metadata for a resource of ours. `name`: its `resource_name` when it is not
 * ChittyAuth's own (a gateway route is named after the MCP server it fronts).
 */
export function protectedResourceMetadata(env: Env, resource: string, name?: string) {
  return {
    resource,
    authorization_servers: [env.ISSUER],
    scopes_supported: [...SCOPES_SUPPORTED],
    bearer_methods_supported: ['header'],
    resource_name: name ?? (resource === mcpResource(env) ? 'ChittyAuth MCP server' : 'ChittyAuth API'),
    resource_documentation: `${env.ISSUER}/docs`,
  };
}
