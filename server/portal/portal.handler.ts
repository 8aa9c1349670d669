import { signInWithPassword, startSession, throttledMessage } from '../accounts/sign-in';
import { insertAuditEvent } from '../audit/audit.store';
import { authenticate } from '../auth/authenticate';
import { sha256Hex } from '../crypto/hash';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { verifyAccessAssertion } from '../oauth/cf-access';
import { cookieName, readCookie, setCookie } from '../oauth/cookies';
import { sign, verify } from '../oauth/csrf';
import { esc, PAGE_HEADERS, page } from '../oauth/pages';
import { updateSessionRevoked } from '../sessions/sessions.store';
import { nowIso } from '../lib/time';

/**
 * The dashboard's sign-in: /portal/login (built-in accounts, or Cloudflare Access when its assertion is
 * present), a session cookie (`__Host-`, HttpOnly, SameSite=Lax) and a CSRF token the page hands the
 * dashboard's script. /rpc accepts the cookie in place of a bearer token only with that token in
 * `x-csrf-token`, so another site can never make a signed-in browser call the API.
 */
export const PORTAL_COOKIE = 'chitty_portal';
const NONCE_COOKIE = 'chitty_portal_login';
const FORM_TTL_S = 600;

const html = (body: string, status = 200, headers: Record<string, string> = {}) => new Response(body, { status, headers: { ...PAGE_HEADERS, ...headers } });

const redirect = (location: string, headers: Record<string, string> = {}) => new Response(null, { status: 303, headers: { location, 'cache-control': 'no-store', ...headers } });

/** The CSRF token for a cookie session: bound to the cookie's value, so it is useless without the cookie. */
export async function portalCsrfToken(env: Env, cookie: string): Promise<string> {
  return sign(env.ENCRYPTION_KEY, 'portal-csrf', await sha256Hex(cookie), {}, 12 * 3600);
}

/**
 * For /rpc: the bearer credential carried by the portal cookie, when the request proves it comes from
 * the dashboard (x-csrf-token). Null when there is no cookie; 'forbidden' when the token is missing or wrong.
 */
export async function portalCredential(request: Request, env: Env): Promise<string | null | 'forbidden'> {
  const url = new URL(request.url);
  const cookie = readCookie(request, cookieName(env, url, PORTAL_COOKIE));
  if (!cookie) return null;
  const ok = await verify(env.ENCRYPTION_KEY, 'portal-csrf', await sha256Hex(cookie), request.headers.get('x-csrf-token'));
  return ok ? `Bearer ${cookie}` : 'forbidden';
}

/** Where to go after signing in: a path of ours that asked for sign-in (the gateway's connect page), else the dashboard. */
export const safeReturn = (value: string | null) => (value && /^\/gw\/[a-z0-9-]+\/connect$/.test(value) ? value : '/portal');

function loginPage(o: { csrf: string; error?: string; username?: string; access: boolean; returnTo: string }) {
  return page(
    'Sign in',
    `<h1>ChittyAuth portal</h1>
<p class="muted">Sign in to manage MCP servers, tokens, sessions and access.</p>
${o.error ? `<p class="error" role="alert">${esc(o.error)}</p>` : ''}
<form method="post" action="/portal/login">
<input type="hidden" name="csrf_token" value="${esc(o.csrf)}">
<input type="hidden" name="return" value="${esc(o.returnTo)}">
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" required autofocus value="${esc(o.username ?? '')}">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="actions"><button class="primary" type="submit">Sign in</button></div>
</form>
${o.access ? '<p class="muted">Behind Cloudflare Access you are signed in automatically.</p>' : ''}`,
  );
}

