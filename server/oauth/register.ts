import { isDirectScope } from '../portal/direct.store';
import { insertAuditEvent } from '../audit/audit.store';
import { randomSecret, sha256Hex } from '../crypto/hash';
import type { DB, OAuthClientsTable } from '../db/schema';
import type { Env } from '../env';
import { newId } from '../lib/ids';
import { hitCounters } from '../lib/rate-limits';
import { isoIn, nowIso } from '../lib/time';
import { checkFetchableUrl } from '../lib/urls';
import { isAssertionAlg, parseJwks } from './client-keys';
import { checkRedirectUri, isDevelopment } from './clients';
import { noStoreJson, OAuthError } from './errors';
import { SCOPES_SUPPORTED } from './metadata';

/**
 * POST /oauth/register: RFC 7591 dynamic client registration (deprecated by MCP 2026-07-28 in favour of
 * Client ID Metadata Documents, kept for clients that do not support them). Open registration, so:
 * validated metadata, rate-limited per address, and registrations that never obtain a token expire.
 */
const REGISTRATIONS_PER_HOUR = 20;
const UNUSED_REGISTRATION_TTL_S = 24 * 3600;
const MAX_BODY = 16 * 1024;

const badMetadata = (description: string) => new OAuthError('invalid_client_metadata', description);

function strings(value: unknown, field: string, max: number): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw badMetadata(`${field} must be an array of strings`);
  if (value.length > max) throw badMetadata(`${field} has more than ${max} entries`);
  return value as string[];
}

function optionalString(value: unknown, field: string, max = 512): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length > max) throw badMetadata(`${field} must be a string of at most ${max} characters`);
  return value;
}

function httpsUrl(value: string | null, field: string): string | null {
  if (value === null) return null;
  try {
    if (new URL(value).protocol === 'https:') return value;
  } catch {
    /* fall through */
  }
  throw badMetadata(`${field} must be an https URL`);
}

/**
 * The public keys of a private_key_jwt client (RFC 7591 §2: jwks or jwks_uri, never both), and the one
 * algorithm it signs with if it names one. Other clients' keys are not kept: they would authenticate nothing.
 */
export function validateClientKeys(body: Record<string, unknown>, method: unknown, development: boolean) {
  if (method !== 'private_key_jwt') return { jwks: null, jwks_uri: null, token_endpoint_auth_signing_alg: null };
  const alg = body.token_endpoint_auth_signing_alg ?? null;
  if (alg !== null && !isAssertionAlg(alg)) throw badMetadata('token_endpoint_auth_signing_alg must be RS256, PS256, ES256 or EdDSA');
  if (body.jwks !== undefined && body.jwks_uri !== undefined) throw badMetadata('jwks and jwks_uri must not both be present');
  if (body.jwks_uri !== undefined) {
    const check = typeof body.jwks_uri === 'string' && body.jwks_uri.length <= 512 ? checkFetchableUrl(body.jwks_uri, development) : ({ ok: false, reason: 'not a URL of at most 512 characters' } as const);
    if (!check.ok) throw badMetadata(`jwks_uri refused: ${check.reason}`);
    return { jwks: null, jwks_uri: body.jwks_uri as string, token_endpoint_auth_signing_alg: alg };
  }
  if (body.jwks === undefined) throw badMetadata('private_key_jwt needs jwks or jwks_uri');
  const parsed = parseJwks(body.jwks);
  if (!parsed.ok) throw badMetadata(`jwks is invalid: ${parsed.reason}`);
  return { jwks: parsed.jwks, jwks_uri: null, token_endpoint_auth_signing_alg: alg };
}

/** RFC 7591 §2 metadata, checked and normalised; throws invalid_client_metadata / invalid_redirect_uri. */
export function validateClientMetadata(body: Record<string, unknown>, development = false) {
  const redirectUris = strings(body.redirect_uris, 'redirect_uris', 10);
  if (redirectUris.length === 0) throw new OAuthError('invalid_redirect_uri', 'at least one redirect_uri is required');
  for (const uri of redirectUris) {
    const problem = checkRedirectUri(uri);
    if (problem) throw new OAuthError('invalid_redirect_uri', `redirect_uri ${uri} ${problem}`);
  }
  const method = body.token_endpoint_auth_method ?? 'client_secret_basic';
  if (method !== 'none' && method !== 'client_secret_basic' && method !== 'client_secret_post' && method !== 'private_key_jwt') {
    throw badMetadata('token_endpoint_auth_method must be none, client_secret_basic, client_secret_post or private_key_jwt');
  }
  const keys = validateClientKeys(body, method, development);
  const grantTypes = body.grant_types === undefined ? ['authorization_code', 'refresh_token'] : strings(body.grant_types, 'grant_types', 3);
  for (const g of grantTypes) {
    if (g !== 'authorization_code' && g !== 'refresh_token') throw badMetadata(`grant_type ${g} cannot be registered dynamically`);
  }
  const responseTypes = body.response_types === undefined ? ['code'] : strings(body.response_types, 'response_types', 1);
  if (responseTypes.some((r) => r !== 'code')) throw badMetadata('response_types must be ["code"]');
  const scope = optionalString(body.scope, 'scope');
  return {
    redirect_uris: redirectUris,
    token_endpoint_auth_method: method as OAuthClientsTable['token_endpoint_auth_method'],
    grant_types: grantTypes,
    response_types: responseTypes,
    client_name: optionalString(body.client_name, 'client_name', 100),
    client_uri: httpsUrl(optionalString(body.client_uri, 'client_uri'), 'client_uri'),
    logo_uri: httpsUrl(optionalString(body.logo_uri, 'logo_uri'), 'logo_uri'),
    scope,
    ...keys,
  };
}

