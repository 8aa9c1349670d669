import { SELF } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, auditHead, auditSince, count, direct, mcp, ORIGIN, rest, type Caller } from '../../test/workers/helpers';
import { authorizeAsBrowser, authorizeUrl, Browser, field, MCP_RESOURCE, pkcePair, REDIRECT, registerClient, token } from '../../test/workers/oauth-helpers';

/**
 * /oauth/authorize: request validation (OAuth 2.1 §4.1.1, RFC 8707, RFC 9207), redirect URI matching, and the
 * login and consent forms (CSRF, framing, cookies, remembered consent).
 */
const HTTPS_REDIRECT = 'https://app.example/callback';

let root: Caller;
let clientId: string;
/** Signed in as the admin once; reused so that only one test pays for the password hash. */
const signedIn = new Browser();
let signingIn: Promise<unknown> | undefined;
const signIn = () => (signingIn ??= authorizeAsBrowser({ clientId, scope: 'mcp:read', browser: signedIn }));

beforeAll(async () => {
  root = await admin();
  clientId = (await registerClient({ redirect_uris: [REDIRECT, HTTPS_REDIRECT] })).body.client_id;
});

async function request(over: Record<string, string | undefined> = {}, client = clientId) {
  const { verifier, challenge } = await pkcePair();
  const params = { response_type: 'code', client_id: client, redirect_uri: REDIRECT, scope: 'mcp:read', state: 'state-123', code_challenge: challenge, code_challenge_method: 'S256', resource: MCP_RESOURCE, ...over };
  return { url: authorizeUrl(params), verifier };
}

/** The Set-Cookie headers of a response, one per cookie. */
const setCookies = (res: { headers: Headers }) => (res.headers as unknown as { getSetCookie(): string[] }).getSetCookie();

const codesAndGrants = async () => [await count('oauth_codes'), await count('oauth_grants')];

function expectNoRedirect(res: Response) {
  expect(res.status).toBe(400);
  expect(res.headers.get('location')).toBeNull();
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
}

/** A CSRF token (`payload.expiry.mac`) with one character of its MAC changed. */
function tamper(t: string) {
  const i = t.length - 10;
  return `${t.slice(0, i)}${t[i] === 'A' ? 'B' : 'A'}${t.slice(i + 1)}`;
}

