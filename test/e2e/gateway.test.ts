/**
 * End to end: the MCP gateway under a real `wrangler dev`, in front of a real upstream MCP server that runs
 * its own OAuth authorization server (test/helpers/upstream.ts, built from the MCP SDK). The MCP SDK
 * client obtains a ChittyAuth token for /gw/{id}/mcp through the real OAuth flow, is told to connect the
 * upstream, a scripted browser connects it (portal sign-in, ChittyAuth's connect page, the upstream's
 * consent page, /gw/callback), and then the client's calls reach the upstream with the upstream's own
 * token — never a ChittyAuth one.
 */
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectThroughBrowser, jwtClaims, ScriptedBrowser } from '../helpers/gateway-e2e';
import { ScriptedOAuthProvider } from '../helpers/mcp-oauth';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';
import { startUpstream, type Upstream } from '../helpers/upstream';

const SERVER_ID = 'e2e-upstream';
const OTHER_ID = 'e2e-other';
const REDIRECT = 'http://127.0.0.1:1/callback';

let server: TestServer;
let upstream: Upstream;
let user: Caller;
let provider: ScriptedOAuthProvider;
const clients: Client[] = [];
/** Every ChittyAuth credential this test obtained: none may ever reach the upstream. */
const chittyTokens: string[] = [];
let probed = 0;

const route = (id: string) => `${server.url}/gw/${id}/mcp`;
const connectUrl = () => `${server.url}/gw/${SERVER_ID}/connect`;

/** A ChittyAuth access token for `resource`, through discovery, registration, the browser and /oauth/token. */
async function tokenFor(resource: string) {
  const p = new ScriptedOAuthProvider(REDIRECT, user);
  expect(await auth(p, { serverUrl: resource })).toBe('REDIRECT');
  expect(await auth(p, { serverUrl: resource, authorizationCode: p.lastCode() })).toBe('AUTHORIZED');
  chittyTokens.push(p.saved!.access_token, p.saved!.refresh_token!);
  return p;
}

/** An SDK client on the route, connected; resolves once its standalone GET stream was tried too (405). */
async function client() {
  const c = new Client({ name: 'gateway-e2e', version: '1.0.0' });
  clients.push(c);
  const mark = upstream.log.length;
  await c.connect(new StreamableHTTPClientTransport(new URL(route(SERVER_ID)), { authProvider: provider }));
  for (let i = 0; i < 50 && !upstream.log.slice(mark).some((r) => r.method === 'GET' && r.path === '/mcp' && r.status); i++) await new Promise((r) => setTimeout(r, 20));
  return c;
}

const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

/** Authorization headers the upstream received, and everything ChittyAuth-made found in them. */
function upstreamSawChittyAuth() {
  const log = JSON.stringify(upstream.log) + JSON.stringify(upstream.grants);
  const leaked = chittyTokens.filter((t) => log.includes(t));
  const jwts = upstream.log.map((r) => r.authorization?.replace(/^Bearer /, '') ?? '').filter((t) => jwtClaims(t) !== null);
  return { leaked, jwts };
}

beforeAll(async () => {
  [server, upstream] = await Promise.all([startTestServer(), startUpstream()]);
  const admin = await server.admin();
  user = await server.account(['user']);
  for (const [server_id, auth] of [
    [SERVER_ID, { type: 'oauth' }],
    [OTHER_ID, { type: 'none' }],
  ] as const) {
    const res = await server.rest('POST', '/v1/servers/register', { server_id, name: `E2E ${server_id}`, endpoints: { mcp: upstream.mcpUrl }, auth }, admin.token);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  }
  // Users may call every tool but delete_everything (set through the portal's procedures).
  const policy = await server.rest('PUT', `/v1/servers/${SERVER_ID}/policy`, {
    access: { view: ['admin', 'user'], connect: ['admin', 'user'], call: ['admin', 'user'], admin: ['admin'] },
    tools: [{ tool: 'delete_everything', effect: 'deny', role: 'user' }],
  }, admin.token);
  expect(policy.status).toBe(200);
  // Registration probed the upstream without credentials; from here on the log is the gateway's.
  probed = upstream.log.length;
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await Promise.all([server?.stop(), upstream?.close()]);
});

