/**
 * Pieces the gateway's end-to-end tests share: a scripted browser that follows redirects and keeps cookies
 * per origin (for ChittyAuth's portal sign-in, the connect page, and the upstream's consent page). The MCP SDK
 * client's OAuth provider is mcp-oauth.ts's ScriptedOAuthProvider.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Agent } from 'undici';
import { expect } from 'vitest';
import { parseForm, type User } from './oauth-forms';

export interface Visit {
  url: string;
  status: number;
}

/** A browser: follows redirects, keeps cookies per origin, submits forms. `fetchImpl` may route hosts. */
export class ScriptedBrowser {
  private readonly jars = new Map<string, Map<string, string>>();
  readonly visits: Visit[] = [];

  constructor(private readonly fetchImpl: typeof fetch = fetch) {}

  private cookieHeader(origin: string) {
    return [...(this.jars.get(origin) ?? new Map())].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private take(origin: string, res: Response) {
    const jar = this.jars.get(origin) ?? new Map<string, string>();
    this.jars.set(origin, jar);
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      if (i > 0) jar.set(pair!.slice(0, i).trim(), pair!.slice(i + 1).trim());
    }
  }

  /** One request and every redirect after it (GET after 302/303, as browsers do); resolves with the last page. */
  async go(url: string, form?: Record<string, string>): Promise<{ url: string; status: number; html: string }> {
    let current = url;
    let body: URLSearchParams | undefined = form ? new URLSearchParams(form) : undefined;
    for (let hop = 0; hop < 10; hop++) {
      const origin = new URL(current).origin;
      const cookie = this.cookieHeader(origin);
      const res = await this.fetchImpl(current, {
        method: body ? 'POST' : 'GET',
        redirect: 'manual',
        headers: { accept: 'text/html', ...(cookie ? { cookie } : {}), ...(body ? { 'content-type': 'application/x-www-form-urlencoded', origin } : {}) },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      this.take(origin, res);
      this.visits.push({ url: current, status: res.status });
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        current = new URL(location, current).toString();
        body = undefined;
        continue;
      }
      return { url: current, status: res.status, html: await res.text() };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  /** Submits the page's form (its hidden fields plus `extra`) as a browser would. */
  async submit(page: { url: string; html: string }, extra: Record<string, string>) {
    const form = parseForm(page.html);
    return this.go(new URL(form.action, page.url).toString(), { ...form.fields, ...extra });
  }
}

/**
 * The person's journey to connect an upstream: open /gw/{id}/connect (sign in to the portal on the way),
 * approve, approve again on the upstream's consent page, and land on /gw/callback.
 */
export async function connectThroughBrowser(browser: ScriptedBrowser, connectUrl: string, user: User) {
  let page = await browser.go(connectUrl);
  if (new URL(page.url).pathname === '/portal/login') {
    expect(page.status).toBe(200);
    page = await browser.submit(page, { username: user.username, password: user.password });
  }
  expect(page.url, page.html.slice(0, 500)).toBe(connectUrl);
  expect(page.html).toContain('Connect');
  const consent = await browser.submit(page, { action: 'approve' });
  expect(consent.status, consent.html.slice(0, 500)).toBe(200);
  expect(consent.html).toContain('Upstream consent');
  const done = await browser.submit(consent, { action: 'approve' });
  return done;
}

/** The claims of a JWT, or null when the string is not one. */
export function jwtClaims(token: string): Record<string, unknown> | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    return JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}

/**
 * A fetch for which names under `domain` resolve to 127.0.0.1 (where wrangler dev listens), as real DNS would
 * for a gateway domain; other names resolve as usual. Requests keep the encoded Host. `close()` when done.
 */
export function loopbackFetch(domain: string): { fetch: typeof fetch; close(): Promise<void> } {
  const agent = new Agent({
    connect: {
      lookup: ((hostname: string, options: { all?: boolean }, callback: (e: Error | null, a: string | LookupAddress[], f?: number) => void) => {
        if (!hostname.endsWith(`.${domain}`)) return dnsLookup(hostname, options as never, callback as never);
        return options?.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4);
      }) as never,
    },
  });
  return { fetch: (input, init) => fetch(input, { ...init, dispatcher: agent } as RequestInit), close: () => agent.close() };
}
