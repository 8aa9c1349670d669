import { SELF } from 'cloudflare:test';
import { base64url } from 'jose';
import { ADMIN_PASSWORD, ORIGIN } from './helpers';

export const MCP_RESOURCE = `${ORIGIN}/mcp`;
export const REDIRECT = 'http://127.0.0.1:33418/callback';

export async function pkcePair() {
  const verifier = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return { verifier, challenge: base64url.encode(new Uint8Array(digest)) };
}

export async function registerClient(meta: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const res = await SELF.fetch(`${ORIGIN}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ client_name: 'Test MCP client', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', ...meta }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** A tiny cookie jar: what a browser would keep between the authorization pages. */
export class Browser {
  cookies = new Map<string, string>();

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await SELF.fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of (res.headers as unknown as { getSetCookie(): string[] }).getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
    return res;
  }

  post(url: string, form: Record<string, string>) {
    return this.fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
  }
}

export const field = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1]?.replace(/&amp;/g, '&').replace(/&quot;/g, '"') ?? null;

export function authorizeUrl(p: Record<string, string | undefined>) {
  const url = new URL(`${ORIGIN}/oauth/authorize`);
  for (const [k, v] of Object.entries(p)) if (v !== undefined) url.searchParams.set(k, v);
  return url.toString();
}

export interface FlowOptions {
  clientId: string;
  scope?: string;
  resource?: string;
  redirectUri?: string;
  username?: string;
  password?: string;
  decision?: 'approve' | 'deny';
  browser?: Browser;
}

/** Drives /oauth/authorize as a person with a browser would: login form, then consent form. Returns the redirect. */
export async function authorizeAsBrowser(o: FlowOptions) {
  const { verifier, challenge } = await pkcePair();
  const state = crypto.randomUUID();
  const url = authorizeUrl({ response_type: 'code', client_id: o.clientId, redirect_uri: o.redirectUri ?? REDIRECT, scope: o.scope ?? 'mcp:read mcp:write', state, code_challenge: challenge, code_challenge_method: 'S256', resource: o.resource ?? MCP_RESOURCE });
  return { ...(await completeAuthorization(url, o)), verifier, state };
}

/** Opens an authorization URL made elsewhere (e.g. by create_linked_app_oauth) and signs in and consents. */
export async function completeAuthorization(url: string, o: Omit<FlowOptions, 'clientId'> = {}) {
  const browser = o.browser ?? new Browser();
  let res = await browser.fetch(url);
  let html = await res.text();
  if (html.includes('name="password"')) {
    res = await browser.post(`${ORIGIN}/oauth/authorize`, { csrf_token: field(html, 'csrf_token')!, request: field(html, 'request')!, username: o.username ?? 'admin', password: o.password ?? ADMIN_PASSWORD, action: 'login' });
    html = await res.text();
  }
  if (html.includes('value="approve"')) {
    res = await browser.post(`${ORIGIN}/oauth/authorize`, { csrf_token: field(html, 'csrf_token')!, request: field(html, 'request')!, action: o.decision ?? 'approve' });
  }
  const location = res.headers.get('location');
  const redirect = location ? new URL(location) : null;
  return { res, html, redirect, browser, code: redirect?.searchParams.get('code') ?? null };
}

export async function token(form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await SELF.fetch(`${ORIGIN}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

/**
 * Register (unless `clientId` is given), authorize, exchange: a fresh access and refresh token for the admin.
 * Pass a `browser` to stay signed in across flows (and skip the consent a client was already given).
 */
export async function fullFlow(scope = 'mcp:read mcp:write', o: { clientId?: string; browser?: Browser } = {}) {
  const client = o.clientId ? { body: { client_id: o.clientId } } : await registerClient();
  const flow = await authorizeAsBrowser({ clientId: client.body.client_id, scope, ...(o.browser ? { browser: o.browser } : {}) });
  const tokens = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: client.body.client_id, redirect_uri: REDIRECT, resource: MCP_RESOURCE });
  return { clientId: client.body.client_id as string, flow, tokens };
}