function shell(csrf: string, me: { chitty_id: string; username: string }) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ChittyAuth portal</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/portal/app.css">
<meta name="chittyauth-csrf" content="${esc(csrf)}"><meta name="chittyauth-user" content="${esc(JSON.stringify(me))}"></head>
<body><div id="app" aria-live="polite"><p class="loading">Loading…</p></div><script type="module" src="/portal/app.js"></script></body></html>`;
}

export async function signedIn(env: Env, db: DB, request: Request) {
  const url = new URL(request.url);
  const cookie = readCookie(request, cookieName(env, url, PORTAL_COOKIE));
  if (!cookie) return null;
  const r = await authenticate(env, db, `Bearer ${cookie}`, env.ISSUER, () => {});
  return r.ok && r.principal.sessionId ? { cookie, principal: r.principal } : null;
}

export async function handlePortal(request: Request, env: Env, db: DB): Promise<Response | null> {
  const url = new URL(request.url);
  const shellHeaders = { 'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'" };

  if (url.pathname === '/portal' || url.pathname === '/portal/') {
    let session = await signedIn(env, db, request);
    let setSession: Record<string, string> = {};
    if (!session) {
      // Behind Cloudflare Access the assertion signs the person in without a form.
      const access = await verifyAccessAssertion(env, request.headers.get('cf-access-jwt-assertion'));
      const account = access.ok ? await db.selectFrom('accounts').select('chitty_id').where('username', '=', access.email).executeTakeFirst() : undefined;
      if (!account) return redirect('/portal/login');
      const s = await startSession(env, db, account.chitty_id, { client: 'portal', deviceName: 'Portal (Cloudflare Access)', userAgent: request.headers.get('user-agent') });
      setSession = { 'set-cookie': setCookie(env, url, PORTAL_COOKIE, s.token, s.expiresIn) };
      session = await signedIn(env, db, new Request(request, { headers: { cookie: `${cookieName(env, url, PORTAL_COOKIE)}=${s.token}` } }));
      if (!session) return redirect('/portal/login');
    }
    const username = (await db.selectFrom('accounts').select('username').where('chitty_id', '=', session.principal.chittyId).executeTakeFirst())?.username ?? session.principal.chittyId;
    return new Response(shell(await portalCsrfToken(env, session.cookie), { chitty_id: session.principal.chittyId, username }), {
      headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer', ...shellHeaders, ...setSession },
    });
  }

  if (url.pathname === '/portal/login') {
    const nonce = readCookie(request, cookieName(env, url, NONCE_COOKIE)) ?? crypto.randomUUID();
    const nonceCookie = setCookie(env, url, NONCE_COOKIE, nonce, FORM_TTL_S);
    const access = !!env.CF_ACCESS_TEAM_DOMAIN;
    if (request.method === 'GET') return html(loginPage({ csrf: await sign(env.ENCRYPTION_KEY, 'portal-login', nonce, {}, FORM_TTL_S), access, returnTo: safeReturn(url.searchParams.get('return')) }), 200, { 'set-cookie': nonceCookie });
    if (request.method !== 'POST') return html(page('Method not allowed', '<p>Use GET or POST.</p>'), 405);
    const form = new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer()));
    if (!(await verify(env.ENCRYPTION_KEY, 'portal-login', nonce, form.get('csrf_token')))) {
      return html(page('Invalid form', '<p class="error" role="alert">The form expired or was tampered with (CSRF check failed). <a href="/portal/login">Try again</a>.</p>'), 403);
    }
    const username = (form.get('username') ?? '').slice(0, 64);
    const result = await signInWithPassword(env, db, { username, password: (form.get('password') ?? '').slice(0, 256), client: 'portal', deviceName: 'Portal', userAgent: request.headers.get('user-agent'), ip: request.headers.get('cf-connecting-ip') });
    await insertAuditEvent(db, { actor: result.chittyId ?? 'anonymous', action: 'portal.login', target: result.chittyId, door: 'oauth', outcome: result.ok ? 'success' : 'failure', detail: { username } });
    if (!result.ok) {
      const throttled = result.reason === 'throttled';
      const message = throttled ? throttledMessage(result.retryAfter) : 'Wrong username or password.';
      return html(loginPage({ csrf: await sign(env.ENCRYPTION_KEY, 'portal-login', nonce, {}, FORM_TTL_S), error: message, username, access, returnTo: safeReturn(form.get('return')) }), throttled ? 429 : 401, { 'set-cookie': nonceCookie, ...(throttled ? { 'retry-after': String(result.retryAfter) } : {}) });
    }
    return redirect(safeReturn(form.get('return')), { 'set-cookie': setCookie(env, url, PORTAL_COOKIE, result.token, result.expiresIn) });
  }

  if (url.pathname === '/portal/logout' && request.method === 'POST') {
    const session = await signedIn(env, db, request);
    if (session) {
      const form = new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer()));
      if (!(await verify(env.ENCRYPTION_KEY, 'portal-csrf', await sha256Hex(session.cookie), form.get('csrf_token')))) return html(page('Invalid form', '<p class="error">CSRF check failed.</p>'), 403);
      await updateSessionRevoked(db, session.principal.sessionId!, nowIso());
    }
    return redirect('/portal/login', { 'set-cookie': setCookie(env, url, PORTAL_COOKIE, '', 0) });
  }
  return null;
}
