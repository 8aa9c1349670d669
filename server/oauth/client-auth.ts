import { sha256Hex, timingSafeEqualStrings } from '../crypto/hash';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { assertionIssuer, CLIENT_ASSERTION_TYPE, hasClientKeys, verifyClientAssertion } from './client-keys';
import { resolveClient, type Client } from './clients';
import { OAuthError } from './errors';

/**
 * Client authentication at the token, revocation and introspection endpoints (OAuth 2.1 §2.4):
 * `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523 §2.2), or `none` for public
 * clients, exactly as registered. A client authenticated by an assertion is returned with that method.
 */
export async function authenticateClient(env: Env, db: DB, request: Request, form: URLSearchParams): Promise<Client> {
  const basic = parseBasic(request.headers.get('authorization'));
  const postSecret = form.get('client_secret');
  const assertion = form.get('client_assertion');
  const assertionType = form.get('client_assertion_type');
  if ([!!basic, postSecret !== null, assertion !== null || assertionType !== null].filter(Boolean).length > 1) {
    throw new OAuthError('invalid_request', 'use one client authentication method, not two');
  }
  if (assertion !== null || assertionType !== null) return authenticateWithAssertion(env, db, request, form, assertion, assertionType);
  const clientId = basic?.id ?? form.get('client_id');
  if (basic && form.get('client_id') && form.get('client_id') !== basic.id) throw new OAuthError('invalid_request', 'client_id does not match the Authorization header');
  // RFC 6749 §5.2: "no client authentication included" is invalid_client (401), as RFC 7662 §2.3 expects too.
  if (!clientId) throw unauthorizedClient('client authentication is required: send client_id, with the secret if the client has one', false);

  const client = await resolveForAuthentication(env, db, clientId, !!basic);
  const method = client.token_endpoint_auth_method;
  if (method === 'private_key_jwt') {
    throw unauthorizedClient(`this client authenticates with private_key_jwt: send client_assertion_type=${CLIENT_ASSERTION_TYPE} and a client_assertion`, !!basic);
  }
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

/** RFC 7521 §4.2 / RFC 7523 §2.2: client_assertion_type and client_assertion; client_id is optional. */
async function authenticateWithAssertion(env: Env, db: DB, request: Request, form: URLSearchParams, assertion: string | null, type: string | null): Promise<Client> {
  if (type !== CLIENT_ASSERTION_TYPE) throw unauthorizedClient(`client_assertion_type must be ${CLIENT_ASSERTION_TYPE}`, false);
  if (!assertion) throw unauthorizedClient('client_assertion is required with client_assertion_type', false);
  const clientId = form.get('client_id') ?? assertionIssuer(assertion);
  if (!clientId) throw unauthorizedClient('client_assertion is not a JWT with an iss claim', false);
  const client = await resolveForAuthentication(env, db, clientId, false);
  // A client with keys: private_key_jwt, or a metadata document offering both none and private_key_jwt.
  if (!hasClientKeys(client)) throw unauthorizedClient(`this client does not authenticate with private_key_jwt (${client.token_endpoint_auth_method})`, false);
  await verifyClientAssertion(env, db, client, assertion, `${env.ISSUER}${new URL(request.url).pathname}`);
  return { ...client, token_endpoint_auth_method: 'private_key_jwt' };
}

async function resolveForAuthentication(env: Env, db: DB, clientId: string, basic: boolean): Promise<Client> {
  try {
    return await resolveClient(env, db, clientId);
  } catch (error) {
    if (error instanceof OAuthError && error.code === 'invalid_client') throw unauthorizedClient(error.description, basic);
    throw error;
  }
}

/** For the linked-app tools: the client's secret given in the input instead of at the token endpoint. */
export async function authenticateClientWithSecret(env: Env, db: DB, clientId: string, secret: string | undefined): Promise<Client> {
  const client = await resolveClient(env, db, clientId);
  if (client.token_endpoint_auth_method === 'private_key_jwt') throw new OAuthError('invalid_client', 'this client authenticates with private_key_jwt; use the token endpoint with a client_assertion', 401);
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