describe('/oauth/authorize', () => {
  it.each([
    ['the client is unknown', { client_id: 'cli_00000000000000000000000000' }],
    ['client_id is missing', { client_id: undefined }],
    ['the redirect_uri is not registered', { redirect_uri: 'https://evil.example/callback' }],
    ['the redirect_uri has an extra query', { redirect_uri: `${HTTPS_REDIRECT}?next=https://evil.example` }],
    ['the redirect_uri has another path', { redirect_uri: `${HTTPS_REDIRECT}/../evil` }],
    ['the redirect_uri is a suffix-extended host', { redirect_uri: 'https://app.example.evil.example/callback' }],
    ['the redirect_uri has a fragment', { redirect_uri: `${HTTPS_REDIRECT}#x` }],
    ['the loopback redirect_uri has another path', { redirect_uri: 'http://127.0.0.1:33418/other' }],
    ['the loopback redirect_uri names localhost instead of 127.0.0.1', { redirect_uri: 'http://localhost:33418/callback' }],
    ['the loopback redirect_uri uses https instead of http', { redirect_uri: 'https://127.0.0.1:33418/callback' }],
  ])('shows an error page and redirects nowhere when %s', async (_, over) => {
    const before = await codesAndGrants();
    const res = await SELF.fetch((await request(over)).url, { redirect: 'manual' });
    expectNoRedirect(res);
    expect(await res.text()).toMatch(/<h1>(Unknown application|Invalid redirect|Invalid request)<\/h1>/);
    expect(await codesAndGrants()).toEqual(before);
  });

  it('accepts a loopback redirect_uri on another port (RFC 8252 §7.3) and redirects to that port', async () => {
    const other = 'http://127.0.0.1:51234/callback';
    const flow = await authorizeAsBrowser({ clientId, scope: 'mcp:read', redirectUri: other, browser: signedIn });
    expect(flow.redirect!.origin + flow.redirect!.pathname).toBe(other);
    const t = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: clientId, redirect_uri: other });
    expect(t.status).toBe(200);
  });

  it.each([
    ['code_challenge is missing', { code_challenge: undefined }, 'invalid_request'],
    ['code_challenge_method is plain', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['code_challenge_method is missing', { code_challenge_method: undefined }, 'invalid_request'],
    ['code_challenge is not a SHA-256 value', { code_challenge: 'short' }, 'invalid_request'],
    ['response_type is token', { response_type: 'token' }, 'unsupported_response_type'],
    ['response_type is missing', { response_type: undefined }, 'unsupported_response_type'],
    ['resource has a fragment', { resource: `${MCP_RESOURCE}#frag` }, 'invalid_target'],
    ['resource is not served here', { resource: 'https://other.example/mcp' }, 'invalid_target'],
    ['resource is not an absolute URL', { resource: '/mcp' }, 'invalid_target'],
    ['scope is unknown', { scope: 'mcp:read admin:everything' }, 'invalid_scope'],
  ])('redirects with error, iss once and state, and issues nothing, when %s', async (_, over, error) => {
    const before = await codesAndGrants();
    const res = await SELF.fetch((await request(over)).url, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location')!);
    expect(location.origin + location.pathname).toBe(REDIRECT);
    expect(location.searchParams.get('error')).toBe(error);
    expect(location.searchParams.get('error_description')).toBeTruthy();
    // RFC 9207 §2: iss on every authorization response, errors included, exactly once.
    expect(location.searchParams.getAll('iss')).toEqual([ORIGIN]);
    expect(location.searchParams.getAll('state')).toEqual(['state-123']);
    expect(location.searchParams.has('code')).toBe(false);
    expect(await codesAndGrants()).toEqual(before);
  });

  it('redirects access_denied with iss and state when the user denies, and grants nothing', async () => {
    const fresh = (await registerClient()).body.client_id as string;
    const before = await codesAndGrants();
    const flow = await authorizeAsBrowser({ clientId: fresh, decision: 'deny', browser: signedIn });
    expect(flow.res.status).toBe(303);
    expect(flow.redirect!.searchParams.get('error')).toBe('access_denied');
    expect(flow.redirect!.searchParams.getAll('iss')).toEqual([ORIGIN]);
    expect(flow.redirect!.searchParams.get('state')).toBe(flow.state);
    expect(await codesAndGrants()).toEqual(before);
  });

  it('sends the framing headers on the login page, the consent page and the error page', async () => {
    const pages = [
      await SELF.fetch((await request()).url, { redirect: 'manual' }),
      await (async () => {
        await signIn();
        return signedIn.fetch((await request({}, (await registerClient()).body.client_id)).url);
      })(),
      await SELF.fetch((await request({ client_id: 'cli_00000000000000000000000000' })).url, { redirect: 'manual' }),
    ];
    const [login, consent] = await Promise.all(pages.slice(0, 2).map((r) => r.clone().text()));
    expect(login).toContain('name="password"');
    expect(consent).toContain('value="approve"');
    for (const res of pages) {
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('sets __Host- cookies that are Secure, HttpOnly and SameSite=Lax outside development', async () => {
    const browser = new Browser();
    const page = await browser.fetch((await request()).url);
    const html = await page.text();
    const login = await browser.post(`${ORIGIN}/oauth/authorize`, { csrf_token: field(html, 'csrf_token')!, request: field(html, 'request')!, username: 'admin', password: 'correct horse battery staple', action: 'login' });
    const cookies = [...setCookies(page), ...setCookies(login)];
    expect(cookies.map((c) => c.split('=')[0])).toEqual(['__Host-chitty_login', '__Host-chitty_session']);
    for (const c of cookies) {
      const attributes = c.split(';').slice(1).map((a) => a.trim().toLowerCase());
      expect(attributes).toEqual(expect.arrayContaining(['path=/', 'httponly', 'samesite=lax', 'secure']));
      // __Host- cookies may not name a Domain.
      expect(attributes.some((a) => a.startsWith('domain='))).toBe(false);
    }
  });

  it('keeps the browser signed in when a remembered consent redirects straight after the login', async () => {
    await signIn(); // the admin has approved mcp:read for clientId
    const browser = new Browser();
    const html = await (await browser.fetch((await request()).url)).text();
    const login = await browser.post(`${ORIGIN}/oauth/authorize`, { csrf_token: field(html, 'csrf_token')!, request: field(html, 'request')!, username: 'admin', password: 'correct horse battery staple', action: 'login' });
    expect(login.status).toBe(303);
    expect(new URL(login.headers.get('location')!).searchParams.get('code')).toBeTruthy();
    expect(setCookies(login).map((c) => c.split('=')[0])).toEqual(['__Host-chitty_session']);
    const again = await browser.fetch((await request()).url);
    expect(again.status).toBe(303);
  });

  it('drops the __Host- prefix and Secure only in development over plain http', async () => {
    const url = new URL((await request()).url);
    const res = await direct('GET', url.pathname + url.search, undefined, undefined, { ENVIRONMENT: 'development' });
    const cookie = setCookies(res)[0]!;
    expect(cookie).toMatch(/^chitty_login=/);
    expect(cookie).not.toMatch(/Secure/i);
    expect(cookie).toMatch(/HttpOnly; SameSite=Lax/);
  });

  it('re-renders the login form with 401 and starts no session when the password is wrong', async () => {
    const browser = new Browser();
    const html = await (await browser.fetch((await request()).url)).text();
    const sessions = await count('sessions');
    const seq = await auditHead();
    const res = await browser.post(`${ORIGIN}/oauth/authorize`, { csrf_token: field(html, 'csrf_token')!, request: field(html, 'request')!, username: 'admin', password: 'wrong password', action: 'login' });
    expect(res.status).toBe(401);
    const page = await res.text();
    expect(page).toContain('Wrong username or password.');
    expect(page).toContain('name="password"');
    expect(setCookies(res)).toEqual([]);
    expect(await count('sessions')).toBe(sessions);
    const events = await auditSince(seq);
    expect(events.map((e) => [e.action, e.outcome])).toEqual([['oauth.login', 'failure']]);
    expect(events[0]!.detail).not.toContain('wrong password');
  });

  it.each([
    ['altered', (csrf: string) => tamper(csrf)],
    ['missing', () => ''],
    ['issued to another browser', async () => field(await (await new Browser().fetch((await request()).url)).text(), 'csrf_token')!],
  ])('refuses the login form with 403 and starts no session when its CSRF token is %s', async (_, make) => {
    const browser = new Browser();
    const html = await (await browser.fetch((await request()).url)).text();
    const sessions = await count('sessions');
    const res = await browser.post(`${ORIGIN}/oauth/authorize`, { csrf_token: await make(field(html, 'csrf_token')!), request: field(html, 'request')!, username: 'admin', password: 'correct horse battery staple', action: 'login' });
    expect(res.status).toBe(403);
    expect(setCookies(res)).toEqual([]);
    expect(await count('sessions')).toBe(sessions);
  });

  it.each([
    ['altered', (csrf: string) => tamper(csrf)],
    ['missing', () => ''],
  ])('refuses the consent form with 403 and grants nothing when its CSRF token is %s', async (_, make) => {
    await signIn();
    const fresh = (await registerClient()).body.client_id as string;
    const html = await (await signedIn.fetch((await request({}, fresh)).url)).text();
    expect(html).toContain('value="approve"');
    const before = [...(await codesAndGrants()), await count('oauth_consents')];
    const res = await signedIn.post(`${ORIGIN}/oauth/authorize`, { csrf_token: make(field(html, 'csrf_token')!), request: field(html, 'request')!, action: 'approve' });
    expect(res.status).toBe(403);
    expect(res.headers.get('location')).toBeNull();
    expect([...(await codesAndGrants()), await count('oauth_consents')]).toEqual(before);
  });

  it('refuses the consent form with 403 when it is posted without the session it was issued to', async () => {
    await signIn();
    const fresh = (await registerClient()).body.client_id as string;
    const html = await (await signedIn.fetch((await request({}, fresh)).url)).text();
    const before = await codesAndGrants();
    const res = await new Browser().post(`${ORIGIN}/oauth/authorize`, { csrf_token: field(html, 'csrf_token')!, request: field(html, 'request')!, action: 'approve' });
    expect(res.status).toBe(403);
    expect(await codesAndGrants()).toEqual(before);
  });

  it('skips the consent page once approved, and asks again after the grant is revoked', async () => {
    const fresh = (await registerClient()).body.client_id as string;
    const first = await authorizeAsBrowser({ clientId: fresh, scope: 'mcp:read', browser: signedIn });
    expect(first.html).toContain('value="approve"');
    expect(first.code).toBeTruthy();
    const t = await token({ grant_type: 'authorization_code', code: first.code!, code_verifier: first.verifier, client_id: fresh, redirect_uri: REDIRECT });
    expect(t.status).toBe(200);

    const second = await signedIn.fetch((await request({}, fresh)).url);
    expect(second.status).toBe(303);
    expect(new URL(second.headers.get('location')!).searchParams.get('code')).toBeTruthy();

    const grantId = decodeJwt(t.body.access_token).gid as string;
    const revoked = await rest('DELETE', `/v1/oauth/grants/${grantId}`, undefined, root.token);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).toBeTruthy();
    expect(await count('oauth_consents', 'client_id = ?', fresh)).toBe(0);
    expect((await mcp('tools/list', {}, t.body.access_token)).status).toBe(401);

    const third = await signedIn.fetch((await request({}, fresh)).url);
    expect(third.status).toBe(200);
    expect(await third.text()).toContain('value="approve"');
  });

  it('asks for consent again when more scope is requested than was approved', async () => {
    const fresh = (await registerClient()).body.client_id as string;
    await authorizeAsBrowser({ clientId: fresh, scope: 'mcp:read', browser: signedIn });
    const wider = await signedIn.fetch((await request({ scope: 'mcp:read mcp:write' }, fresh)).url);
    expect(wider.status).toBe(200);
    expect(await wider.text()).toContain('value="approve"');
  });
});
