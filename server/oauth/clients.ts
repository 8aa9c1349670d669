import type { JSONWebKeySet } from 'jose';
import type { DB, OAuthClientsTable } from '../db/schema';
import type { Env } from '../env';
import { checkFetchableUrl, fetchSmallJson, isLoopbackHost } from '../lib/urls';
import { isAssertionAlg, parseJwks } from './client-keys';
import { OAuthError } from './errors';

/**
 * Who a `client_id` is: a registered client (pre-registered or dynamic), or, when it is an https URL,
 * the Client ID Metadata Document it names (draft-ietf-oauth-client-id-metadata-document).
 */
export interface Client {
  client_id: string;
  kind: OAuthClientsTable['kind'];
  client_name: string;
  redirect_uris: string[];
  grant_types: string[];
  token_endpoint_auth_method: OAuthClientsTable['token_endpoint_auth_method'];
  client_secret_hash: string | null;
  scope: string | null;
  client_uri: string | null;
  logo_uri: string | null;
  chitty_id: string | null;
  /** Public keys for private_key_jwt: inline, or where they are published. */
  jwks: JSONWebKeySet | null;
  jwks_uri: string | null;
  token_endpoint_auth_signing_alg: string | null;
}

export const toClient = (row: OAuthClientsTable): Client => ({
  client_id: row.client_id,
  kind: row.kind,
  client_name: row.client_name,
  redirect_uris: JSON.parse(row.redirect_uris),
  grant_types: JSON.parse(row.grant_types),
  token_endpoint_auth_method: row.token_endpoint_auth_method,
  client_secret_hash: row.client_secret_hash,
  scope: row.scope,
  client_uri: row.client_uri,
  logo_uri: row.logo_uri,
  chitty_id: row.chitty_id,
  jwks: row.jwks ? (JSON.parse(row.jwks) as JSONWebKeySet) : null,
  jwks_uri: row.jwks_uri,
  token_endpoint_auth_signing_alg: row.token_endpoint_auth_signing_alg,
});

export const findClientRow = (db: DB, clientId: string) => db.selectFrom('oauth_clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();

export const isDevelopment = (env: Env) => env.ENVIRONMENT === 'development' || env.ENVIRONMENT === 'test';

/**
 * Callbacks of widely used native MCP clients whose private-use scheme is not reverse-DNS (RFC 8252 §7.1 asks
 * apps for one; these predate that). Accepted exactly, nothing like them: PKCE S256, which every client here must
 * use, is what protects a code sent to a scheme another app could claim (RFC 8252 §8.1).
 */
const KNOWN_NATIVE_CALLBACKS: readonly string[] = ['cursor://anysphere.cursor-mcp/oauth/callback'];

/**
 * Redirect URI rules for registration (OAuth 2.1 §2.3.1, RFC 8252 §7.3): https, or http on a loopback
 * address; no fragment; custom schemes for native apps only when they contain a dot (reverse DNS).
 */
export function checkRedirectUri(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not an absolute URL';
  }
  if (url.hash || raw.includes('#')) return 'must not contain a fragment';
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:') return isLoopbackHost(url.hostname) ? null : 'must use https (http only for loopback addresses)';
  if (/^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/.test(url.protocol)) return null;
  if (KNOWN_NATIVE_CALLBACKS.includes(raw)) return null;
  return 'must use https, http on loopback, or a reverse-DNS private scheme';
}

/**
 * Exact string matching (OAuth 2.1 §4.1.1), except that for loopback http redirect URIs the port may
 * differ (RFC 8252 §7.3): scheme, host, path and query must still match exactly.
 */
export function redirectUriMatches(registered: readonly string[], requested: string): boolean {
  if (registered.includes(requested)) return true;
  let req: URL;
  try {
    req = new URL(requested);
  } catch {
    return false;
  }
  if (req.protocol !== 'http:' || !isLoopbackHost(req.hostname) || req.hash) return false;
  return registered.some((r) => {
    try {
      const reg = new URL(r);
      return reg.protocol === 'http:' && reg.hostname === req.hostname && reg.pathname === req.pathname && reg.search === req.search && reg.username === req.username;
    } catch {
      return false;
    }
  });
}

// --- Client ID Metadata Documents ---------------------------------------------------------------

const CIMD_MAX_BYTES = 5 * 1024;
const CIMD_TIMEOUT_MS = 5_000;
const CIMD_MAX_CACHE_S = 24 * 3600;
const CIMD_MIN_CACHE_S = 60;
const cimdCache = new Map<string, { client: Client; until: number }>();

export const isMetadataDocumentClientId = (clientId: string) => clientId.startsWith('https://') || clientId.startsWith('http://');

function cacheSeconds(res: Response): number {
  const cc = res.headers.get('cache-control') ?? '';
  if (/no-store/i.test(cc)) return 0;
  const m = /max-age=(\d+)/i.exec(cc);
  return Math.min(CIMD_MAX_CACHE_S, Math.max(CIMD_MIN_CACHE_S, m ? Number(m[1]) : 300));
}

/**
 * How a Client ID Metadata Document's client authenticates. The CIMD draft notes there is no way to establish
 * a shared secret through a public document, so client_secret_* methods are refused: `none` whenever the document offers it (as its method or in
 * `token_endpoint_auth_methods_supported`, as ChatGPT's does), else `private_key_jwt` with the document's keys.
 * When both are offered the keys are kept too: a client that sends an assertion anyway has it verified.
 */
