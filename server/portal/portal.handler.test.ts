import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { accessAssertion } from '../../test/workers/access';
import { ADMIN_PASSWORD, admin, ORIGIN, rest, type Caller } from '../../test/workers/helpers';
import { Browser, field } from '../../test/workers/oauth-helpers';

let root: Caller;
beforeAll(async () => {
  root = await admin();
});

async function signIn(browser = new Browser(), password = ADMIN_PASSWORD) {
  const page = await (await browser.fetch(`${ORIGIN}/portal/login`)).text();
  const res = await browser.post(`${ORIGIN}/portal/login`, { csrf_token: field(page, 'csrf_token')!, username: 'admin', password });
  return { browser, res };
}

/** workers-types has no getSetCookie on Headers yet; workerd does. */
const setCookies = (r: Response) => (r.headers as unknown as { getSetCookie(): string[] }).getSetCookie();

const meta = (html: string, name: string) => new RegExp(`<meta name="${name}" content="([^"]*)"`).exec(html)?.[1]?.replace(/&quot;/g, '"').replace(/&amp;/g, '&') ?? null;

describe('/portal', () => {
  it('sends a visitor who is not signed in to the login page', async () => {
    const res = await SELF.fetch(`${ORIGIN}/portal`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/portal/login');
  });

  it('signs in with the form and serves the dashboard shell with a CSRF token and a strict CSP', async () => {
    const { browser, res } = await signIn();
    expect(res.status).toBe(303);
    const cookie = setCookies(res).find((c) => c.includes('chitty_portal='))!;
    expect(cookie).toMatch(/^__Host-chitty_portal=/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).toMatch(/Secure/);
    const shell = await browser.fetch(`${ORIGIN}/portal`);
    expect(shell.status).toBe(200);
    expect(shell.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(shell.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await shell.text();
    expect(JSON.parse(meta(html, 'chittyauth-user')!)).toMatchObject({ chitty_id: root.chittyId, username: 'admin' });
    expect(meta(html, 'chittyauth-csrf')).toBeTruthy();
  });

  it('refuses a login form with a tampered CSRF token and starts no session', async () => {
    const browser = new Browser();
    const page = await (await browser.fetch(`${ORIGIN}/portal/login`)).text();
    const res = await browser.post(`${ORIGIN}/portal/login`, { csrf_token: `${field(page, 'csrf_token')}x`, username: 'admin', password: ADMIN_PASSWORD });
    expect(res.status).toBe(403);
    expect(setCookies(res).some((c) => c.includes('chitty_portal='))).toBe(false);
  });

  it('re-renders the form with 401 for a wrong password', async () => {
    const { res } = await signIn(new Browser(), 'not the password');
    expect(res.status).toBe(401);
    expect(await res.text()).toContain('Wrong username or password');
  });
});

describe('/rpc with the portal cookie', () => {
  it('accepts the cookie only together with the page’s x-csrf-token', async () => {
    const { browser } = await signIn();
    const html = await (await browser.fetch(`${ORIGIN}/portal`)).text();
    const csrf = meta(html, 'chittyauth-csrf')!;
    const call = (headers: Record<string, string>) =>
      browser.fetch(`${ORIGIN}/rpc/accounts/me`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ json: {} }) });
    expect((await call({})).status).toBe(403);
    expect((await call({ 'x-csrf-token': 'forged' })).status).toBe(403);
    const ok = await call({ 'x-csrf-token': csrf });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { json: { chitty_id: string } }).json.chitty_id).toBe(root.chittyId);
  });

  it('does not accept another session’s CSRF token', async () => {
    const first = await signIn();
    const csrf = meta(await (await first.browser.fetch(`${ORIGIN}/portal`)).text(), 'chittyauth-csrf')!;
    const second = await signIn();
    const res = await second.browser.fetch(`${ORIGIN}/rpc/accounts/me`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: JSON.stringify({ json: {} }) });
    expect(res.status).toBe(403);
  });

  it('ends the session on sign-out', async () => {
    const { browser } = await signIn();
    const csrf = meta(await (await browser.fetch(`${ORIGIN}/portal`)).text(), 'chittyauth-csrf')!;
    const out = await browser.post(`${ORIGIN}/portal/logout`, { csrf_token: csrf });
    expect(out.status).toBe(303);
    const again = await SELF.fetch(`${ORIGIN}/portal`, { redirect: 'manual', headers: { cookie: [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    expect(again.status).toBe(303);
  });
});

describe('/portal behind Cloudflare Access', () => {
  it('signs in the account the assertion names, without a form', async () => {
    await rest('POST', '/v1/accounts', { username: 'ada@example.com', password: 'a long enough password' }, root.token);
    const withAccess = await SELF.fetch(`${ORIGIN}/portal`, { redirect: 'manual', headers: { 'cf-access-jwt-assertion': await accessAssertion('ada@example.com') } });
    expect(withAccess.status).toBe(200);
    expect(setCookies(withAccess).some((c) => c.startsWith('__Host-chitty_portal='))).toBe(true);
    expect(JSON.parse(meta(await withAccess.text(), 'chittyauth-user')!)).toMatchObject({ username: 'ada@example.com' });
  });

  it('refuses an assertion for another application', async () => {
    const res = await SELF.fetch(`${ORIGIN}/portal`, { redirect: 'manual', headers: { 'cf-access-jwt-assertion': await accessAssertion('ada@example.com', { aud: 'other-app' }) } });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/portal/login');
  });
});
