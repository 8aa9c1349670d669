import { signInWithPassword, throttledMessage } from '../accounts/sign-in';
import { insertAuditEvent } from '../audit/audit.store';
import { authenticate, type Principal } from '../auth/authenticate';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { isLoopbackHost } from '../lib/urls';
import { nowIso } from '../lib/time';
import { redirectUriMatches, resolveClient, type Client } from './clients';
import { cookieName, readCookie, setCookie } from './cookies';
import { sign, verify } from './csrf';
import { OAuthError } from './errors';
import { insertCode, insertGrant } from './grants';
import { mcpResource } from './metadata';
import { consentPage, errorPage, formPageHeaders, loginPage, PAGE_HEADERS, SCOPE_DESCRIPTIONS } from './pages';
import { findDirectByResource } from '../portal/direct.store';
import { gatewayConsentFor, gatewayScopeDescription, type GatewayConsent } from '../gateway/consent';
import type { DirectServer } from '../portal/direct';
import { admitDirect, requestedScope, resolveResource } from './resources';
import { CHALLENGE_PATTERN } from './pkce';

/**
 * /oauth/authorize (OAuth 2.1 §4.1.1): validates the request, signs the user in (HTML form), asks for
 * consent (HTML form) and redirects back with a code. Until the client and redirect URI are known to be
 * good, errors are shown as a page and never redirected (no open redirect, OAuth 2.1 §4.1.2.1).
 */
const REQUEST_TTL_S = 600;
const SESSION_COOKIE = 'chitty_session';
const NONCE_COOKIE = 'chitty_login';

interface AuthorizationRequest {
  client_id: string;
  redirect_uri: string;
  redirect_uri_given: boolean;
  scope: string;
  state: string | null;
  code_challenge: string;
  resource: string;
  /** Set when the resource is a direct one (a portal server ChittyAuth protects): its server id. */
  server_id: string | null;
}

const html = (body: string, status = 200, headers: Record<string, string> = {}) => new Response(body, { status, headers: { ...PAGE_HEADERS, ...headers } });

/** RFC 9207: `iss` on every authorization response, errors included. 303 so a POST becomes a GET. */
function redirectTo(env: Env, redirectUri: string, params: Record<string, string | null>, status = 303, headers: Record<string, string> = {}): Response {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries({ ...params, iss: env.ISSUER })) if (v !== null) url.searchParams.set(k, v);
  return new Response(null, { status, headers: { location: url.toString(), 'cache-control': 'no-store', ...headers } });
}

/** Client and redirect URI first: nothing is redirected anywhere until both check out. */
async function validateClientAndRedirect(env: Env, db: DB, params: URLSearchParams): Promise<{ client: Client; redirectUri: string; given: boolean } | Response> {
  let client: Client;
  try {
    client = await resolveClient(env, db, params.get('client_id'));
  } catch (error) {
    const message = error instanceof OAuthError ? error.description : 'unknown client';
    return html(errorPage('Unknown application', `This authorization request cannot be completed: ${message}.`), 400);
  }
  const requested = params.get('redirect_uri');
  if (requested === null) {
    // OAuth 2.1 §4.1.1: redirect_uri may be omitted only when exactly one is registered.
    if (client.redirect_uris.length !== 1) return html(errorPage('Invalid request', 'redirect_uri is required for this application.'), 400);
    return { client, redirectUri: client.redirect_uris[0]!, given: false };
  }
  if (!redirectUriMatches(client.redirect_uris, requested)) {
    return html(errorPage('Invalid redirect', 'The redirect_uri is not registered for this application.'), 400);
  }
  return { client, redirectUri: requested, given: true };
}

