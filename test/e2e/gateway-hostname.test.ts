/**
 * End to end: the gateway's hostname route, {base32(host:port)}-enc.{GATEWAY_DOMAIN}/mcp, under a real
 * `wrangler dev` with the default GATEWAY_DOMAIN of wrangler.toml (gw.localhost: loopback without DNS setup,
 * RFC 6761 §6.3), in front of the real OAuth-protected upstream of test/helpers/upstream.ts and of the reference
 * "everything" server. curl resolves *.localhost to loopback itself, so the URL /encode returns is fetched as it
 * is; Node's resolver (getaddrinfo) does not here, so the SDK client's fetch carries an undici dispatcher whose
 * DNS lookup answers 127.0.0.1 for names under the gateway domain, as curl and browsers do.
 */
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectThroughBrowser, jwtClaims, loopbackFetch, ScriptedBrowser } from '../helpers/gateway-e2e';
import { ScriptedOAuthProvider } from '../helpers/mcp-oauth';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';
import { startEverything, type EverythingServer } from '../helpers/everything';
import { startUpstream, type Upstream } from '../helpers/upstream';

/** wrangler.toml's default; the test passes no GATEWAY_DOMAIN of its own. */
const GATEWAY_DOMAIN = 'gw.localhost';
const SERVER_ID = 'e2e-host-upstream';
const REDIRECT = 'http://127.0.0.1:1/callback';

let server: TestServer;
let upstream: Upstream;
let everything: EverythingServer;
let user: Caller;
/** http://{label}-enc.gw.localhost:{wrangler port}/mcp, as /v1/gateway/encode gave it */
let hostResource: string;
let provider: ScriptedOAuthProvider;
const chittyTokens: string[] = [];
const clients: Client[] = [];

/** Names under the gateway domain resolve to loopback (where wrangler dev listens); others as usual. */
const loopback = loopbackFetch(GATEWAY_DOMAIN);
const hostFetch = loopback.fetch;

const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

async function tokenFor(resource: string) {
  const p = new ScriptedOAuthProvider(REDIRECT, user);
  expect(await auth(p, { serverUrl: resource, fetchFn: hostFetch })).toBe('REDIRECT');
  expect(await auth(p, { serverUrl: resource, authorizationCode: p.lastCode(), fetchFn: hostFetch })).toBe('AUTHORIZED');
  chittyTokens.push(p.saved!.access_token, p.saved!.refresh_token!);
  return p;
}

async function connectClient() {
  const c = new Client({ name: 'gateway-host-e2e', version: '1.0.0' });
  clients.push(c);
  await c.connect(new StreamableHTTPClientTransport(new URL(hostResource), { authProvider: provider, fetch: hostFetch }));
  return c;
}

beforeAll(async () => {
  [server, upstream, everything] = await Promise.all([startTestServer(), startUpstream(), startEverything()]);
  const admin = await server.admin();
  user = await server.account(['user']);
  const res = await server.rest('POST', '/v1/servers/register', { server_id: SERVER_ID, name: 'E2E hostname upstream', endpoints: { mcp: upstream.mcpUrl }, auth: { type: 'oauth' } }, admin.token);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const domain = new URL(upstream.mcpUrl).host;
  const encoded = await server.rest('GET', `/v1/gateway/encode?domain=${encodeURIComponent(domain)}`, undefined, admin.token);
  expect(encoded.body).toMatchObject({ domain, server_id: SERVER_ID });
  expect(encoded.body.host).toMatch(new RegExp(`^[a-z2-7]+-enc\\.${GATEWAY_DOMAIN.replace(/\./g, '\\.')}$`));
  // A followable URL: the Worker's own scheme and port.
  expect(encoded.body.url).toBe(`http://${encoded.body.host}:${new URL(server.url).port}/mcp`);
  hostResource = encoded.body.url;
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await Promise.all([server?.stop(), upstream?.close(), everything?.stop()]);
  await loopback.close();
});

const run = promisify(execFile);

/** curl, as a person would run it: -s, the status and headers with -i, the body after them. */
async function curl(args: string[]): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const { stdout } = await run('curl', ['-s', '-i', '--max-time', '30', ...args], { maxBuffer: 1 << 20 });
  const split = stdout.indexOf('\r\n\r\n');
  const head = stdout.slice(0, split).split('\r\n');
  const headers = Object.fromEntries(head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(head[0]!.split(' ')[1]), headers, body: stdout.slice(split + 4) };
}

/** The JSON-RPC message of a Streamable HTTP answer (JSON, or the last `data:` of an event stream). */
const rpcOf = (body: string) => JSON.parse(body.trim().startsWith('{') ? body : body.split('\n').filter((l) => l.startsWith('data:')).at(-1)!.slice(5));