export function negotiateAuthMethod(doc: Record<string, unknown>, development: boolean): Pick<Client, 'jwks' | 'jwks_uri'> & { method: 'none' | 'private_key_jwt'; alg: string | null } {
  const offered = new Set<string>();
  if (typeof doc.token_endpoint_auth_method === 'string') offered.add(doc.token_endpoint_auth_method);
  if (Array.isArray(doc.token_endpoint_auth_methods_supported)) for (const m of doc.token_endpoint_auth_methods_supported) if (typeof m === 'string') offered.add(m);
  if (offered.size === 0) offered.add('none');
  const method = offered.has('none') ? 'none' : offered.has('private_key_jwt') ? 'private_key_jwt' : null;
  if (!method) {
    throw new OAuthError('invalid_client', `client_id metadata documents may not use client secrets (offered: ${[...offered].join(', ')}); use token_endpoint_auth_method none or private_key_jwt`);
  }
  if (!offered.has('private_key_jwt')) return { method, jwks: null, jwks_uri: null, alg: null };
  const alg = doc.token_endpoint_auth_signing_alg ?? null;
  if (alg !== null && !isAssertionAlg(alg)) throw new OAuthError('invalid_client', 'token_endpoint_auth_signing_alg must be RS256, PS256, ES256 or EdDSA');
  // RFC 7591 §2: jwks_uri and jwks MUST NOT both be present.
  if (doc.jwks !== undefined && doc.jwks_uri !== undefined) throw new OAuthError('invalid_client', 'client_id metadata document has both jwks and jwks_uri');
  if (doc.jwks_uri !== undefined) {
    // Fetched later under the same rules as the document itself (https, public address).
    const check = typeof doc.jwks_uri === 'string' ? checkFetchableUrl(doc.jwks_uri, development) : ({ ok: false, reason: 'not a string' } as const);
    if (!check.ok) throw new OAuthError('invalid_client', `jwks_uri in the client_id metadata document refused: ${check.reason}`);
    return { method, jwks: null, jwks_uri: doc.jwks_uri as string, alg };
  }
  if (doc.jwks !== undefined) {
    const parsed = parseJwks(doc.jwks);
    if (!parsed.ok) throw new OAuthError('invalid_client', `jwks in the client_id metadata document is invalid: ${parsed.reason}`);
    return { method, jwks: parsed.jwks, jwks_uri: null, alg };
  }
  if (method === 'none') return { method, jwks: null, jwks_uri: null, alg: null };
  throw new OAuthError('invalid_client', 'private_key_jwt needs jwks or jwks_uri in the client_id metadata document');
}

/** Fetches and validates a Client ID Metadata Document. Every failure is an invalid_client with the reason. */
export async function fetchMetadataDocument(env: Env, clientId: string): Promise<Client> {
  const cached = cimdCache.get(clientId);
  if (cached && cached.until > Date.now()) return cached.client;

  const check = checkFetchableUrl(clientId, isDevelopment(env));
  if (!check.ok) throw new OAuthError('invalid_client', `client_id metadata document URL refused: ${check.reason}`);
  // The document URL must have a path component and no fragment (CIMD §3).
  if (check.url.pathname === '/' || check.url.hash) throw new OAuthError('invalid_client', 'client_id metadata document URL must have a path and no fragment');

  const fetched = await fetchSmallJson(check.url, { timeoutMs: CIMD_TIMEOUT_MS, maxBytes: CIMD_MAX_BYTES });
  if (!fetched.ok) throw new OAuthError('invalid_client', `client_id metadata document ${fetched.reason}`);
  const res = fetched.response;
  if (typeof fetched.body !== 'object' || fetched.body === null || Array.isArray(fetched.body)) throw new OAuthError('invalid_client', 'client_id metadata document is not a JSON object');
  const doc = fetched.body as Record<string, unknown>;
  // CIMD §4.1: the document's client_id MUST equal the URL it was fetched from (simple string comparison).
  if (doc.client_id !== clientId) throw new OAuthError('invalid_client', 'client_id in the metadata document does not match its URL');
  const redirectUris = Array.isArray(doc.redirect_uris) ? doc.redirect_uris.filter((u): u is string => typeof u === 'string') : [];
  if (redirectUris.length === 0 || redirectUris.some((u) => checkRedirectUri(u) !== null)) {
    throw new OAuthError('invalid_client', 'client_id metadata document has missing or invalid redirect_uris');
  }
  const auth = negotiateAuthMethod(doc, isDevelopment(env));
  const client: Client = {
    client_id: clientId,
    kind: 'metadata_document',
    client_name: typeof doc.client_name === 'string' ? doc.client_name.slice(0, 100) : check.url.host,
    redirect_uris: redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: auth.method,
    client_secret_hash: null,
    scope: typeof doc.scope === 'string' ? doc.scope : null,
    client_uri: typeof doc.client_uri === 'string' ? doc.client_uri : null,
    logo_uri: typeof doc.logo_uri === 'string' ? doc.logo_uri : null,
    chitty_id: null,
    jwks: auth.jwks,
    jwks_uri: auth.jwks_uri,
    token_endpoint_auth_signing_alg: auth.alg,
  };
  const ttl = cacheSeconds(res);
  if (ttl > 0) cimdCache.set(clientId, { client, until: Date.now() + ttl * 1000 });
  return client;
}

/** The client a request names, or an OAuthError (invalid_client) that says why not. */
export async function resolveClient(env: Env, db: DB, clientId: string | null | undefined): Promise<Client> {
  if (!clientId) throw new OAuthError('invalid_request', 'client_id is required');
  if (clientId.length > 512) throw new OAuthError('invalid_client', 'client_id is too long');
  if (isMetadataDocumentClientId(clientId)) return fetchMetadataDocument(env, clientId);
  const row = await findClientRow(db, clientId);
  if (!row || (row.expires_at && row.expires_at < new Date().toISOString())) throw new OAuthError('invalid_client', 'unknown client_id');
  return toClient(row);
}