/** Everything else; errors from here on go back to the client with `error`, `state` and `iss`. */
async function parseRequest(env: Env, db: DB, params: URLSearchParams, client: Client, redirectUri: string, given: boolean): Promise<AuthorizationRequest> {
  for (const key of new Set(params.keys())) {
    if (params.getAll(key).length > 1) throw new OAuthError('invalid_request', `parameter ${key} is repeated`);
  }
  if (params.get('response_type') !== 'code') throw new OAuthError('unsupported_response_type', 'response_type must be code');
  if (!client.grant_types.includes('authorization_code')) throw new OAuthError('unauthorized_client', 'this client may not use the authorization code flow');
  const challenge = params.get('code_challenge');
  // OAuth 2.1 §4.1.1: PKCE is required; only S256 is offered (a missing method would mean plain).
  if (!challenge) throw new OAuthError('invalid_request', 'code_challenge is required (PKCE with S256)');
  if (params.get('code_challenge_method') !== 'S256') throw new OAuthError('invalid_request', 'code_challenge_method must be S256');
  if (!CHALLENGE_PATTERN.test(challenge)) throw new OAuthError('invalid_request', 'code_challenge is not a base64url SHA-256 value');
  // RFC 8707: the resource is bound to the grant; MCP clients always send it, others get the MCP server.
  const resolved = params.has('resource') ? await resolveResource(env, db, params.get('resource')) : { resource: mcpResource(env), direct: null };
  return {
    client_id: client.client_id,
    redirect_uri: redirectUri,
    redirect_uri_given: given,
    scope: requestedScope(params.get('scope'), client, resolved),
    state: params.get('state'),
    code_challenge: challenge,
    resource: resolved.resource,
    server_id: resolved.direct?.server.id ?? null,
  };
}

async function currentUser(env: Env, db: DB, request: Request, url: URL): Promise<Principal | null> {
  const token = readCookie(request, cookieName(env, url, SESSION_COOKIE));
  if (!token) return null;
  const r = await authenticate(env, db, `Bearer ${token}`, env.ISSUER, () => {});
  return r.ok && r.principal.credential === 'session' ? r.principal : null;
}

/** A scope's meaning on the resource asked for: a direct server's own, a gateway route's, or ChittyAuth's. */
function scopeDescription(name: string, direct: DirectServer | null, gateway: GatewayConsent | null): string {
  if (direct) return direct.scopes.find((s) => s.name === name)?.description ?? name;
  if (gateway) return gatewayScopeDescription(name, gateway.found ? gateway.server.name : 'the server at this route');
  return SCOPE_DESCRIPTIONS[name] ?? name;
}

function consentView(url: URL, req: AuthorizationRequest, client: Client, signed: string, csrf: string, username: string, direct: DirectServer | null, gateway: GatewayConsent | null) {
  const redirect = new URL(req.redirect_uri);
  return consentPage({
    action: `${url.origin}/oauth/authorize`,
    csrf,
    request: signed,
    clientName: client.client_name,
    clientId: client.client_id,
    redirectHost: redirect.host || redirect.protocol,
    loopbackOnly: client.redirect_uris.every((u) => {
      try {
        return isLoopbackHost(new URL(u).hostname);
      } catch {
        return false;
      }
    }),
    scopes: req.scope
      .split(' ')
      .filter(Boolean)
      .map((name) => ({ name, description: scopeDescription(name, direct, gateway) })),
    resource: req.resource,
    resourceName: direct?.server.name ?? null,
    gateway,
    username,
  });
}

async function issueCode(env: Env, db: DB, req: AuthorizationRequest, user: Principal, headers: Record<string, string> = {}): Promise<Response> {
  const grant = await insertGrant(db, { clientId: req.client_id, chittyId: user.chittyId, scope: req.scope, resource: req.resource, sessionId: user.sessionId });
  const code = await insertCode(db, grant.id, req.client_id, req.redirect_uri, req.code_challenge);
  return redirectTo(env, req.redirect_uri, { code, state: req.state }, 303, headers);
}

async function usernameOf(db: DB, chittyId: string) {
  const row = await db.selectFrom('accounts').select('username').where('chitty_id', '=', chittyId).executeTakeFirst();
  return row?.username ?? chittyId;
}

async function rememberedConsent(db: DB, user: Principal, req: AuthorizationRequest): Promise<boolean> {
  const row = await db.selectFrom('oauth_consents').select('scope').where('chitty_id', '=', user.chittyId).where('client_id', '=', req.client_id).where('resource', '=', req.resource).executeTakeFirst();
  if (!row) return false;
  const approved = row.scope.split(' ');
  return req.scope.split(' ').every((s) => approved.includes(s));
}

