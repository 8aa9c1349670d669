/**
 * The login and consent pages of /oauth/authorize in a real browser (Debian's Chromium driven by
 * playwright-core) against a real `wrangler dev`: keyboard-only sign-in, what the consent page shows,
 * the security headers and cookies, and where Deny and Approve send the browser. The redirect URI is a
 * loopback listener of this test (as a native app's, RFC 8252 §7.3) that answers with a small page.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { assertChromium, launchChromium } from '../helpers/browser';
import { type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';

const RESULTS = join(process.cwd(), 'test-results');
const CLIENT_NAME = 'Pages E2E App';
const SCOPE = 'mcp:read mcp:write';

let server: TestServer;
let user: Caller;
let browser: Browser | undefined;
let redirectUri: string;
let redirectOrigin: string;
let clientId: string;
let callbackServer: Server | undefined;
/** Every request that reached the redirect URI's listener, as a full URL. */
const callbacks: string[] = [];

/** One browser context per case (fresh cookies), with every request outside the two origins blocked. */
interface Session {
  context: BrowserContext;
  page: Page;
  /** Requests to any origin other than the server and the redirect URI (blocked; must stay empty). */
  foreign: string[];
  /** Same-origin or redirect-origin requests that failed at the network level. */
  failed: string[];
  pageErrors: string[];
}

async function openSession(): Promise<Session> {
  const context = await browser!.newContext({ viewport: { width: 1000, height: 800 } });
  const session: Session = { context, page: await context.newPage(), foreign: [], failed: [], pageErrors: [] };
  // Playwright does not route a request that follows a redirect, so the 303 to the redirect URI cannot be
  // answered here: the test's own listener answers it (and would see nothing if the browser went elsewhere).
  await context.route('**/*', (route) => {
    const url = route.request().url();
    const origin = /^(https?|wss?):/i.test(url) ? new URL(url).origin : null;
    if (origin !== null && origin !== server.url && origin !== redirectOrigin) {
      session.foreign.push(`${route.request().method()} ${url}`);
      return route.abort('blockedbyclient');
    }
    return route.continue();
  });
  // A Content-Security-Policy violation is blocked before the network, where route() would not see it.
  await context.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  session.page.on('pageerror', (error) => session.pageErrors.push(String(error)));
  session.page.on('requestfailed', (r) => {
    if (r.failure()?.errorText !== 'net::ERR_BLOCKED_BY_CLIENT') session.failed.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
  });
  return session;
}

/** A fresh PKCE pair and state, and the authorization URL for our registered client. */
function authorizationRequest() {
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const url = new URL(`${server.url}/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: SCOPE,
    state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    resource: `${server.url}/mcp`,
  }).toString();
  return { url: url.toString(), verifier, state };
}

/** The page's headers that matter here: CSP must forbid framing; every cookie set must be HttpOnly. */
async function expectPageHeaders(response: Response | null, what: string) {
  expect(response, what).not.toBeNull();
  expect(response!.status(), what).toBe(200);
  const csp = await response!.headerValue('content-security-policy');
  expect(csp, `${what}: content-security-policy`).toMatch(/(^|;)\s*frame-ancestors 'none'\s*(;|$)/);
  const cookies = (await response!.headersArray()).filter((h) => h.name.toLowerCase() === 'set-cookie').map((h) => h.value);
  expect(cookies.length, `${what}: sets a cookie`).toBeGreaterThan(0);
  for (const cookie of cookies) expect(cookie, `${what}: ${cookie}`).toMatch(/;\s*HttpOnly(;|$)/i);
}

/** Opens the login page and types the credentials with the keyboard only (not yet submitted). */
async function typeCredentials(s: Session, url: string, screenshots = false) {
  const { page } = s;
  const login = await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
  await expectPageHeaders(login, 'login page');
  await page.getByRole('heading', { name: 'Sign in to ChittyAuth' }).waitFor({ timeout: 30_000 });
  expect(await page.getByText(CLIENT_NAME).first().isVisible()).toBe(true);
  if (screenshots) await page.screenshot({ path: join(RESULTS, 'oauth-login.png') });

  // autofocus puts the caret in the username field.
  expect(await page.evaluate(() => document.activeElement?.id)).toBe('username');
  await page.keyboard.type(user.username);
  await page.keyboard.press('Tab');
  expect(await page.evaluate(() => document.activeElement?.id)).toBe('password');
  await page.keyboard.type(user.password);
}

/** Signs in with the keyboard (Enter submits) and waits for the consent page. */
async function signInWithKeyboard(s: Session, url: string, screenshots = false) {
  const { page } = s;
  await typeCredentials(s, url, screenshots);
  const [consent] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${server.url}/oauth/authorize` && r.request().method() === 'POST', { timeout: 60_000 }),
    page.keyboard.press('Enter'),
  ]);
  await page.getByRole('button', { name: 'Approve' }).waitFor({ timeout: 30_000 });
  await expectPageHeaders(consent, 'consent page');
  if (screenshots) await page.screenshot({ path: join(RESULTS, 'oauth-consent.png') });
}

/** Submits a form with `press` and waits until the browser has arrived at the redirect URI. */
async function arriveAtClient(s: Session, press: () => Promise<void>): Promise<URL> {
  await Promise.all([s.page.waitForURL((u) => u.origin === redirectOrigin, { timeout: 60_000, waitUntil: 'load' }), press()]);
  return new URL(s.page.url());
}

