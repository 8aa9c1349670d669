import { createExecutionContext, env, SELF, waitOnExecutionContext } from 'cloudflare:test';
import type { Env } from '../../server/env';
import { getDb } from '../../server/db/schema';
import worker from '../../server/index';
import { signJwt } from '../../server/jwt/tokens';

export const ORIGIN = 'http://chittyauth.test';
export const ADMIN_PASSWORD = 'correct horse battery staple';

export interface Caller {
  chittyId: string;
  token: string;
}

export type Answer = { status: number; body: any; headers: Headers };

/** Status, headers and the body as JSON when it is JSON (else text). */
export async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** A REST call from outside (SELF.fetch). */
export async function rest(method: string, path: string, body?: unknown, token?: string): Promise<Answer> {
  const res = await SELF.fetch(`${ORIGIN}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return answer(res);
}

let adminCache: Caller | undefined;

/** The first admin (bootstrap), signed in. Storage is per test file, so this runs once per file. */
export async function admin(): Promise<Caller> {
  if (adminCache) return adminCache;
  const boot = await rest('POST', '/v1/accounts/bootstrap', { setup_token: env.SETUP_TOKEN, username: 'admin', password: ADMIN_PASSWORD });
  if (boot.status !== 201 && boot.status !== 409) throw new Error(`bootstrap failed: ${boot.status} ${JSON.stringify(boot.body)}`);
  const signIn = await rest('POST', '/v1/accounts/sign-in', { username: 'admin', password: ADMIN_PASSWORD });
  if (signIn.status !== 200) throw new Error(`sign-in failed: ${JSON.stringify(signIn.body)}`);
  adminCache = { chittyId: signIn.body.chitty_id, token: signIn.body.access_token };
  return adminCache;
}

let userCounter = 0;

/** A fresh account with the given roles, signed in. */
export async function user(roles: string[] = ['user']): Promise<Caller & { username: string; password: string }> {
  const a = await admin();
  const username = `user${++userCounter}-${crypto.randomUUID().slice(0, 8)}`;
  const password = 'a long enough password';
  const created = await rest('POST', '/v1/accounts', { username, password, roles }, a.token);
  if (created.status !== 201) throw new Error(`create account failed: ${JSON.stringify(created.body)}`);
  const signIn = await rest('POST', '/v1/accounts/sign-in', { username, password });
  return { chittyId: created.body.chitty_id, token: signIn.body.access_token, username, password };
}

/** An API key for a caller, with optional scopes. */
export async function apiKey(caller: Caller, scopes?: string[]): Promise<string> {
  const res = await rest('POST', '/v1/api-keys', { name: 'test key', ...(scopes ? { scopes } : {}) }, caller.token);
  if (res.status !== 201) throw new Error(`api key failed: ${JSON.stringify(res.body)}`);
  return res.body.api_key;
}

/** Every row of every table, for asserting that nothing changed. */
export async function snapshotDatabase(): Promise<Record<string, unknown[]>> {
  const tables = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'd1_migrations' ORDER BY name").all<{ name: string }>();
  const out: Record<string, unknown[]> = {};
  for (const { name } of tables.results) {
    out[name] = (await env.DB.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all()).results;
  }
  return out;
}

/** Speaks MCP Streamable HTTP (JSON responses) to /mcp: initialize, then one request. */
export async function mcp(method: string, params: unknown, token: string | null): Promise<{ status: number; body: any }> {
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(token === null ? {} : { authorization: `Bearer ${token}` }), 'mcp-protocol-version': '2025-06-18' };
  const res = await SELF.fetch(`${ORIGIN}/mcp`, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export const callTool = (name: string, args: unknown, token: string | null) => mcp('tools/call', { name, arguments: args }, token);

/**
 * Like `rest`, but calls the Worker's default export directly: `env` may be overridden (e.g. CHITTYID_ENDPOINT),
 * and background work (`ctx.waitUntil`, such as last-used times) has finished when it returns.
 */
export async function direct(
  method: string,
  path: string,
  body?: unknown,
  token?: string,
  envOverrides: Record<string, unknown> = {},
): Promise<Answer> {
  const request = new Request(`${ORIGIN}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const ctx = createExecutionContext();
  const res = await worker.fetch(request as Parameters<typeof worker.fetch>[0], { ...env, ...envOverrides } as unknown as Env, ctx);
  await waitOnExecutionContext(ctx);
  return answer(res);
}

/** Rows of a raw SQL query against the test D1. */
export async function query<T = Record<string, any>>(sql: string, ...binds: unknown[]): Promise<T[]> {
  return (await env.DB.prepare(sql).bind(...binds).all<T>()).results;
}

/** The number of rows in a table (optionally with a WHERE clause). */
export async function count(table: string, where = '1 = 1', ...binds: unknown[]): Promise<number> {
  const row = await env.DB.prepare(`SELECT count(*) AS n FROM "${table}" WHERE ${where}`).bind(...binds).first<{ n: number }>();
  return row?.n ?? 0;
}

/** The audit events appended after `afterSeq`, oldest first. */
export async function auditSince(afterSeq: number): Promise<Record<string, any>[]> {
  return query('SELECT * FROM audit_events WHERE seq > ? ORDER BY seq', afterSeq);
}

/** The seq of the newest audit event (0 when the log is empty). */
export async function auditHead(): Promise<number> {
  return (await env.DB.prepare('SELECT coalesce(max(seq), 0) AS n FROM audit_events').first<{ n: number }>())?.n ?? 0;
}

/**
 * A session-bound access token for the MCP resource (`aud` = ISSUER/mcp), signed with the server's key as the
 * authorization server will issue them. Sign-in tokens are for the API (`aud` = ISSUER) and /mcp refuses them
 * by design (RFC 8707), so this is how a test shows that ending a session also ends its tokens on /mcp.
 */
export async function mcpSessionToken(chittyId: string, sessionId: string, scope = '*'): Promise<string> {
  const signed = await signJwt(env as unknown as Env, getDb(env.DB), {
    typ: 'at+jwt',
    subject: chittyId,
    audience: `${env.ISSUER}/mcp`,
    expiresIn: 600,
    claims: { sid: sessionId, scope },
  });
  return signed.token;
}
