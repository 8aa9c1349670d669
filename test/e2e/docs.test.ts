/**
 * The API reference at /docs, in a real browser (Debian's Chromium driven by playwright-core) against a real
 * `wrangler dev`: Scalar renders from our own assets and the page never reaches another origin.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertChromium, CHROMIUM, CHROMIUM_FLAGS } from '../helpers/browser';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server';

const SCREENSHOT = join(process.cwd(), 'test-results', 'docs.png');

let server: TestServer;
let context: BrowserContext | undefined;
let userDataDir: string | undefined;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await context?.close().catch(() => {});
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await server?.stop();
});

describe('/docs', () => {
  it('GET /openapi.json is OpenAPI 3.1 JSON that points at this server', async () => {
    const res = await fetch(`${server.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const doc = JSON.parse(await res.text());
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info.title).toBe('ChittyAuth');
    expect(doc.servers).toEqual([{ url: server.url }]);
    expect(Object.keys(doc.paths).length).toBeGreaterThan(10);
  });

  it('renders the Scalar reference offline: no request to any other origin, no page error', async () => {
    assertChromium();
    const origin = new URL(server.url).origin;
    userDataDir = mkdtempSync(join(tmpdir(), 'chittyauth-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1280, height: 900 },
      timeout: 60_000,
    });

    const foreign: string[] = [];
    const pageErrors: string[] = [];
    const consoleErrors: string[] = [];
    const failed: string[] = [];
    const isForeign = (url: string) => /^(https?|wss?):/i.test(url) && new URL(url).origin !== origin;

    // Every request leaving for another origin is recorded and blocked (it must never happen).
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (isForeign(url)) {
        foreign.push(`${route.request().method()} ${url}`);
        return route.abort('blockedbyclient');
      }
      return route.continue();
    });
    await context.routeWebSocket(/.*/, (ws) => {
      if (isForeign(ws.url())) {
        foreign.push(`WEBSOCKET ${ws.url()}`);
        return ws.close();
      }
      ws.connectToServer();
    });
    // The page's CSP blocks other origins before the network, where route() would not see the attempt:
    // record CSP violations too.
    await context.addInitScript(() => {
      const w = window as unknown as { __csp: string[] };
      w.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
    });

    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(String(error?.stack ?? error)));
    page.on('console', (msg) => {
      // The browser asks for /favicon.ico on its own; the Worker has none (404). Anything else counts.
      if (msg.type() === 'error' && !msg.location().url.endsWith('/favicon.ico')) consoleErrors.push(`${msg.text()} ${msg.location().url}`);
    });
    page.on('requestfailed', (req) => {
      if (!isForeign(req.url())) failed.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
    });

    const response = await page.goto(`${server.url}/docs`, { waitUntil: 'load', timeout: 60_000 });
    expect(response?.status()).toBe(200);

    await expect
      .poll(async () => page.getByText('ChittyAuth', { exact: true }).first().isVisible(), { timeout: 60_000, interval: 250 })
      .toBe(true);
    // Open the "API keys" group in the sidebar; its operations render in the reference.
    await page.getByText('API keys', { exact: true }).first().click({ timeout: 30_000 });
    await page.getByRole('heading', { name: 'Generate an API key' }).first().waitFor({ state: 'visible', timeout: 60_000 });
    // Scalar fetched the spec from this server.
    await page.waitForLoadState('networkidle', { timeout: 30_000 }).catch(() => {});

    mkdirSync(join(process.cwd(), 'test-results'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });

    const csp = await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
    expect(foreign, 'requests to other origins').toEqual([]);
    expect(csp, 'Content-Security-Policy violations').toEqual([]);
    expect(pageErrors, 'page errors').toEqual([]);
    expect(failed, 'failed same-origin requests').toEqual([]);
    expect(consoleErrors, 'console errors').toEqual([]);
  });
});
