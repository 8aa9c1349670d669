/**
 * A real ChittyAuth under `wrangler dev` for end-to-end tests: a free random port, a fresh local D1 in a
 * unique temp directory (migrated), and test-only secrets passed with --var (the developer's .dev.vars is
 * never read for them). Always call `stop()` in afterAll.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootstrapAdmin, generateSecret, migrate, startWrangler, type LocalServer } from '../../scripts/local-server.mjs';

export interface RestResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface Caller {
  chittyId: string;
  token: string;
  sessionId: string;
  username: string;
  password: string;
}

export interface TestServer {
  url: string;
  /** The local state directory (D1's SQLite files live under it). */
  persistTo: string;
  setupToken: string;
  logs(): string;
  stop(): Promise<void>;
  /** Stops wrangler dev and starts it again on the same port, state directory and secrets. */
  restart(): Promise<void>;
  /** A JSON request to the server; the body is parsed when it is JSON. */
  rest<T = any>(method: string, path: string, body?: unknown, token?: string): Promise<RestResponse<T>>;
  /** Bootstraps the admin (once) and signs it in. */
  admin(): Promise<Caller>;
  /** Creates an account (as the admin) with the given roles and signs it in. */
  account(roles?: string[]): Promise<Caller>;
  /** Creates an API key for a signed-in caller through REST. */
  apiKey(caller: Caller, body?: Record<string, unknown>): Promise<string>;
}

const ADMIN_PASSWORD = 'e2e admin password';

function expectStatus(res: RestResponse, status: number, what: string) {
  if (res.status !== status) throw new Error(`${what}: expected HTTP ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
}

/** `vars`: extra --var values, e.g. GATEWAY_DOMAIN for the gateway's hostname routes. */
export async function startTestServer(options: { vars?: Record<string, string> } = {}): Promise<TestServer> {
  const persistTo = mkdtempSync(join(tmpdir(), 'chittyauth-e2e-'));
  const setupToken = generateSecret();
  let server: LocalServer | undefined;
  const cleanup = async () => {
    await server?.stop();
    rmSync(persistTo, { recursive: true, force: true });
  };
  const vars = { ENCRYPTION_KEY: generateSecret(), SETUP_TOKEN: setupToken, ENVIRONMENT: 'development', ...options.vars };
  try {
    await migrate({ persistTo });
    server = await startWrangler({ persistTo, vars });
  } catch (error) {
    await cleanup();
    throw error;
  }
  const restart = async () => {
    const port = server!.port;
    await server!.stop();
    server = undefined;
    server = await startWrangler({ persistTo, vars, port });
  };
  const { url } = server;
  const logs = () => server?.logs() ?? '';

  const rest = async <T = any>(method: string, path: string, body?: unknown, token?: string): Promise<RestResponse<T>> => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  };

  const signIn = async (username: string, password: string, chittyId?: string): Promise<Caller> => {
    const res = await rest('POST', '/v1/accounts/sign-in', { username, password, device_name: 'e2e' });
    expectStatus(res, 200, `sign-in as ${username}`);
    if (chittyId && res.body.chitty_id !== chittyId) throw new Error(`sign-in as ${username} returned ${res.body.chitty_id}, expected ${chittyId}`);
    return { chittyId: res.body.chitty_id, token: res.body.access_token, sessionId: res.body.session_id, username, password };
  };

  let adminCaller: Promise<Caller> | undefined;
  const admin = () =>
    (adminCaller ??= (async () => {
      const boot = await bootstrapAdmin(url, setupToken, 'admin', ADMIN_PASSWORD);
      if (!boot.created) throw new Error('bootstrap: an admin already exists in a fresh database');
      return signIn('admin', ADMIN_PASSWORD, String(boot.account.chitty_id));
    })());

  let counter = 0;
  const account = async (roles: string[] = ['user']) => {
    const a = await admin();
    const username = `e2e-${roles.join('-')}-${++counter}`;
    const password = `password for ${username}`;
    const created = await rest('POST', '/v1/accounts', { username, password, roles }, a.token);
    expectStatus(created, 201, `create account ${username}`);
    return signIn(username, password, created.body.chitty_id);
  };

  const apiKey = async (caller: Caller, body: Record<string, unknown> = {}) => {
    const res = await rest('POST', '/v1/api-keys', { name: `e2e key of ${caller.username}`, ...body }, caller.token);
    expectStatus(res, 201, `create API key for ${caller.username}`);
    return res.body.api_key as string;
  };

  return { url, persistTo, setupToken, logs, stop: cleanup, restart, rest, admin, account, apiKey };
}
