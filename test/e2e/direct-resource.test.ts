/**
 * End to end: ChittyAuth as the authorization server of people's own MCP servers (issue 20). Under `wrangler dev`,
 * two real MCP SDK servers on loopback use the resource-server kit: one on SDK v1 behind Express
 * (`rs.express()`), one on SDK v2 (`createMcpHandler`) behind Hono (`rs.hono()`). Both are registered in the
 * portal as direct resources. The MCP SDK client, given only a server's URL, discovers ChittyAuth from the
 * server's RFC 9728 metadata, registers, signs in and consents (a scripted browser), and calls a tool that sees
 * the user's ChittyID. A token for one server is refused by the other and by ChittyAuth's own /mcp; a revoked
 * grant and removed access stop working within the bound the kit documents (its introspection cache).
 */
import { serve, type ServerType } from '@hono/node-server';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createMcpHandler, McpServer as McpServerV2 } from '@modelcontextprotocol/server';
import express from 'express';
import { Hono } from 'hono';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResourceServer, type Auth, type AuthInfo } from '../../clients/resource-server/index';
import { freePort } from '../../scripts/local-server.mjs';
import { node22Tools } from '../../scripts/node22.mjs';
import { ScriptedOAuthProvider } from '../helpers/mcp-oauth';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';

const INTROSPECTION_CACHE_S = 1;

let server: TestServer;
let admin: Caller;
let user: Caller;
let redirectUri: string;
let originA: string;
let originB: string;
let nodeA: Server;
let nodeB: ServerType;
const clients: Client[] = [];

const whoami = (authInfo: AuthInfo | undefined, name: string) => ({
  content: [{ type: 'text' as const, text: JSON.stringify({ server: name, chitty_id: authInfo?.extra?.chittyId, scopes: authInfo?.scopes, client_id: authInfo?.clientId }) }],
});

