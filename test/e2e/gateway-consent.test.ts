/**
 * What a person sees, in a real browser (Debian's Chromium driven by playwright-core), when they give an MCP
 * client access to a gateway route, against a real `wrangler dev` in front of the real OAuth-protected upstream
 * of test/helpers/upstream.ts: the connect page (ChittyAuth's gateway may act for them at the upstream; the
 * upstream's own consent follows, separately) and the consent page of /oauth/authorize for /gw/{id}/mcp (the
 * upstream's name and URL, the tools the portal's policy lets them call, the route's scopes in the route's
 * terms). Screenshots go to test-results/. The tools the page lists are then the tools the gateway serves.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertChromium, launchChromium } from '../helpers/browser';
import { connectThroughBrowser, ScriptedBrowser } from '../helpers/gateway-e2e';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';
import { startUpstream, type Upstream } from '../helpers/upstream';

const RESULTS = join(process.cwd(), 'test-results');
const SERVER_ID = 'e2e-consent-upstream';
const SERVER_NAME = 'Acme Files (e2e)';
const CLIENT_NAME = 'Consent E2E App';
const DENIED = 'delete_everything';

let server: TestServer;
let upstream: Upstream;
let admin: Caller;
let user: Caller;
let browser: Browser | undefined;
let callbackServer: Server | undefined;
let redirectUri: string;
let clientId: string;
/** The tools the upstream listed (servers.check by its owner), and those the policy leaves a user. */
let listedTools: string[];
let callableTools: string[];

const toolNames = (page: Page, list: string) => page.locator(`#${list} li code`).allInnerTexts();

