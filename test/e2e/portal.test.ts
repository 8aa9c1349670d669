/**
 * The portal dashboard (/portal) in a real browser (Debian's Chromium driven by playwright-core) against a
 * real `wrangler dev`, with a real upstream MCP server (the reference "everything" server) on loopback:
 * sign-in, registering and inspecting a server, its access policy, API keys, sessions, access grants and
 * the audit log, as an admin and as a plain user. Every page must stay on the server's origin, raise no
 * page error and break no CSP rule (the shell allows only same-origin scripts and styles).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertChromium, launchChromium } from '../helpers/browser';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEverything, type EverythingServer } from '../helpers/everything';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';

const RESULTS = join(process.cwd(), 'test-results');
const WAIT = { timeout: 30_000 };
const SERVER_ID = 'everything';
const SERVER_NAME = 'Everything';

let server: TestServer;
let upstream: EverythingServer | undefined;
let browser: Browser | undefined;
let admin: Caller;
let user: Caller;
/** The admin's browser session, shared by the cases in order (each builds on the one before). */
let adminSession: Session;

interface Session {
  context: BrowserContext;
  page: Page;
  /** Requests to any origin other than the server (blocked; must stay empty). */
  foreign: string[];
  failed: string[];
  pageErrors: string[];
  consoleErrors: string[];
}

async function openSession(): Promise<Session> {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const session: Session = { context, page: await context.newPage(), foreign: [], failed: [], pageErrors: [], consoleErrors: [] };
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (/^(https?|wss?):/i.test(url) && new URL(url).origin !== server.url) {
      session.foreign.push(`${route.request().method()} ${url}`);
      return route.abort('blockedbyclient');
    }
    return route.continue();
  });
  // A CSP violation is blocked before the network, where route() would not see it.
  await context.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  session.page.on('pageerror', (error) => session.pageErrors.push(String(error?.stack ?? error)));
  session.page.on('console', (msg) => {
    if (msg.type() === 'error') session.consoleErrors.push(`${msg.text()} ${msg.location().url}`);
  });
  session.page.on('requestfailed', (r) => {
    if (r.failure()?.errorText !== 'net::ERR_BLOCKED_BY_CLIENT') session.failed.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
  });
  return session;
}

/** No foreign request, no CSP violation, no page error, no failed request; console errors only those allowed. */
async function expectClean(s: Session, allowed: RegExp[] = []) {
  // The login page has no icon link, so the browser asks for /favicon.ico (404) on its own.
  const allowedConsole = [/\/favicon\.ico$/, ...allowed];
  const csp = await s.page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []);
  expect(csp, 'Content-Security-Policy violations').toEqual([]);
  expect(s.foreign, 'requests to other origins').toEqual([]);
  expect(s.failed, 'failed requests').toEqual([]);
  expect(s.pageErrors, 'page errors').toEqual([]);
  expect(s.consoleErrors.filter((m) => !allowedConsole.some((re) => re.test(m))), 'console errors').toEqual([]);
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(RESULTS, `portal-${name}.png`), fullPage: true });

/** Signs in at /portal/login with the keyboard and waits for the dashboard to render. */
async function signIn(s: Session, who: Caller, screenshot?: string) {
  const { page } = s;
  await page.goto(`${server.url}/portal`, { waitUntil: 'load', timeout: 60_000 });
  // Not signed in: /portal sends the browser to the sign-in form.
  expect(new URL(page.url()).pathname).toBe('/portal/login');
  await page.getByRole('heading', { name: 'ChittyAuth portal' }).waitFor(WAIT);
  expect(await page.evaluate(() => document.activeElement?.id)).toBe('username');
  await page.keyboard.type(who.username);
  await page.keyboard.press('Tab');
  await page.keyboard.type(who.password);
  if (screenshot) await shot(page, screenshot);
  await Promise.all([page.waitForURL(`${server.url}/portal#/servers`, { timeout: 60_000 }), page.keyboard.press('Enter')]);
  await page.getByRole('navigation', { name: 'Main' }).waitFor(WAIT);
  expect(await page.locator('.whoami .username').innerText()).toBe(who.username);
}