/** Shows login or consent for a validated request (GET, or after a successful login). */
async function continueRequest(env: Env, db: DB, request: Request, url: URL, req: AuthorizationRequest, client: Client, extraHeaders: Record<string, string> = {}, user?: Principal | null): Promise<Response> {
  const secret = env.ENCRYPTION_KEY;
  const signed = await sign(secret, 'authorize-request', '', req, REQUEST_TTL_S);
  user ??= await currentUser(env, db, request, url);
  if (!user) {
    const nonce = readCookie(request, cookieName(env, url, NONCE_COOKIE)) ?? crypto.randomUUID();
    const csrf = await sign(secret, 'login', nonce, {}, REQUEST_TTL_S);
    return html(loginPage({ action: `${url.origin}/oauth/authorize`, csrf, request: signed, clientName: client.client_name }), 200, {
      ...extraHeaders,
      ...formPageHeaders(req.redirect_uri),
      'set-cookie': setCookie(env, url, NONCE_COOKIE, nonce, REQUEST_TTL_S),
    });
  }
  const admitted = await admitUser(db, req, user, client);
  if (admitted instanceof Response) {
    for (const [k, v] of Object.entries(extraHeaders)) admitted.headers.set(k, v);
    return admitted;
  }
  // Right after a login, extraHeaders carry the new session cookie: the redirect must set it too.
  if (await rememberedConsent(db, user, admitted.req)) return issueCode(env, db, admitted.req, user, extraHeaders);
  const csrf = await sign(secret, 'consent', user.sessionId!, {}, REQUEST_TTL_S);
  // The consent form carries the request as the policy narrowed it.
  const narrowed = admitted.req === req ? signed : await sign(secret, 'authorize-request', '', admitted.req, REQUEST_TTL_S);
  // A gateway route's page names the upstream and the tools the policy lets this person call through it.
  const gateway = admitted.direct ? null : await gatewayConsentFor(env, db, admitted.req.resource, user.chittyId, admitted.req.scope.split(' '));
  return html(consentView(url, admitted.req, client, narrowed, csrf, await usernameOf(db, user.chittyId), admitted.direct, gateway), 200, { ...extraHeaders, ...formPageHeaders(req.redirect_uri) });
}

/**
 * For a direct resource, the portal decides (its `connect` rule, the user's own switch, each scope's action):
 * a refused user sees a page that says why (and nothing goes back to the client); an admitted one's request
 * carries only the scopes the policy allows. ChittyAuth's own resources pass through unchanged.
 */
async function admitUser(db: DB, req: AuthorizationRequest, user: Principal, client: Client): Promise<{ req: AuthorizationRequest; direct: DirectServer | null } | Response> {
  if (!req.server_id) return { req, direct: null };
  const direct = await findDirectByResource(db, req.resource);
  const decision =
    direct && direct.server.id === req.server_id
      ? await admitDirect(db, direct, user.chittyId, req.scope)
      : { ok: false as const, reason: 'This MCP server is no longer protected by ChittyAuth at this address. Start again from the application.' };
  if (!decision.ok) {
    await insertAuditEvent(db, { actor: user.chittyId, action: 'oauth.authorize', target: client.client_id, door: 'oauth', outcome: 'denied', detail: { resource: req.resource, server_id: req.server_id, reason: decision.reason } });
    return html(errorPage('Access denied', decision.reason), 403);
  }
  return { req: { ...req, scope: decision.scope }, direct };
}

export async function handleAuthorize(request: Request, env: Env, db: DB): Promise<Response> {
  const url = new URL(request.url);
  if (request.method === 'GET') return authorizeGet(request, env, db, url);
  if (request.method === 'POST') return authorizePost(request, env, db, url);
  return html(errorPage('Method not allowed', 'Use GET or POST.'), 405, { allow: 'GET, POST' });
}

async function authorizeGet(request: Request, env: Env, db: DB, url: URL): Promise<Response> {
  const params = url.searchParams;
  const checked = await validateClientAndRedirect(env, db, params);
  if (checked instanceof Response) return checked;
  let req: AuthorizationRequest;
  try {
    req = await parseRequest(env, db, params, checked.client, checked.redirectUri, checked.given);
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    return redirectTo(env, checked.redirectUri, { error: error.code, error_description: error.description, state: params.get('state') }, 302);
  }
  return continueRequest(env, db, request, url, req, checked.client);
}