async function signIn(page: Page) {
  await page.locator('#username').fill(user.username);
  await page.locator('#password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

beforeAll(async () => {
  assertChromium();
  mkdirSync(RESULTS, { recursive: true });
  [server, upstream] = await Promise.all([startTestServer(), startUpstream()]);
  admin = await server.admin();
  user = await server.account(['user']);

  const registered = await server.rest('POST', '/v1/servers/register', { server_id: SERVER_ID, name: SERVER_NAME, description: 'Files at Acme, behind its own OAuth', endpoints: { mcp: upstream.mcpUrl }, auth: { type: 'oauth' } }, admin.token);
  expect(registered.status, JSON.stringify(registered.body)).toBe(200);
  const policy = await server.rest('PUT', `/v1/servers/${SERVER_ID}/policy`, { access: { view: ['admin', 'user'], connect: ['admin', 'user'], call: ['admin', 'user'], admin: ['admin'] }, tools: [{ tool: DENIED, effect: 'deny', role: 'user' }] }, admin.token);
  expect(policy.status, JSON.stringify(policy.body)).toBe(200);
  // The owner connects and checks, so the registry knows the upstream's tools.
  const connected = await connectThroughBrowser(new ScriptedBrowser(), `${server.url}/gw/${SERVER_ID}/connect`, admin);
  expect(connected.html).toContain('Connected');
  const checked = await server.rest('POST', `/v1/servers/${SERVER_ID}/check`, {}, admin.token);
  expect(checked.body.status, JSON.stringify(checked.body)).toBe('ready');
  listedTools = checked.body.tools.map((t: { name: string }) => t.name);
  expect(listedTools).toContain(DENIED);
  callableTools = listedTools.filter((t) => t !== DENIED);

  callbackServer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html lang="en"><title>Callback</title><p>Back in the application.</p></html>');
  });
  await new Promise<void>((resolve) => callbackServer!.listen(0, '127.0.0.1', resolve));
  redirectUri = `http://127.0.0.1:${(callbackServer.address() as AddressInfo).port}/callback`;
  const client = await server.rest('POST', '/oauth/register', { client_name: CLIENT_NAME, redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' });
  expect(client.status, JSON.stringify(client.body)).toBe(201);
  clientId = client.body.client_id;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close().catch(() => {});
  callbackServer?.closeAllConnections();
  await new Promise((resolve) => (callbackServer ? callbackServer.close(resolve) : resolve(undefined)));
  await Promise.all([server?.stop(), upstream?.close()]);
});

describe('gateway consent pages in Chromium', () => {
  it('connect page: names the upstream and the tools the policy allows, explains the upstream’s separate consent, then hands over to it', async () => {
    const context = await browser!.newContext({ viewport: { width: 1000, height: 1100 } });
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/gw/${SERVER_ID}/connect`, { waitUntil: 'load', timeout: 60_000 });
      expect(new URL(page.url()).pathname).toBe('/portal/login');
      await signIn(page);
      await page.getByRole('heading', { name: `Connect ${SERVER_NAME}` }).waitFor({ timeout: 30_000 });
      expect(new URL(page.url()).pathname).toBe(`/gw/${SERVER_ID}/connect`);

      const text = await page.locator('main').innerText();
      expect(text).toContain(SERVER_NAME);
      expect(text).toContain(upstream.mcpUrl);
      const upstreamHost = new URL(upstream.mcpUrl).host;
      expect(await page.locator('#upstream-consent').innerText()).toBe(
        `Next, ${upstreamHost} shows its own sign-in and consent page. What you approve there is decided by ${upstreamHost}: what it lets the gateway do for you at ${SERVER_NAME}. It is separate from what you approved at ChittyAuth for each MCP client, and ChittyAuth’s portal policy still decides which tools your clients may call through the gateway.`,
      );
      expect(await toolNames(page, 'callable-tools')).toEqual(callableTools);
      expect(await toolNames(page, 'callable-tools')).not.toContain(DENIED);
      expect(await toolNames(page, 'refused-tools')).toEqual([DENIED]);
      await page.screenshot({ path: join(RESULTS, 'gateway-connect.png'), fullPage: true });

      // Connect: the upstream's own consent page, on the upstream's origin; Allow comes back connected.
      await Promise.all([page.waitForURL((u) => u.origin === upstream.origin, { timeout: 30_000 }), page.getByRole('button', { name: 'Connect' }).click()]);
      expect(await page.title()).toBe('Upstream consent');
      await page.screenshot({ path: join(RESULTS, 'gateway-upstream-consent.png') });
      await Promise.all([page.waitForURL((u) => u.pathname === '/gw/callback', { timeout: 30_000 }), page.getByRole('button', { name: 'Allow' }).click()]);
      expect(await page.getByRole('heading', { name: 'Connected' }).isVisible()).toBe(true);
    } finally {
      await context.close();
    }
  });

  it('consent page: names the upstream, lists the callable tools (not the denied one) and the route’s scopes; the token then serves exactly those tools', async () => {
    const context = await browser!.newContext({ viewport: { width: 1000, height: 1300 } });
    try {
      const page = await context.newPage();
      const verifier = randomBytes(32).toString('base64url');
      const resource = `${server.url}/gw/${SERVER_ID}/mcp`;
      const url = new URL(`${server.url}/oauth/authorize`);
      url.search = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'mcp:read mcp:write', state: 'st', code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256', resource }).toString();
      await page.goto(url.toString(), { waitUntil: 'load', timeout: 60_000 });
      await signIn(page);
      await page.getByRole('button', { name: 'Approve' }).waitFor({ timeout: 30_000 });

      const text = await page.locator('main').innerText();
      expect(text).toContain(`${CLIENT_NAME} wants to use the MCP server ${SERVER_NAME} through ChittyAuth's gateway as ${user.username}.`);
      expect(text).not.toContain('wants to access ChittyAuth');
      expect(await page.getByLabel('MCP server').innerText()).toContain(upstream.mcpUrl);
      expect(await toolNames(page, 'callable-tools')).toEqual(callableTools);
      expect(await toolNames(page, 'callable-tools')).not.toContain(DENIED);
      expect(await toolNames(page, 'refused-tools')).toEqual([DENIED]);
      const scopes = await page.locator('#scopes').innerText();
      expect(scopes).toContain(`connect to ${SERVER_NAME} through the gateway and call, as you, the tools listed as callable`);
      expect(scopes).not.toMatch(/API keys|JWTs/);
      expect(text).toContain(`The gateway calls ${SERVER_NAME} with the connection you made to it; ${CLIENT_NAME} never sees that credential.`);
      await page.screenshot({ path: join(RESULTS, 'gateway-consent.png'), fullPage: true });

      const [back] = await Promise.all([page.waitForURL((u) => u.origin === new URL(redirectUri).origin, { timeout: 60_000 }).then(() => new URL(page.url())), page.getByRole('button', { name: 'Approve' }).click()]);
      const tokenRes = await fetch(`${server.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: back.searchParams.get('code')!, code_verifier: verifier, redirect_uri: redirectUri, client_id: clientId, resource }),
      });
      const tokens = await tokenRes.json();
      expect(tokenRes.status, JSON.stringify(tokens)).toBe(200);
      // What the page promised is what the gateway serves this token.
      const list = await fetch(resource, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
      });
      const body = await list.text();
      expect(list.status, body).toBe(200);
      const message = JSON.parse(body.trim().startsWith('{') ? body : body.split('\n').filter((l) => l.startsWith('data:')).at(-1)!.slice(5));
      expect(message.result.tools.map((t: { name: string }) => t.name)).toEqual(callableTools);
    } finally {
      await context.close();
    }
  });

  it('shows a hostile server name as text, never as markup', async () => {
    const hostile = '<script>window.__xss = 1</script><b>bold</b>';
    const id = 'e2e-consent-hostile';
    const res = await server.rest('POST', '/v1/servers/register', { server_id: id, name: hostile, endpoints: { mcp: upstream.mcpUrl }, auth: { type: 'oauth' } }, admin.token);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const context = await browser!.newContext();
    try {
      const page = await context.newPage();
      const url = new URL(`${server.url}/oauth/authorize`);
      url.search = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'mcp:write', code_challenge: createHash('sha256').update('v'.repeat(43)).digest('base64url'), code_challenge_method: 'S256', resource: `${server.url}/gw/${id}/mcp` }).toString();
      await page.goto(url.toString(), { waitUntil: 'load', timeout: 60_000 });
      await signIn(page);
      await page.getByRole('button', { name: 'Approve' }).waitFor({ timeout: 30_000 });
      expect(await page.locator('main').innerText()).toContain(`wants to use the MCP server ${hostile} through`);
      expect(await page.locator('script, main b').count()).toBe(0);
      expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    } finally {
      await context.close();
    }
  });
});