// The cases run in order and share the user's connection: each continues where the previous one left off.
describe('gateway /gw/{id}/mcp end to end', () => {
  it('gets a ChittyAuth token for the route through OAuth, and is told to connect the upstream', async () => {
    provider = await tokenFor(route(SERVER_ID));
    const claims = jwtClaims(provider.saved!.access_token)!;
    expect(claims.aud).toBe(route(SERVER_ID));
    expect(claims.sub).toBe(user.chittyId);

    const c = new Client({ name: 'gateway-e2e', version: '1.0.0' });
    const error = await c.connect(new StreamableHTTPClientTransport(new URL(route(SERVER_ID)), { authProvider: provider })).then(
      () => null,
      (e: Error) => e,
    );
    await c.close().catch(() => {});
    expect(error?.message).toContain(connectUrl());
    // Nothing reached the upstream's MCP endpoint yet.
    expect(upstream.log.slice(probed).filter((r) => r.path === '/mcp')).toEqual([]);
  });

  it('connects the upstream in a browser: portal sign-in, connect page, upstream consent, callback', async () => {
    const browser = new ScriptedBrowser();
    const done = await connectThroughBrowser(browser, connectUrl(), user);
    expect(done.status, done.html.slice(0, 500)).toBe(200);
    expect(new URL(done.url).pathname).toBe('/gw/callback');
    expect(done.html).toContain('Connected');
    // Discovery, dynamic registration, the authorization request, consent, and the code exchanged once.
    const paths = upstream.log.map((r) => `${r.method} ${r.path}`);
    expect(paths).toEqual(expect.arrayContaining(['GET /.well-known/oauth-protected-resource/mcp', 'GET /.well-known/oauth-authorization-server', 'POST /register', 'GET /authorize', 'POST /consent', 'POST /token']));
    expect(upstream.grants).toEqual([expect.objectContaining({ grant_type: 'authorization_code', outcome: 'issued' })]);
    const connections = await server.rest('GET', '/v1/gateway/connections', undefined, user.token);
    expect(connections.body.items).toEqual([expect.objectContaining({ server_id: SERVER_ID, status: 'connected' })]);
  });

  it('lists and calls the upstream’s tools through the gateway, hiding and refusing the denied one', async () => {
    const c = await client();
    const tools = (await c.listTools()).tools.map((t) => t.name).sort();
    expect(tools).toEqual(['add', 'countdown', 'echo', 'whoami']);
    expect(text(await c.callTool({ name: 'echo', arguments: { message: 'hello' } }))).toBe('upstream says: hello');
    expect(text(await c.callTool({ name: 'add', arguments: { a: 20, b: 22 } }))).toBe('42');
    // The upstream sees the gateway's own OAuth client at its authorization server.
    expect(text(await c.callTool({ name: 'whoami', arguments: {} }))).toMatch(/^client [0-9a-f]{48}$/);

    const callsBefore = upstream.log.filter((r) => r.rpc === 'tools/call').length;
    const denied = await c.callTool({ name: 'delete_everything', arguments: {} }).then(
      () => null,
      (e: Error) => e,
    );
    expect(denied?.message).toContain('not allowed');
    expect(upstream.log.filter((r) => r.rpc === 'tools/call').length).toBe(callsBefore);
  });

  it('streams progress notifications to the client as the upstream sends them', async () => {
    const c = await client();
    const progress: number[] = [];
    const result = await c.callTool({ name: 'countdown', arguments: { steps: 3 } }, undefined, { onprogress: () => void progress.push(Date.now()) });
    const resultAt = Date.now();
    expect(text(result)).toBe('liftoff');
    expect(progress).toHaveLength(3);
    // The first event arrived while the upstream was still working (it sends one every 400 ms, then answers).
    expect(resultAt - progress[0]!).toBeGreaterThanOrEqual(300);
  });

  it('refuses ChittyAuth tokens for /mcp or for another gateway route, pointing at this route’s metadata', async () => {
    const forMcp = await tokenFor(`${server.url}/mcp`);
    const forOther = await tokenFor(route(OTHER_ID));
    for (const p of [forMcp, forOther]) {
      const res = await fetch(route(SERVER_ID), {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${p.saved!.access_token}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
      });
      expect(res.status).toBe(401);
      const challenge = res.headers.get('www-authenticate')!;
      expect(challenge).toContain('error="invalid_token"');
      expect(challenge).toContain(`resource_metadata="${server.url}/.well-known/oauth-protected-resource/gw/${SERVER_ID}/mcp"`);
    }
  });

  it('refreshes an upstream access token the upstream expired, transparently', async () => {
    const c = await client();
    const refreshes = () => upstream.grants.filter((g) => g.grant_type === 'refresh_token' && g.outcome === 'issued').length;
    upstream.expireAccessTokens();
    let mark = upstream.log.length;
    expect(text(await c.callTool({ name: 'echo', arguments: { message: 'after expiry' } }))).toBe('upstream says: after expiry');
    expect(refreshes()).toBe(1);
    // The refused call, the refresh grant, then the same call with the new token.
    const calls = upstream.log.slice(mark);
    expect(calls.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(['POST /mcp 401', 'POST /token 200', 'POST /mcp 200']);
    expect(calls[2]!.authorization).not.toBe(calls[0]!.authorization);

    // Tokens issued from now on live 5 s, less than the gateway's refresh margin (60 s): once it holds
    // one, it refreshes before using it, without waiting for a 401.
    upstream.setAccessTtl(5);
    upstream.expireAccessTokens();
    expect(text(await c.callTool({ name: 'add', arguments: { a: 1, b: 2 } }))).toBe('3');
    expect(refreshes()).toBe(2);
    mark = upstream.log.length;
    expect(text(await c.callTool({ name: 'add', arguments: { a: 2, b: 2 } }))).toBe('4');
    expect(refreshes()).toBe(3);
    expect(upstream.log.slice(mark).map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(['POST /token 200', 'POST /mcp 200']);
    upstream.setAccessTtl(3600);
  });

  it('asks the user to reconnect once the upstream revoked the connection, and works again after reconnecting', async () => {
    upstream.revokeAll();
    const c = await client().then(
      () => null,
      (e: Error) => e,
    );
    expect(c?.message).toContain(connectUrl());
    expect(upstream.grants.at(-1)).toMatchObject({ grant_type: 'refresh_token', outcome: 'refused' });
    const connections = await server.rest('GET', '/v1/gateway/connections', undefined, user.token);
    expect(connections.body.items).toEqual([expect.objectContaining({ server_id: SERVER_ID, status: 'needs_reconnect' })]);

    const done = await connectThroughBrowser(new ScriptedBrowser(), connectUrl(), user);
    expect(done.status).toBe(200);
    const again = await client();
    expect(text(await again.callTool({ name: 'echo', arguments: { message: 'reconnected' } }))).toBe('upstream says: reconnected');
  });

  it('never gave the upstream a ChittyAuth token: every credential it saw is one it issued', () => {
    const { leaked, jwts } = upstreamSawChittyAuth();
    expect(chittyTokens.length).toBeGreaterThanOrEqual(6);
    expect(leaked).toEqual([]);
    expect(jwts).toEqual([]);
    const presented = upstream.log.filter((r) => r.authorization).map((r) => r.authorization!.replace(/^Bearer /, ''));
    expect(presented.length).toBeGreaterThan(5);
    expect(presented.filter((t) => !upstream.issued.has(t))).toEqual([]);
  });

  it('keeps no upstream token in plaintext in the D1 database files', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else files.push(path);
      }
    };
    walk(join(server.persistTo, 'v3', 'd1'));
    const bytes = files.filter((f) => /\.sqlite(-wal)?$/.test(f)).map((f) => readFileSync(f).toString('latin1'));
    expect(bytes.length).toBeGreaterThan(0);
    // The scan sees the gateway's rows (the upstream's client id is stored as is) …
    expect(bytes.some((b) => b.includes(upstream.grants[0]!.client_id))).toBe(true);
    // … and none of the tokens the upstream issued, access or refresh, current or spent.
    expect(upstream.issued.size).toBeGreaterThanOrEqual(8);
    const found = [...upstream.issued].filter((t) => bytes.some((b) => b.includes(t)));
    expect(found).toEqual([]);
  });
});