async function authorizePost(request: Request, env: Env, db: DB, url: URL): Promise<Response> {
  if (!(request.headers.get('content-type') ?? '').startsWith('application/x-www-form-urlencoded')) {
    return html(errorPage('Invalid request', 'The form must be submitted as application/x-www-form-urlencoded.'), 400);
  }
  const form = new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer()));
  const secret = env.ENCRYPTION_KEY;
  const req = await verify<AuthorizationRequest>(secret, 'authorize-request', '', form.get('request'));
  if (!req) return html(errorPage('Request expired', 'This sign-in page has expired or was altered. Start again from the application.'), 400);
  // The signed request was valid when issued; check the client and redirect again in case they changed since.
  const recheck = await validateClientAndRedirect(env, db, new URLSearchParams({ client_id: req.client_id, redirect_uri: req.redirect_uri }));
  if (recheck instanceof Response) return recheck;
  const { client } = recheck;
  const action = form.get('action');

  if (action === 'login') {
    const nonce = readCookie(request, cookieName(env, url, NONCE_COOKIE));
    if (!nonce || !(await verify(secret, 'login', nonce, form.get('csrf_token')))) {
      return html(errorPage('Invalid form', 'The sign-in form was tampered with or has expired (CSRF check failed). Start again from the application.'), 403);
    }
    const username = (form.get('username') ?? '').slice(0, 64);
    const result = await signInWithPassword(env, db, {
      username,
      password: (form.get('password') ?? '').slice(0, 256),
      userAgent: request.headers.get('user-agent'),
      ip: request.headers.get('cf-connecting-ip'),
      client: 'oauth',
    });
    await insertAuditEvent(db, { actor: result.chittyId ?? 'anonymous', action: 'oauth.login', target: client.client_id, door: 'oauth', outcome: result.ok ? 'success' : 'failure', detail: { username, ...(result.ok ? { session_id: result.sessionId } : { reason: result.reason }) } });
    if (!result.ok) {
      const csrf = await sign(secret, 'login', nonce, {}, REQUEST_TTL_S);
      const throttled = result.reason === 'throttled';
      const message = throttled ? throttledMessage(result.retryAfter) : 'Wrong username or password.';
      const headers = { ...formPageHeaders(req.redirect_uri), ...(throttled ? { 'retry-after': String(result.retryAfter) } : {}) };
      return html(loginPage({ action: `${url.origin}/oauth/authorize`, csrf, request: form.get('request')!, clientName: client.client_name, error: message, username }), throttled ? 429 : 401, headers);
    }
    const user = await currentUserFromToken(env, db, result.token);
    return continueRequest(env, db, request, url, req, client, { 'set-cookie': setCookie(env, url, SESSION_COOKIE, result.token, result.expiresIn) }, user);
  }

  if (action === 'approve' || action === 'deny') {
    const user = await currentUser(env, db, request, url);
    if (!user || !(await verify(secret, 'consent', user.sessionId!, form.get('csrf_token')))) {
      return html(errorPage('Invalid form', 'The consent form was tampered with or has expired (CSRF check failed). Start again from the application.'), 403);
    }
    await insertAuditEvent(db, { actor: user.chittyId, action: `oauth.consent.${action}`, target: client.client_id, door: 'oauth', outcome: action === 'approve' ? 'success' : 'denied', detail: { scope: req.scope, resource: req.resource } });
    if (action === 'deny') return redirectTo(env, req.redirect_uri, { error: 'access_denied', error_description: 'The user denied the request', state: req.state });
    // The policy may have changed while the consent page was open: it decides again.
    const admitted = await admitUser(db, req, user, client);
    if (admitted instanceof Response) return admitted;
    const approved = admitted.req;
    await db
      .insertInto('oauth_consents')
      .values({ chitty_id: user.chittyId, client_id: client.client_id, resource: approved.resource, scope: approved.scope, created_at: nowIso() })
      .onConflict((oc) => oc.columns(['chitty_id', 'client_id', 'resource']).doUpdateSet({ scope: approved.scope, created_at: nowIso() }))
      .execute();
    return issueCode(env, db, approved, user);
  }
  return html(errorPage('Invalid request', 'Unknown form action.'), 400);
}

async function currentUserFromToken(env: Env, db: DB, token: string): Promise<Principal | null> {
  const r = await authenticate(env, db, `Bearer ${token}`, env.ISSUER, () => {});
  return r.ok ? r.principal : null;
}
