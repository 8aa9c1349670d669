/**
 * A scripted user agent for /oauth/authorize, for end-to-end tests of OAuth clients (the MCP SDK,
 * oauth4webapi): it does what a browser does with the login and consent pages — GET the authorization
 * URL, submit the login form, submit the consent form — keeping cookies, and stops at the redirect back
 * to the client, returning its Location. Nothing listens on the redirect URI; only the URL is read.
 */
import { expect } from 'vitest';

export interface User {
  username: string;
  password: string;
}

export interface BrowserTrip {
  /** The Location of the final 303 redirect to the client's redirect URI. */
  location: URL;
  /** The status of each step: GET authorize, POST login, POST consent. */
  statuses: number[];
  /** Cookies the server set during the trip, as `name=value; attributes`. */
  setCookies: string[];
}

const unescapeHtml = (s: string) =>
  s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!);

/** The form of an HTML page: its action and hidden fields (our pages have one form each). */
export function parseForm(html: string): { action: string; fields: Record<string, string> } {
  const form = /<form\b[^>]*\baction="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) throw new Error(`no form in the page:\n${html.slice(0, 2000)}`);
  const fields: Record<string, string> = {};
  for (const input of form[2]!.matchAll(/<input\b[^>]*>/gi)) {
    const tag = input[0];
    const type = /\btype="([^"]*)"/i.exec(tag)?.[1];
    const name = /\bname="([^"]*)"/i.exec(tag)?.[1];
    const value = /\bvalue="([^"]*)"/i.exec(tag)?.[1];
    if (type === 'hidden' && name) fields[name] = unescapeHtml(value ?? '');
  }
  return { action: unescapeHtml(form[1]!), fields };
}

/** A minimal cookie jar: name → value, from Set-Cookie headers (attributes are kept for assertions only). */
class CookieJar {
  private readonly jar = new Map<string, string>();
  readonly seen: string[] = [];

  take(res: Response) {
    for (const c of res.headers.getSetCookie()) {
      this.seen.push(c);
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      if (i > 0) this.jar.set(pair!.slice(0, i).trim(), pair!.slice(i + 1).trim());
    }
  }

  header(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

async function step(jar: CookieJar, url: string, init: RequestInit & { body?: URLSearchParams } = {}): Promise<Response> {
  const res = await fetch(url, {
    ...init,
    redirect: 'manual',
    headers: { accept: 'text/html', ...(jar.header() ? { cookie: jar.header() } : {}), ...(init.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    signal: AbortSignal.timeout(30_000),
  });
  jar.take(res);
  return res;
}

/**
 * Signs in as `user` on the login page and answers the consent page with `decision`; resolves with the
 * redirect back to the client. Each page must be what a browser expects (200 HTML), or the trip fails
 * with the page's text.
 */
export async function authorizeAsBrowser(authorizationUrl: URL | string, user: User, decision: 'approve' | 'deny' = 'approve'): Promise<BrowserTrip> {
  const jar = new CookieJar();
  const statuses: number[] = [];
  const page = async (res: Response, what: string) => {
    statuses.push(res.status);
    const text = await res.text();
    expect(res.status, `${what}: ${text.slice(0, 1000)}`).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    return text;
  };

  const login = parseForm(await page(await step(jar, String(authorizationUrl)), 'GET the authorization URL (login page)'));
  const consentRes = await step(jar, login.action, {
    method: 'POST',
    body: new URLSearchParams({ ...login.fields, username: user.username, password: user.password, action: 'login' }),
  });
  const consent = parseForm(await page(consentRes, 'POST the login form (consent page)'));
  expect(Object.keys(consent.fields).sort()).toEqual(['csrf_token', 'request']);

  const back = await step(jar, consent.action, { method: 'POST', body: new URLSearchParams({ ...consent.fields, action: decision }) });
  statuses.push(back.status);
  await back.body?.cancel();
  expect(back.status, 'the consent form answers with a 303 redirect').toBe(303);
  const location = back.headers.get('location');
  expect(location, 'the redirect has a Location').toBeTruthy();
  return { location: new URL(location!), statuses, setCookies: jar.seen };
}