const nav = (page: Page) => page.getByRole('navigation', { name: 'Main' });

async function go(page: Page, link: string, heading: string | RegExp) {
  await nav(page).getByRole('link', { name: link, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: heading }).waitFor(WAIT);
}

/** Presses the confirm button of the modal confirmation dialog. */
async function confirm(page: Page, label: string) {
  const dialog = page.getByRole('dialog');
  await dialog.waitFor(WAIT);
  await dialog.getByRole('button', { name: label, exact: true }).click();
  await dialog.waitFor({ state: 'detached', timeout: 30_000 });
}

beforeAll(async () => {
    assertChromium();
  mkdirSync(RESULTS, { recursive: true });
  [server, upstream] = await Promise.all([startTestServer(), startEverything()]);
  admin = await server.admin();
  user = await server.account(['user']);
  browser = await launchChromium();
  adminSession = await openSession();
}, 240_000);

afterAll(async () => {
  await adminSession?.context.close().catch(() => {});
  await browser?.close().catch(() => {});
  await upstream?.stop();
  await server?.stop();
}, 60_000);

describe('/portal dashboard in Chromium', () => {
  it('signs the bootstrapped admin in at /portal/login and shows every page in the navigation', async () => {
    const { page } = adminSession;
    await signIn(adminSession, admin, 'login');
    expect(await nav(page).getByRole('link').allInnerTexts()).toEqual(['Servers', 'Tokens', 'Sessions', 'Access', 'Audit']);
    expect(await nav(page).getByRole('link', { name: 'Servers' }).getAttribute('aria-current')).toBe('page');
    // Empty state with a way forward.
    await page.getByText('No servers yet — register one.').waitFor(WAIT);
    expect(await page.getByRole('button', { name: 'Register a server' }).isVisible()).toBe(true);
    // The session cookie is HttpOnly (the script never sees it) and the page names its own CSRF token.
    const cookies = await adminSession.context.cookies(server.url);
    expect(cookies.find((c) => c.name === 'chitty_portal')).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
    expect(await page.evaluate(() => document.cookie)).not.toContain('chitty_portal');
    await shot(page, 'servers-empty');
    await expectClean(adminSession);
  });

  it('registers the everything server through the form, lists it as ready and shows its tools', async () => {
    const { page } = adminSession;
    await page.getByRole('button', { name: 'Register server' }).click();
    const form = page.getByRole('form', { name: 'Register an MCP server' });
    await form.waitFor(WAIT);
    await form.getByLabel('Server id').fill(SERVER_ID);
    await form.getByLabel('Name', { exact: true }).fill(SERVER_NAME);
    await form.getByLabel('Description').fill('The MCP reference server, on loopback');
    await form.getByLabel('MCP URL').fill(upstream!.url);
    await form.getByLabel('Authentication to the server').selectOption('none');
    await form.getByLabel('Tags').fill('demo, Reference');
    await shot(page, 'register');
    await form.getByRole('button', { name: 'Register' }).click();

    await page.getByText(`Registered ${SERVER_NAME}.`).waitFor({ timeout: 60_000 });
    const list = page.getByRole('table', { name: 'Registered MCP servers' });
    const row = list.getByRole('row', { name: new RegExp(SERVER_NAME) });
    await row.waitFor(WAIT);
    expect(await row.locator('.badge').innerText()).toBe('ready');
    expect(await row.getByRole('listitem').allInnerTexts()).toEqual(['demo', 'reference']);

    // Filters: status and tag find it; another status does not.
    await page.getByLabel('Status', { exact: true }).selectOption('error');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No servers match these filters.').waitFor(WAIT);
    await page.getByLabel('Status', { exact: true }).selectOption('ready');
    await page.getByLabel('Tag', { exact: true }).fill('demo');
    await page.getByLabel('Search').press('Enter');
    await row.waitFor(WAIT);
    await shot(page, 'servers');

    await row.getByRole('link', { name: SERVER_NAME }).click();
    await page.waitForURL(`${server.url}/portal#/servers/${SERVER_ID}`, WAIT);
    await page.getByRole('heading', { level: 1, name: SERVER_NAME }).waitFor(WAIT);
    const tools = page.getByRole('table', { name: `Tools of ${SERVER_NAME}` });
    await tools.waitFor(WAIT);
    expect(await tools.getByRole('cell', { name: 'echo', exact: true }).count()).toBe(1);
    const status = page.getByRole('region', { name: 'Status' });
    expect(await status.innerText()).toMatch(/Latency\s+\d+ ms/);
    expect(await status.innerText()).toMatch(/Protocol version\s+\d{4}-\d{2}-\d{2}/);
    // Which ways the server is reachable: the gateway route, and directly only once it is protected directly.
    const endpoints = await page.getByRole('region', { name: 'Endpoints' }).innerText();
    expect(endpoints).toContain(`${server.url}/gw/${SERVER_ID}/mcp`);
    expect(endpoints).toMatch(/Directly\s+not protected directly/);
    expect(await page.getByRole('list', { name: 'Capabilities' }).innerText()).toContain('tools');

    // Admin controls are there; a health check runs against the real server.
    for (const name of ['Edit', 'Remove', 'Disable for me']) expect(await page.getByRole('button', { name, exact: true }).isVisible(), name).toBe(true);
    await page.getByRole('button', { name: 'Run health check' }).click();
    await page.getByText(/^Checked: ready in \d+ ms\.$/).waitFor({ timeout: 60_000 });
    await shot(page, 'server');
    await expectClean(adminSession);
  });

  it('denies a tool to role user with the policy editor, and the policy takes effect and persists', async () => {
    const { page } = adminSession;
    const policy = page.getByRole('region', { name: 'Access policy' });
    await policy.getByRole('table', { name: 'Roles allowed per action' }).waitFor(WAIT);
    // The default policy: users may call.
    expect(await policy.getByLabel('user may call').isChecked()).toBe(true);
    await policy.getByLabel('Tool', { exact: true }).selectOption('echo');
    await policy.getByLabel('Effect').selectOption('deny');
    await policy.getByLabel('Applies to').selectOption('role');
    await policy.getByLabel('Role', { exact: true }).selectOption('user');
    await policy.getByRole('button', { name: 'Add rule' }).click();
    await policy.getByText('Unsaved changes').waitFor(WAIT);
    await policy.getByRole('button', { name: 'Save policy' }).click();
    await policy.getByText('Policy saved.').waitFor(WAIT);
    await shot(page, 'policy');

    // In effect: the user may call the server but not echo; another tool stays callable.
    const other = (await server.rest('GET', `/v1/servers/${SERVER_ID}`, undefined, admin.token)).body.tools.map((t: { name: string }) => t.name).find((n: string) => n !== 'echo');
    const check = async (tool: string) => (await server.rest('POST', `/v1/servers/${SERVER_ID}/access`, { chitty_id: user.chittyId, action: 'call', tool }, admin.token)).body;
    expect(await check('echo')).toEqual({ allowed: false, reason: 'denied by rule for role user' });
    expect((await check(other)).allowed).toBe(true);

    // Persisted: shown again after a reload.
    await page.reload({ waitUntil: 'load' });
    const rules = page.getByRole('region', { name: 'Access policy' }).getByRole('table', { name: 'Tool rules' });
    await rules.waitFor(WAIT);
    expect((await rules.getByRole('row').nth(1).innerText()).replace(/\s+/g, ' ')).toMatch(/^echo deny role user Remove rule$/);
    await expectClean(adminSession);
  });

  it('creates an API key on Tokens, shows its secret once, and revokes it', async () => {
    const { page } = adminSession;
    // Keyboard: a nav link with Enter changes the page and moves focus to its heading.
    await nav(page).getByRole('link', { name: 'Tokens' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Tokens' }).waitFor(WAIT);
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('H1');
    await page.getByText('No applications are authorized.').waitFor(WAIT);
    await page.getByText('No API keys yet — create one above.').waitFor(WAIT);

    const create = page.getByRole('form', { name: 'Create an API key' });
    await create.getByLabel('Name', { exact: true }).fill('e2e portal key');
    await create.getByRole('button', { name: 'Create API key' }).click();
    const secretField = page.getByLabel('New API key', { exact: true });
    await secretField.waitFor(WAIT);
    const secret = await secretField.inputValue();
    expect(secret).toMatch(/^chitty_/);
    expect(await page.getByRole('region', { name: 'New API key, shown once' }).innerText()).toContain('Copy this key now.');
    const keys = page.getByRole('table', { name: 'API keys' });
    const row = keys.getByRole('row', { name: /e2e portal key/ });
    await row.waitFor(WAIT);
    expect(await row.innerText()).toContain('active');
    await shot(page, 'tokens');
    expect((await server.rest('POST', '/v1/api-keys/validate', { api_key: secret }, admin.token)).body.valid).toBe(true);

    // Once: dismissed, the secret is nowhere on the page, nor after a reload (only its prefix is listed).
    await page.getByRole('button', { name: 'Done, I have copied it' }).click();
    expect(await page.content()).not.toContain(secret);
    await page.reload({ waitUntil: 'load' });
    await row.waitFor(WAIT);
    expect(await page.content()).not.toContain(secret);

    await row.getByRole('button', { name: 'Revoke e2e portal key' }).click();
    await confirm(page, 'Revoke key');
    await page.getByText('Revoked e2e portal key.').waitFor(WAIT);
    // Revoked keys leave the default list.
    await page.getByText('No API keys yet — create one above.').waitFor(WAIT);
    const validated = await server.rest('POST', '/v1/api-keys/validate', { api_key: secret }, admin.token);
    expect(validated.status).toBe(200);
    expect(validated.body).toMatchObject({ valid: false, reason: 'revoked' });

    // An admin looks at another account's keys (chitty_id) and revokes one of them.
    const theirs = await server.apiKey(user, { name: 'key of the user' });
    await page.getByLabel('Account (ChittyID)').fill(user.chittyId);
    await page.getByRole('button', { name: 'Show', exact: true }).click();
    await page.getByRole('heading', { name: `${user.chittyId}’s API keys` }).waitFor(WAIT);
    const theirRow = page.getByRole('table', { name: 'API keys' }).getByRole('row', { name: /key of the user/ });
    await theirRow.getByRole('button', { name: 'Revoke key of the user' }).click();
    await confirm(page, 'Revoke key');
    await page.getByText('Revoked key of the user.').waitFor(WAIT);
    expect((await server.rest('POST', '/v1/api-keys/validate', { api_key: theirs }, admin.token)).body).toMatchObject({ valid: false, reason: 'revoked' });
    await page.getByRole('button', { name: 'Show mine' }).click();
    await page.getByRole('heading', { name: 'Your API keys' }).waitFor(WAIT);
    await expectClean(adminSession);
  });

  it('filters the audit log by action, verifies the chain and exports the filtered events', async () => {
    const { page } = adminSession;
    await go(page, 'Audit', 'Audit log');
    await page.getByLabel('Action').fill('servers.register');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    const events = page.getByRole('table', { name: 'Audit events, newest first' });
    const row = events.getByRole('row', { name: new RegExp(`servers\\.register.*${SERVER_ID}`) });
    await row.waitFor(WAIT);
    const actions = await events.locator('tbody tr td:nth-child(4)').allInnerTexts();
    expect(actions.length).toBeGreaterThan(0);
    expect(new Set(actions)).toEqual(new Set(['servers.register']));
    expect(await row.innerText()).toContain(admin.chittyId);

    await page.getByRole('button', { name: 'Verify chain' }).click();
    await page.getByText(/^Chain valid: \d+ events checked, no problems\.$/).waitFor(WAIT);
    await shot(page, 'audit');

    const [json] = await Promise.all([page.waitForEvent('download', WAIT), page.getByRole('button', { name: 'Export JSON' }).click()]);
    expect(json.suggestedFilename()).toMatch(/^chittyauth-audit-.*\.json$/);
    const exported = JSON.parse(readFileSync(await json.path(), 'utf8')) as { action: string; target: string }[];
    expect(exported.length).toBe(actions.length);
    expect(exported.every((e) => e.action === 'servers.register')).toBe(true);
    expect(exported.some((e) => e.target === SERVER_ID)).toBe(true);
    const [csv] = await Promise.all([page.waitForEvent('download', WAIT), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const lines = readFileSync(await csv.path(), 'utf8').trim().split('\r\n');
    expect(lines[0]).toBe('seq,id,at,actor,action,target,door,outcome,detail,hash');
    expect(lines.length).toBe(actions.length + 1);
    expect(lines.slice(1).every((l) => l.includes('"servers.register"'))).toBe(true);
    await page.getByText(`Exported ${actions.length} events as CSV.`).waitFor(WAIT);
    await expectClean(adminSession);
  });

  it('lists sessions by device, marks the current one, and ends another', async () => {
    const { page } = adminSession;
    const other = await server.rest('POST', '/v1/accounts/sign-in', { username: admin.username, password: admin.password, device_name: 'Throwaway laptop' });
    expect(other.status).toBe(200);
    await go(page, 'Sessions', 'Your sessions');
    const portal = page.getByRole('region', { name: /^Portal/ });
    await portal.waitFor(WAIT);
    expect(await portal.getByText('This session').count()).toBe(1);
    const laptop = page.getByRole('region', { name: /^Throwaway laptop/ });
    await laptop.waitFor(WAIT);
    await shot(page, 'sessions');
    await laptop.getByRole('button', { name: /^End session:/ }).click();
    await confirm(page, 'End session');
    await page.getByText('Session ended.').waitFor(WAIT);
    await laptop.waitFor({ state: 'detached', timeout: 30_000 });
    // Ended on every door: its token no longer works.
    expect((await server.rest('GET', '/v1/accounts/me', undefined, other.body.access_token)).status).toBe(401);
    await expectClean(adminSession);
  });

  it('shows accounts with roles on Access, grants and revokes a role', async () => {
    const { page } = adminSession;
    await go(page, 'Access', 'Access');
    const accounts = page.getByRole('table', { name: 'Accounts and roles' });
    const row = accounts.getByRole('row', { name: new RegExp(user.username) });
    await row.waitFor(WAIT);
    expect(await row.innerText()).toContain('user');
    await row.getByRole('button', { name: `Manage ${user.username}` }).click();
    const detail = page.getByRole('region', { name: `Account ${user.username}` });
    const grants = detail.getByRole('table', { name: `Grants of ${user.username}` });
    await grants.waitFor(WAIT);
    expect(await grants.getByRole('row').nth(1).innerText()).toMatch(/role\s+user/);

    await detail.getByLabel('Grant a', { exact: true }).selectOption('role');
    await detail.getByLabel('Role', { exact: true }).selectOption('readonly');
    await detail.getByRole('button', { name: 'Grant', exact: true }).click();
    await detail.getByText('Granted role readonly.').waitFor(WAIT);
    const roles = async () => (await server.rest('GET', `/v1/permissions/grants?chitty_id=${user.chittyId}`, undefined, admin.token)).body.items.map((g: { role: string }) => g.role).sort();
    expect(await roles()).toEqual(['readonly', 'user']);
    await shot(page, 'access');

    await detail.getByRole('button', { name: 'Revoke role readonly' }).click();
    await confirm(page, 'Revoke grant');
    await detail.getByText('Revoked role readonly.').waitFor(WAIT);
    expect(await roles()).toEqual(['user']);
    await expectClean(adminSession);
  });

  it('a plain user sees no Access page nor admin controls, and the API refuses their registration', async () => {
    const s = await openSession();
    try {
      const { page } = s;
      await signIn(s, user);
      expect(await nav(page).getByRole('link').allInnerTexts()).toEqual(['Servers', 'Tokens', 'Sessions']);
      const row = page.getByRole('table', { name: 'Registered MCP servers' }).getByRole('row', { name: new RegExp(SERVER_NAME) });
      await row.waitFor(WAIT);
      await shot(page, 'user-servers');

      await row.getByRole('link', { name: SERVER_NAME }).click();
      await page.getByRole('table', { name: `Tools of ${SERVER_NAME}` }).waitFor(WAIT);
      for (const name of ['Edit', 'Remove', 'Run health check', 'Save policy']) expect(await page.getByRole('button', { name }).count(), name).toBe(0);
      expect(await page.getByRole('region', { name: 'Access policy' }).count()).toBe(0);
      expect(await page.getByRole('region', { name: 'Status' }).innerText()).toMatch(/My access\s+view, connect, call/);
      // A user may turn a server off for themselves, and the registry then refuses them a connection.
      await page.getByRole('button', { name: 'Disable for me' }).click();
      await page.getByText('Disabled for you.').waitFor(WAIT);
      const connect = await server.rest('POST', `/v1/servers/${SERVER_ID}/access`, { chitty_id: user.chittyId, action: 'connect' }, admin.token);
      expect(connect.body).toEqual({ allowed: false, reason: `${SERVER_ID} is turned off for this user` });
      await page.getByRole('button', { name: 'Enable for me' }).click();
      await page.getByText('Enabled for you.').waitFor(WAIT);
      await shot(page, 'user-server');

      // The Access page is not for them, even by address.
      await page.goto(`${server.url}/portal#/access`);
      await page.getByText('This page is for administrators.').waitFor(WAIT);

      // Registering: the API refuses, and the form says why.
      await page.goto(`${server.url}/portal#/servers`);
      await page.getByRole('button', { name: 'Register server' }).click();
      const form = page.getByRole('form', { name: 'Register an MCP server' });
      await form.getByLabel('Server id').fill('user-server');
      await form.getByLabel('Name', { exact: true }).fill('Not allowed');
      await form.getByLabel('MCP URL').fill(upstream!.url);
      await form.getByRole('button', { name: 'Register' }).click();
      const alert = form.getByRole('alert');
      await alert.waitFor(WAIT);
      expect(await alert.innerText()).toBe('Registration failed: Permission denied: this requires portal:servers:register');
      await shot(page, 'user-register-error');
      expect((await server.rest('GET', '/v1/servers/user-server', undefined, admin.token)).status).toBe(404);
      // The browser logs the refused call (403) itself; nothing else may be logged.
      await expectClean(s, [/status of 403 .*\/rpc\/servers\/register$/]);
    } finally {
      await s.context.close();
    }
  });

  it('edits the server, removes it after confirmation, then signs out', async () => {
    const { page } = adminSession;
    await page.goto(`${server.url}/portal#/servers/${SERVER_ID}`);
    await page.getByRole('heading', { level: 1, name: SERVER_NAME }).waitFor(WAIT);
    // Edit: only what changed is sent; the page shows the result.
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    const edit = page.getByRole('form', { name: `Edit ${SERVER_NAME}` });
    await edit.getByLabel('Tags').fill('demo, edited');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Saved.', { exact: true }).waitFor(WAIT);
    expect(await page.getByRole('region', { name: 'Endpoints' }).innerText()).toMatch(/Tags\s+demo, edited/);
    expect((await server.rest('GET', `/v1/servers/${SERVER_ID}`, undefined, admin.token)).body.tags).toEqual(['demo', 'edited']);

    await page.getByRole('button', { name: 'Remove', exact: true }).click();
    // Cancel keeps it.
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached', timeout: 30_000 });
    await page.getByRole('button', { name: 'Remove', exact: true }).click();
    await confirm(page, 'Remove server');
    await page.getByText(`Removed ${SERVER_NAME}.`).waitFor(WAIT);
    await page.getByText('No servers yet — register one.').waitFor(WAIT);
    expect((await server.rest('GET', `/v1/servers/${SERVER_ID}`, undefined, admin.token)).status).toBe(404);

    await Promise.all([page.waitForURL(`${server.url}/portal/login`, WAIT), page.getByRole('button', { name: 'Sign out' }).click()]);
    await page.goto(`${server.url}/portal`);
    expect(new URL(page.url()).pathname).toBe('/portal/login');
    await expectClean(adminSession);
  });
});
