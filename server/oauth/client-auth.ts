import { sha256Hex, timingSafeEqualStrings } from '../crypto/hash';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { resolveClient, type Client } from './clients';
import { OAuthError } from './errors';

/**
 * Client authentication at the token, revocation and introspection endpoints (OAuth 2.1 §2.4):
 * `client_secret_basic`, `client_secret_post`, or `none` for public clients, exactly as registered.
 */
export async function authenticateClient(env: Env, db: DB, request: Request, form: URLSearchParams): Promise<Client> {
  const basic = parseBasic(request.headers.get('authorization'));
  const postSecret = form.get('client_secret');
  if (basic && postSecret) throw new OAuthError('invalid_request', 'use one client authentication method, not two');
  const clientId = basic?.id ?? form.get('client_id');
  if (basic && form.get('client_id') && form.get('client_id') !== basic.id) throw new OAuthError('invalid_request', 'client_id does not match the Authorization header');
  // RFC 6749 §5.2: "no client authentication included" is invalid_client (401), as RFC 7662 §2.3 expects too.
  if (!clientId) throw unauthorizedClient('client authentication is required: send client_id, with the secret if the client has one', false);

  let client: Client;
  try {
    client = await resolveClient(env, db, clientId);
  } catch (error) {
    if (error instanceof OAuthError && error.code === 'invalid_client') throw unauthorizedClient(error.description, !!basic);
    throw error;
  }
  const method = client.token_endpoint_auth_method;
  const secret = method === 'client_secret_basic' ? basic?.secret : method === 'client_secret_post' ? postSecret : null;
  if (method === 'none') {
    if (basic || postSecret) throw unauthorizedClient('this client is public and has no secret', !!basic);
    return client;
  }
  if (!secret || !client.client_secret_hash || !timingSafeEqualStrings(await sha256Hex(secret), client.client_secret_hash)) {
    throw unauthorizedClient(`client authentication failed (${method})`, method === 'client_secret_basic');
  }
  return client;
}

/** For the linked-app tools: the client's secret given in the input instead of at the token endpoint. */
export async function authenticateClientWithSecret(env: Env, db: DB, clientId: string, secret: string | undefined): Promise<Client> {
  const client = await resolveClient(env, db, clientId);
  if (client.token_endpoint_auth_method === 'none') {
    if (secret) throw new OAuthError('invalid_client', 'this client is public and has no secret', 401);
    return client;
  }
  if (!secret || !client.client_secret_hash || !timingSafeEqualStrings(await sha256Hex(secret), client.client_secret_hash)) {
    throw new OAuthError('invalid_client', 'client authentication failed', 401);
  }
  return client;
}

/** RFC 6749 §5.2: a 401 with WWW-Authenticate when the client tried HTTP Basic. */
const unauthorizedClient = (description: string, basic: boolean) =>
  new OAuthError('invalid_client', description, 401, basic ? { 'www-authenticate': 'Basic realm="chittyauth"' } : {});

function parseBasic(header: string | null): { id: string; secret: string } | null {
  const m = header ? /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim()) : null;
  if (!m) return null;
  let decoded: string;
  try {
    decoded = atob(m[1]!);
  } catch {
    throw new OAuthError('invalid_client', 'malformed Basic credentials', 401);
  }
  const i = decoded.indexOf(':');
  if (i < 0) throw new OAuthError('invalid_client', 'malformed Basic credentials', 401);
  // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
  try {
    return { id: decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' ')), secret: decodeURIComponent(decoded.slice(i + 1).replace(/\+/g, ' ')) };
  } catch {
    throw new OAuthError('invalid_client', 'malformed Basic credentials', 401);
  }
}

/** Reads an application/x-www-form-urlencoded body, refusing anything else and duplicated parameters (OAuth 2.1 §3.2). */
export async function readForm(request: Request): Promise<URLSearchParams> {
  const type = request.headers.get('content-type') ?? '';
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    throw new OAuthError('invalid_request', 'the body must be application/x-www-form-urlencoded');
  }
  const form = new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer()));
  const seen = new Set<string>();
  for (const key of form.keys()) {
    if (seen.has(key)) throw new OAuthError('invalid_request', `parameter ${key} is repeated`);
    seen.add(key);
  }
  return form;
}
