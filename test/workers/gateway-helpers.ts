import { expect } from 'vitest';
import { ADMIN_PASSWORD, ORIGIN, query, rest, type Caller } from './helpers';
import { authorizeAsBrowser, Browser, field, REDIRECT, registerClient, token } from './oauth-helpers';

/** A browser signed in to the portal. */
export async function portalBrowser(username = 'admin', password = ADMIN_PASSWORD) {
  const browser = new Browser();
  const page = await (await browser.fetch(`${ORIGIN}/portal/login`)).text();
  const res = await browser.post(`${ORIGIN}/portal/login`, { csrf_token: field(page, 'csrf_token')!, username, password, return: '/portal' });
  expect(res.status).toBe(303);
  return browser;
}

let n = 0;

/** Registers the OAuth-protected upstream (https://secure.example, test/fixtures/third-parties.ts). */
export async function registerOAuthUpstream(admin: Caller, mcp = 'https://secure.example/mcp') {
  const server_id = `oauth-up-${++n}-${crypto.randomUUID().slice(0, 6)}`;
  const res = await rest('POST', '/v1/servers/register', { server_id, name: 'Secure upstream', endpoints: { mcp }, auth: { type: 'oauth' } }, admin.token);
  expect(res.status).toBe(200);
  return server_id;
}

/**
 * The person's journey: the connect page, Approve, the upstream's authorization endpoint (which consents at
 * once and redirects back), and our callback. Returns the last page and where the upstream sent the browser.
 */
export async function connectUpstream(browser: Browser, serverId: string) {
  const page = await (await browser.fetch(`${ORIGIN}/gw/${serverId}/connect`)).text();
  const approve = await browser.post(`${ORIGIN}/gw/${serverId}/connect`, { csrf_token: field(page, 'csrf_token')!, action: 'approve' });
  expect(approve.status).toBe(303);
  const authorizeUrl = new URL(approve.headers.get('location')!);
  const atUpstream = await fetch(authorizeUrl, { redirect: 'manual' });
  const callback = atUpstream.headers.get('location')!;
  const done = await browser.fetch(callback);
  return { authorizeUrl, callback: new URL(callback), status: done.status, html: await done.text() };
}

/** An OAuth access token (authorization code + PKCE through the real pages) whose audience is `resource`. */
export async function resourceToken(resource: string, who: { username: string; password: string } = { username: 'admin', password: ADMIN_PASSWORD }) {
  const client = await registerClient();
  const flow = await authorizeAsBrowser({ clientId: client.body.client_id, resource, username: who.username, password: who.password, browser: new Browser() });
  const t = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: client.body.client_id, redirect_uri: REDIRECT, resource });
  expect(t.status).toBe(200);
  return t.body.access_token as string;
}

/** Registers an upstream as `root`; returns its server id. */
export async function registerGatewayUpstream(root: Caller, mcp: string, o: { auth?: Record<string, unknown>; transport?: 'streamable-http' | 'sse'; prefix?: string; rate_limits?: Record<string, unknown> } = {}) {
  const server_id = `${o.prefix ?? 'gwx'}-${++n}-${crypto.randomUUID().slice(0, 6)}`;
  const res = await rest('POST', '/v1/servers/register', { server_id, name: 'Upstream', endpoints: { mcp }, transport: o.transport ?? 'streamable-http', auth: o.auth ?? { type: 'none' }, ...(o.rate_limits ? { rate_limits: o.rate_limits } : {}) }, root.token);
  expect(res.status).toBe(200);
  return server_id;
}

/** Denies `tool` to the role `user` on a server (everyone else keeps the defaults). */
export async function denyToolForUsers(root: Caller, serverId: string, tool: string) {
  const res = await rest('PUT', `/v1/servers/${serverId}/policy`, {
    access: { view: ['admin', 'user'], connect: ['admin', 'user'], call: ['admin', 'user'], admin: ['admin'] },
    tools: [{ tool, effect: 'deny', role: 'user' }],
  }, root.token);
  expect(res.status).toBe(200);
}

/** What an upstream of test/fixtures/third-parties.ts received, oldest first. */
export const upstreamRequests = async (origin: string) => (await (await fetch(`${origin}/__requests`)).json()) as { method: string; url?: string; headers: Record<string, string>; body?: string }[];

/** Polls until `find` returns something (the gateway's background requests come after its answers). */
export async function eventually<T>(find: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 60; i++) {
    const found = await find();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** gateway.call audit events of one user, polled because routine ones are written after the response. */
export async function gatewayAudit(chittyId: string, atLeast: number): Promise<{ outcome: string; detail: Record<string, any> }[]> {
  let events: { outcome: string; detail: Record<string, any> }[] = [];
  for (let i = 0; i < 40; i++) {
    const rows = await query<{ outcome: string; detail: string }>("SELECT outcome, detail FROM audit_events WHERE action = 'gateway.call' AND actor = ? ORDER BY seq", chittyId);
    events = rows.map((r) => ({ outcome: r.outcome, detail: JSON.parse(r.detail) }));
    if (events.length >= atLeast) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return events;
}