async function expectClean(s: Session) {
  const csp = await s.page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
  expect(csp, 'Content-Security-Policy violations').toEqual([]);
  expect(s.foreign, 'requests to other origins').toEqual([]);
  expect(s.failed, 'failed requests').toEqual([]);
  expect(s.pageErrors, 'page errors').toEqual([]);
}

beforeAll(async () => {
    assertChromium();
  mkdirSync(RESULTS, { recursive: true });
  server = await startTestServer();
  user = await server.account(['user']);
  callbackServer = createServer((req, res) => {
    callbacks.push(`${redirectOrigin}${req.url}`);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end('<!doctype html><html lang="en"><title>Callback</title><p>Back in the application.</p></html>');
  });
  await new Promise<void>((resolve, reject) => {
    callbackServer!.once('error', reject);
    callbackServer!.listen(0, '127.0.0.1', resolve);
  });
  redirectUri = `http://127.0.0.1:${(callbackServer.address() as AddressInfo).port}/callback`;
  redirectOrigin = new URL(redirectUri).origin;

  const registered = await server.rest('POST', '/oauth/register', {
    client_name: CLIENT_NAME,
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  });
  expect(registered.status, JSON.stringify(registered.body)).toBe(201);
  clientId = registered.body.client_id;

  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close().catch(() => {});
  callbackServer?.closeAllConnections();
  await new Promise((resolve) => (callbackServer ? callbackServer.close(resolve) : resolve(undefined)));
  await server?.stop();
});

describe('/oauth/authorize pages in Chromium', () => {
  it('signs in with the keyboard, shows the consent page, and Deny returns access_denied with state and iss', async () => {
    const s = await openSession();
    try {
      const { url, state } = authorizationRequest();
      await signInWithKeyboard(s, url, true);
      const { page } = s;

      // The consent page names the client, the scopes, where the browser will go, and warns about localhost.
      expect(await page.getByRole('heading', { name: `Authorize ${CLIENT_NAME}` }).isVisible()).toBe(true);
      const text = await page.locator('main').innerText();
      expect(text).toContain(`${CLIENT_NAME} wants to access ChittyAuth as ${user.username}`);
      expect(text).toContain('mcp:read');
      expect(text).toContain('mcp:write');
      expect(text).toContain(`You will be sent back to ${new URL(redirectUri).host}`);
      expect(await page.getByRole('note').innerText()).toMatch(/runs on your own computer \(it redirects to localhost\)/);

      // Both cookies are in the browser, HttpOnly (no __Host- prefix: development over plain http).
      const cookies = await s.context.cookies(server.url);
      expect(cookies.map((c) => c.name).sort()).toEqual(['chitty_login', 'chitty_session']);
      for (const c of cookies) expect(c, c.name).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });

      // Keyboard: the first Tab reaches Deny (before Approve in the form), Enter submits it.
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => (document.activeElement as HTMLButtonElement | null)?.value)).toBe('deny');
      const back = await arriveAtClient(s, () => page.keyboard.press('Enter'));

      expect(`${back.origin}${back.pathname}`).toBe(redirectUri);
      expect(back.searchParams.get('error')).toBe('access_denied');
      expect(back.searchParams.getAll('state')).toEqual([state]);
      expect(back.searchParams.getAll('iss')).toEqual([server.url]);
      expect(back.searchParams.has('code')).toBe(false);
      expect(callbacks).toContain(back.toString());
      expect(await page.getByText('Back in the application.').isVisible()).toBe(true);
      await expectClean(s);
    } finally {
      await s.context.close();
    }
  });

  it('Approve returns a code (with state and iss) that the token endpoint exchanges', async () => {
    const s = await openSession();
    try {
      const { url, state, verifier } = authorizationRequest();
      await signInWithKeyboard(s, url);
      const back = await arriveAtClient(s, () => s.page.getByRole('button', { name: 'Approve' }).click());

      expect(`${back.origin}${back.pathname}`).toBe(redirectUri);
      expect(back.searchParams.has('error')).toBe(false);
      expect(back.searchParams.getAll('state')).toEqual([state]);
      expect(back.searchParams.getAll('iss')).toEqual([server.url]);
      const code = back.searchParams.get('code');
      expect(code).toBeTruthy();
      await expectClean(s);

      // The code is real: the token endpoint exchanges it (with the verifier) for a token that works at /mcp.
      const token = await fetch(`${server.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: code!, code_verifier: verifier, redirect_uri: redirectUri, client_id: clientId }),
      });
      const tokens = await token.json();
      expect(token.status, JSON.stringify(tokens)).toBe(200);
      expect(tokens.scope).toBe(SCOPE);
      const mcp = await fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
      });
      const me = await mcp.json();
      expect(mcp.status, JSON.stringify(me)).toBe(200);
      expect(me.result.structuredContent).toMatchObject({ chitty_id: user.chittyId, credential: 'access_token' });
    } finally {
      await s.context.close();
    }
  });

  it('returns straight to the client from the login form when consent was given before', async () => {
    // The Approve case above stored this user's consent for this client, resource and scopes.
    const s = await openSession();
    try {
      const { url, state } = authorizationRequest();
      await typeCredentials(s, url);
      // The login form's 303 goes to the redirect URI: the login page's CSP must let the form get there too.
      const back = await arriveAtClient(s, () => s.page.keyboard.press('Enter'));
      expect(`${back.origin}${back.pathname}`).toBe(redirectUri);
      expect(back.searchParams.get('code')).toBeTruthy();
      expect(back.searchParams.getAll('state')).toEqual([state]);
      expect(back.searchParams.getAll('iss')).toEqual([server.url]);
      await expectClean(s);
    } finally {
      await s.context.close();
    }
  });
});