/** Server A: MCP SDK v1 over Express, the kit's Node middleware, with introspection for immediate revocation. */
async function startServerA(introspection: { clientId: string; clientSecret: string }) {
  const port = await freePort();
  originA = `http://127.0.0.1:${port}`;
  const rs = createResourceServer({ issuer: server.url, resource: `${originA}/mcp`, scopes: ['notes:read'], resourceName: 'Notes A', introspection: { ...introspection, cacheSeconds: INTROSPECTION_CACHE_S } });
  const app = express();
  app.use(rs.express());
  app.post('/mcp', express.json(), async (req, res) => {
    const mcp = new McpServer({ name: 'notes-a', version: '1.0.0' });
    mcp.registerTool('whoami', { description: 'Who the access token says is calling' }, async (extra) => whoami(extra.authInfo as AuthInfo | undefined, 'a'));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void transport.close());
    await mcp.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  app.all('/mcp', (_req, res) => void res.status(405).set('allow', 'POST').end());
  nodeA = await new Promise((resolve) => {
    const s = app.listen(port, '127.0.0.1', () => resolve(s));
  });
}

/** Server B: MCP SDK v2's createMcpHandler behind Hono, the kit's fetch-shaped middleware, offline checks only. */
async function startServerB() {
  const port = await freePort();
  originB = `http://127.0.0.1:${port}`;
  const rs = createResourceServer({ issuer: server.url, resource: `${originB}/mcp`, scopes: ['notes:read'], resourceName: 'Notes B' });
  const handler = createMcpHandler((ctx) => {
    const mcp = new McpServerV2({ name: 'notes-b', version: '1.0.0' });
    mcp.registerTool('whoami', { description: 'Who the access token says is calling' }, async () => whoami(ctx.authInfo as AuthInfo | undefined, 'b'));
    return mcp;
  });
  const app = new Hono<{ Variables: { auth: Auth } }>();
  app.use('*', rs.hono());
  app.all('/mcp', (c) => handler.fetch(c.req.raw, { authInfo: c.get('auth').authInfo }));
  nodeB = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
}

/** Registers a loopback server in the portal and protects it directly. */
async function registerDirect(serverId: string, origin: string) {
  const reg = await server.rest('POST', '/v1/servers/register', { server_id: serverId, name: `Notes ${serverId}`, endpoints: { mcp: `${origin}/mcp` } }, admin.token);
  expect(reg.status, JSON.stringify(reg.body)).toBe(200);
  return server.rest('PUT', `/v1/servers/${serverId}/direct`, { resources: [`${origin}/mcp`], scopes: [{ name: 'notes:read', description: 'Read your notes', action: 'connect' }, { name: 'notes:write', action: 'call', default: false }], introspection_client_id: serverId === 'notes-a' ? introspectionClient.id : null }, admin.token);
}

let introspectionClient: { id: string; secret: string };

const rawCall = (origin: string, token: string) =>
  fetch(`${origin}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
  });

/** The MCP SDK client's whole journey, from only the server's URL: 401, discovery, registration, login, consent, tools. */
async function connectWithOAuth(origin: string) {
  const provider = new ScriptedOAuthProvider(redirectUri, user);
  const transport = () => new StreamableHTTPClientTransport(new URL(`${origin}/mcp`), { authProvider: provider });
  const first = new Client({ name: 'direct-e2e', version: '1.0.0' });
  await expect(first.connect(transport())).rejects.toBeInstanceOf(UnauthorizedError);
  await first.close().catch(() => {});
  await transport().finishAuth(provider.lastCode());
  const c = new Client({ name: 'direct-e2e', version: '1.0.0' });
  await c.connect(transport());
  clients.push(c);
  return { c, provider };
}

async function callWhoami(c: Client) {
  const result = (await c.callTool({ name: 'whoami', arguments: {} })) as CallToolResult;
  expect(result.isError, JSON.stringify(result)).toBeFalsy();
  return JSON.parse((result.content[0] as { text: string }).text);
}

beforeAll(async () => {
  server = await startTestServer();
  admin = await server.admin();
  user = await server.account(['user']);
  redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
  const client = await server.rest('POST', '/v1/oauth/clients', { client_name: 'Notes A resource server', redirect_uris: [], grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' }, admin.token);
  expect(client.status, JSON.stringify(client.body)).toBe(201);
  introspectionClient = { id: client.body.client_id, secret: client.body.client_secret };
  await startServerA({ clientId: introspectionClient.id, clientSecret: introspectionClient.secret });
  await startServerB();
  expect((await registerDirect('notes-a', originA)).status).toBe(200);
  expect((await registerDirect('notes-b', originB)).status).toBe(200);
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await new Promise((r) => (nodeA ? nodeA.close(r) : r(undefined)));
  await new Promise((r) => (nodeB ? nodeB.close(r) : r(undefined)));
  await server?.stop();
});

describe('a direct resource end to end', () => {
  let tokenA: string;

  it('the portal shows both ways a server is reachable', async () => {
    const res = await server.rest('GET', '/v1/servers/notes-a', undefined, admin.token);
    expect(res.body.reachable).toEqual({ gateway: `${server.url}/gw/notes-a/mcp`, direct: [`${originA}/mcp`] });
  });

  it('the MCP SDK client, given only server A’s URL (SDK v1 + Express), discovers ChittyAuth, signs in and calls a tool', async () => {
    const { c, provider } = await connectWithOAuth(originA);
    const { authorizationUrl } = provider.trips[0]!;
    expect(`${authorizationUrl.origin}${authorizationUrl.pathname}`).toBe(`${server.url}/oauth/authorize`);
    expect(authorizationUrl.searchParams.get('resource')).toBe(`${originA}/mcp`);
    expect(authorizationUrl.searchParams.get('scope')).toBe('notes:read');
    const me = await callWhoami(c);
    expect(me).toEqual({ server: 'a', chitty_id: user.chittyId, scopes: ['notes:read'], client_id: provider.client!.client_id });
    tokenA = provider.saved!.access_token;
    expect(JSON.parse(Buffer.from(tokenA.split('.')[1]!, 'base64url').toString())).toMatchObject({ iss: server.url, aud: `${originA}/mcp`, sub: user.chittyId });
  });

  it('the same with server B (SDK v2 createMcpHandler + Hono)', async () => {
    const { c, provider } = await connectWithOAuth(originB);
    expect(await callWhoami(c)).toMatchObject({ server: 'b', chitty_id: user.chittyId, scopes: ['notes:read'], client_id: provider.client!.client_id });
  });

  it('the MCP Inspector CLI calls server A’s tool with the token', async () => {
    const catalog = mkdtempSync(join(tmpdir(), 'chittyauth-inspector-'));
    try {
      const tools = node22Tools();
      const { stdout } = await promisify(execFile)(tools.node, [tools.inspector, '--cli', `${originA}/mcp`, '--transport', 'http', '--header', `Authorization: Bearer ${tokenA}`, '--method', 'tools/call', '--tool-name', 'whoami'], {
        env: { ...process.env, MCP_CATALOG_PATH: join(catalog, 'mcp.json'), NO_COLOR: '1' },
        timeout: 60_000,
      });
      const result = JSON.parse(stdout);
      expect(JSON.parse(result.content[0].text)).toMatchObject({ server: 'a', chitty_id: user.chittyId });
    } finally {
      rmSync(catalog, { recursive: true, force: true });
    }
  });

  it('a token for server A is refused by server B and by ChittyAuth’s own /mcp', async () => {
    const atB = await rawCall(originB, tokenA);
    expect(atB.status).toBe(401);
    expect(atB.headers.get('www-authenticate')).toMatch(/error="invalid_token", error_description="the access token is not for this server \(aud check failed\)"/);
    const atChittyAuth = await rawCall(server.url, tokenA);
    await atChittyAuth.body?.cancel();
    expect(atChittyAuth.status).toBe(401);
    expect(atChittyAuth.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect((await rawCall(originA, tokenA)).status).toBe(200);
  });

  it('removed connect access stops server A’s calls within its introspection cache (the documented bound)', async () => {
    const closed = await server.rest('PUT', '/v1/servers/notes-a/policy', { access: { view: ['admin', 'user'], connect: ['admin'], call: ['admin'], admin: ['admin'] } }, admin.token);
    expect(closed.status).toBe(200);
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < 5_000) {
      status = (await rawCall(originA, tokenA)).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(401);
    // ChittyAuth's caches (10 s across isolates, at once in this one) and the kit's cache bound the delay.
    expect(Date.now() - started).toBeLessThanOrEqual(INTROSPECTION_CACHE_S * 1000 + 1_000);
    await server.rest('PUT', '/v1/servers/notes-a/policy', { access: { view: ['admin', 'user'], connect: ['admin', 'user'], call: ['admin', 'user'], admin: ['admin'] } }, admin.token);
  });

  it('a user refused by the policy sees why at /oauth/authorize', async () => {
    await server.rest('PUT', '/v1/servers/notes-b/policy', { access: { view: ['admin', 'user'], connect: ['admin'], call: ['admin'], admin: ['admin'] } }, admin.token);
    const provider = new ScriptedOAuthProvider(redirectUri, user);
    const c = new Client({ name: 'direct-e2e', version: '1.0.0' });
    const error = await c.connect(new StreamableHTTPClientTransport(new URL(`${originB}/mcp`), { authProvider: provider })).then(
      () => null,
      (e: unknown) => e,
    );
    expect(String(error)).toMatch(/Access denied|does not allow you to connect/);
  });

  it('a revoked grant stops server A’s calls within its introspection cache', async () => {
    const { provider } = await connectWithOAuth(originA);
    const live = provider.saved!;
    expect((await rawCall(originA, live.access_token)).status).toBe(200);
    const revoked = await fetch(`${server.url}/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: live.refresh_token!, client_id: provider.client!.client_id }) });
    expect(revoked.status).toBe(200);
    await new Promise((r) => setTimeout(r, INTROSPECTION_CACHE_S * 1000 + 100));
    const after = await rawCall(originA, live.access_token);
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toMatch(/error_description="the access token was revoked"/);
  });
});
