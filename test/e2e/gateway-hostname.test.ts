/**
 * End to end: the gateway's hostname route, {base32(host:port)}-enc.{GATEWAY_DOMAIN}/mcp, under a real
 * `wrangler dev`, in front of the real OAuth-protected upstream of test/helpers/upstream.ts. Nothing resolves
 * the test's gateway domain, so the client's fetch carries an undici dispatcher whose DNS lookup answers
 * 127.0.0.1 for it: requests reach wrangler with the encoded Host, as they would through real DNS.
 */
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectThroughBrowser, jwtClaims, ScriptedBrowser } from '../helpers/gateway-e2e';
import { ScriptedOAuthProvider } from '../helpers/mcp-oauth';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';
import { startUpstream, type Upstream } from '../helpers/upstream';

const GATEWAY_DOMAIN = 'gw.e2e.test';
const SERVER_ID = 'e2e-host-upstream';
const REDIRECT = 'http://127.0.0.1:1/callback';

let server: TestServer;
let upstream: Upstream;
let user: Caller;
/** http://{label}-enc.gw.e2e.test:{wrangler port}/mcp */
let hostResource: string;
let provider: ScriptedOAuthProvider;
const chittyTokens: string[] = [];
const clients: Client[] = [];

/** Names under the gateway domain resolve to loopback (where wrangler dev listens); others as usual. */
const agent = new Agent({
  connect: {
    lookup: ((hostname: string, options: { all?: boolean }, callback: (e: Error | null, a: string | LookupAddress[], f?: number) => void) => {
      if (!hostname.endsWith(`.${GATEWAY_DOMAIN}`)) return dnsLookup(hostname, options as never, callback as never);
      return options?.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4);
    }) as never,
  },
});
const hostFetch: typeof fetch = (input, init) => fetch(input, { ...init, dispatcher: agent } as RequestInit);

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
  [server, upstream] = await Promise.all([startTestServer({ vars: { GATEWAY_DOMAIN } }), startUpstream()]);
  const admin = await server.admin();
  user = await server.account(['user']);
  const res = await server.rest('POST', '/v1/servers/register', { server_id: SERVER_ID, name: 'E2E hostname upstream', endpoints: { mcp: upstream.mcpUrl }, auth: { type: 'oauth' } }, admin.token);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const domain = new URL(upstream.mcpUrl).host;
  const encoded = await server.rest('GET', `/v1/gateway/encode?domain=${encodeURIComponent(domain)}`, undefined, admin.token);
  expect(encoded.body).toMatchObject({ domain, server_id: SERVER_ID });
  expect(encoded.body.host).toMatch(new RegExp(`^[a-z2-7]+-enc\\.${GATEWAY_DOMAIN.replace(/\./g, '\\.')}$`));
  hostResource = `http://${encoded.body.host}:${new URL(server.url).port}/mcp`;
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await Promise.all([server?.stop(), upstream?.close()]);
  await agent.close();
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