export async function handleRegister(request: Request, env: Env, db: DB): Promise<Response> {
  if (request.method !== 'POST') throw new OAuthError('invalid_request', 'use POST', 405, { allow: 'POST' });
  if (!(request.headers.get('content-type') ?? '').toLowerCase().startsWith('application/json')) throw new OAuthError('invalid_request', 'the body must be application/json');
  const text = await request.text();
  if (text.length > MAX_BODY) throw badMetadata('the registration request is too large');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badMetadata('the body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badMetadata('the body must be a JSON object');
  const meta = validateClientMetadata(body as Record<string, unknown>, isDevelopment(env));
  for (const s of meta.scope?.split(' ').filter(Boolean) ?? []) {
    // ChittyAuth's own scopes, or one that a direct resource's server defines (servers.setDirect).
    if (!(SCOPES_SUPPORTED as readonly string[]).includes(s) && !(await isDirectScope(db, s))) throw badMetadata(`unknown scope ${s}`);
  }

  const ip = request.headers.get('cf-connecting-ip') ?? 'unknown';
  const [hit] = await hitCounters(db, [{ name: `register:${ip}`, windowSeconds: 3600 }]);
  if (hit!.count > REGISTRATIONS_PER_HOUR) {
    throw new OAuthError('invalid_request', 'too many registrations from this address; try again later', 429, { 'retry-after': String(hit!.retryAfter) });
  }

  const clientId = newId('cli');
  const secret = meta.token_endpoint_auth_method === 'client_secret_basic' || meta.token_endpoint_auth_method === 'client_secret_post' ? `cs_${randomSecret(48)}` : null;
  const now = nowIso();
  await db
    .insertInto('oauth_clients')
    .values({
      client_id: clientId,
      kind: 'dynamic',
      client_secret_hash: secret ? await sha256Hex(secret) : null,
      client_name: meta.client_name ?? 'Unnamed application',
      redirect_uris: JSON.stringify(meta.redirect_uris),
      grant_types: JSON.stringify(meta.grant_types),
      token_endpoint_auth_method: meta.token_endpoint_auth_method,
      scope: meta.scope,
      client_uri: meta.client_uri,
      logo_uri: meta.logo_uri,
      chitty_id: null,
      created_by: null,
      created_at: now,
      updated_at: now,
      expires_at: isoIn(UNUSED_REGISTRATION_TTL_S),
      last_used_at: null,
      jwks: meta.jwks ? JSON.stringify(meta.jwks) : null,
      jwks_uri: meta.jwks_uri,
      token_endpoint_auth_signing_alg: meta.token_endpoint_auth_signing_alg,
    })
    .execute();
  await insertAuditEvent(db, { actor: 'anonymous', action: 'oauth.register', target: clientId, door: 'oauth', outcome: 'success', detail: { client_name: meta.client_name, redirect_uris: meta.redirect_uris, ip } });
  // RFC 7591 §3.2.1: 201 with the registered metadata; the secret is shown this once.
  return noStoreJson(
    {
      client_id: clientId,
      client_id_issued_at: Math.floor(Date.now() / 1000),
      ...(secret ? { client_secret: secret, client_secret_expires_at: 0 } : {}),
      client_name: meta.client_name ?? 'Unnamed application',
      redirect_uris: meta.redirect_uris,
      grant_types: meta.grant_types,
      response_types: meta.response_types,
      token_endpoint_auth_method: meta.token_endpoint_auth_method,
      ...(meta.scope ? { scope: meta.scope } : {}),
      ...(meta.client_uri ? { client_uri: meta.client_uri } : {}),
      ...(meta.logo_uri ? { logo_uri: meta.logo_uri } : {}),
      ...(meta.jwks ? { jwks: meta.jwks } : {}),
      ...(meta.jwks_uri ? { jwks_uri: meta.jwks_uri } : {}),
      ...(meta.token_endpoint_auth_signing_alg ? { token_endpoint_auth_signing_alg: meta.token_endpoint_auth_signing_alg } : {}),
    },
    201,
  );
}
