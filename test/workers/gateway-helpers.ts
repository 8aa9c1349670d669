import { expect } from 'vitest';
import { ADMIN_PASSWORD, ORIGIN, rest, type Caller } from './helpers';
import { Browser, field } from './oauth-helpers';

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
export async function registerOAuthUpstream(admin: Caller) {
  const server_id = `oauth-up-${++n}-${crypto.randomUUID().slice(0, 6)}`;
  const res = await rest('POST', '/v1/servers/register', { server_id, name: 'Secure upstream', endpoints: { mcp: 'https://secure.example/mcp' }, auth: { type: 'oauth' } }, admin.token);
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