describe('gateway hostname route with curl, as the README recipe runs it', () => {
  it('uses wrangler.toml’s default GATEWAY_DOMAIN, a name under localhost', () => {
    expect(readFileSync(join(process.cwd(), 'wrangler.toml'), 'utf8')).toMatch(/^GATEWAY_DOMAIN = "gw\.localhost"$/m);
  });

  it('reaches the upstream at exactly the URL /encode returns, with an API key', async () => {
    const admin = await server.admin();
    const key = await server.apiKey(admin, { name: 'hostname recipe' });
    const auth = ['-H', `authorization: Bearer ${key}`];
    const json = ['-H', 'content-type: application/json'];
    const mcpHeaders = [...auth, ...json, '-H', 'accept: application/json, text/event-stream'];
    const register = await curl([`${server.url}/v1/servers/register`, ...auth, ...json, '-d', JSON.stringify({ server_id: 'everything', name: 'Everything', endpoints: { mcp: everything.url }, auth: { type: 'none' } })]);
    expect(register.status, register.body).toBe(200);

    const domain = new URL(everything.url).host;
    const encoded = await curl([`${server.url}/encode?domain=${domain}`]);
    expect(encoded.status, encoded.body).toBe(200);
    const { url } = JSON.parse(encoded.body) as { url: string };
    expect(url).toMatch(new RegExp(`^http://[a-z2-7]+-enc\\.gw\\.localhost:${new URL(server.url).port}/mcp$`));

    const init = await curl([url, ...mcpHeaders, '-d', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '1' } } })]);
    expect(init.status, init.body).toBe(200);
    expect(rpcOf(init.body).result.serverInfo.name).toMatch(/everything/i);
    const session = init.headers['mcp-session-id'];
    expect(session).toBeTruthy();
    const withSession = [...mcpHeaders, '-H', `mcp-session-id: ${session}`, '-H', 'mcp-protocol-version: 2025-06-18'];
    expect((await curl([url, ...withSession, '-d', JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })])).status).toBe(202);
    const call = await curl([url, ...withSession, '-d', JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'through the hostname route' } } })]);
    expect(call.status, call.body).toBe(200);
    expect(rpcOf(call.body).result.content[0].text).toBe('Echo: through the hostname route');
  });

  it('answers a clear 404 for an encoded host no server is registered on, and for a name under the gateway domain that is not encoded', async () => {
    const port = new URL(server.url).port;
    const unknown = await curl([`${server.url}/encode?domain=nobody.example`]);
    const { url } = JSON.parse(unknown.body) as { url: string };
    const res = await curl([url, '-X', 'POST', '-H', 'content-type: application/json', '-d', '{}']);
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'not_found', message: expect.stringContaining('No MCP server on nobody.example is registered in the portal') });
    const plain = await curl([`http://www.${GATEWAY_DOMAIN}:${port}/mcp`, '-X', 'POST', '-H', 'content-type: application/json', '-d', '{}']);
    expect(plain.status).toBe(404);
    expect(JSON.parse(plain.body).message).toContain(`www.${GATEWAY_DOMAIN} is not a gateway hostname route`);
  });
});

describe('gateway hostname route end to end', () => {
  it('is a protected resource of its own, discovered from the encoded host', async () => {
    const res = await hostFetch(hostResource, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
    const metadataUrl = `${new URL(hostResource).origin}/.well-known/oauth-protected-resource/mcp`;
    expect(res.headers.get('www-authenticate')).toContain(`resource_metadata="${metadataUrl}"`);
    const metadata = await (await hostFetch(metadataUrl)).json();
    expect(metadata).toMatchObject({ resource: hostResource, authorization_servers: [server.url] });
  });

  it('gets a token for the encoded host through OAuth, is told to connect, connects in a browser, then lists and calls tools', async () => {
    provider = await tokenFor(hostResource);
    expect(jwtClaims(provider.saved!.access_token)!.aud).toBe(hostResource);

    const refused = await connectClient().then(
      () => null,
      (e: Error) => e,
    );
    const connectUrl = `${server.url}/gw/${SERVER_ID}/connect`;
    expect(refused?.message).toContain(connectUrl);

    const done = await connectThroughBrowser(new ScriptedBrowser(), connectUrl, user);
    expect(done.status, done.html.slice(0, 500)).toBe(200);
    expect(done.html).toContain('Connected');

    const c = await connectClient();
    expect((await c.listTools()).tools.map((t) => t.name).sort()).toEqual(['add', 'countdown', 'delete_everything', 'echo', 'whoami']);
    expect(text(await c.callTool({ name: 'echo', arguments: { message: 'by hostname' } }))).toBe('upstream says: by hostname');
    expect(upstream.log.filter((r) => r.path === '/mcp' && r.status === 200).length).toBeGreaterThanOrEqual(3);
  });

  it('refuses a token for the path route of the same server on the hostname route', async () => {
    const forPath = await tokenFor(`${server.url}/gw/${SERVER_ID}/mcp`);
    const res = await hostFetch(hostResource, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${forPath.saved!.access_token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('never gave the upstream a ChittyAuth token', () => {
    const log = JSON.stringify(upstream.log) + JSON.stringify(upstream.grants);
    expect(chittyTokens.filter((t) => log.includes(t))).toEqual([]);
    const presented = upstream.log.filter((r) => r.authorization).map((r) => r.authorization!.replace(/^Bearer /, ''));
    expect(presented.length).toBeGreaterThan(0);
    expect(presented.filter((t) => !upstream.issued.has(t))).toEqual([]);
  });
});
