/**
 * End to end: every client generation through every route kind to upstreams of both generations, under a real
 * `wrangler dev`.
 *
 * Upstreams, each behind its own OAuth 2.1 authorization server on loopback (test/helpers/upstream.ts):
 * - "everything": the reference `@modelcontextprotocol/server-everything` (MCP 2025-11-25, with sessions);
 * - "modern": a v2-SDK server that serves only 2026-07-28 (`createMcpHandler(..., { legacy: 'reject' })`).
 * Clients: the v1 SDK, the v2 SDK by default, in `auto` mode and pinned to 2026-07-28. Routes: the path route
 * /gw/{id}/mcp and the hostname route {base32(host:port)}-enc.{GATEWAY_DOMAIN}/mcp. Each cell lists tools (the
 * policy's denied tool hidden), calls a tool that streams progress, is refused the denied tool, and sees a
 * failing upstream call as an error result. Where client and upstream differ the gateway bridges them
 * (server/gateway/bridge.ts).
 */
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEverything, type EverythingServer } from '../helpers/everything';
import { connectThroughBrowser, loopbackFetch, ScriptedBrowser } from '../helpers/gateway-e2e';
import { ScriptedOAuthProvider } from '../helpers/mcp-oauth';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';
import { startUpstream, type Upstream } from '../helpers/upstream';

const GATEWAY_DOMAIN = 'gw.matrix.test';
const REDIRECT = 'http://127.0.0.1:1/callback';

/** Names under the gateway domain resolve to loopback (where wrangler dev listens); others as usual. */
const loopback = loopbackFetch(GATEWAY_DOMAIN);
const hostFetch = loopback.fetch;

interface Target {
  id: string;
  name: string;
  /** The tool the portal's policy denies users. */
  denied: string;
  /** A tool that reports progress, with its arguments. */
  progress: [string, Record<string, unknown>];
  /** A call the upstream answers with an error result, and a fragment of its text. */
  failing: [string, Record<string, unknown>, string];
  /** A tool every user may call. */
  allowed: string;
}

const TARGETS: Target[] = [
  { id: 'everything', name: 'Everything (2025-11-25)', denied: 'get-env', progress: ['trigger-long-running-operation', { duration: 0.3, steps: 3 }], failing: ['get-resource-reference', { resourceType: 'Text', resourceId: -1 }, 'Invalid resourceId'], allowed: 'echo' },
  { id: 'modern', name: 'Modern (2026-07-28 only)', denied: 'delete_everything', progress: ['countdown', { steps: 3 }], failing: ['fail', {}, 'upstream tool failed'], allowed: 'echo' },
];
const MODES = ['v1', 'v2 default', 'v2 auto', 'v2 pinned 2026-07-28'] as const;
type Mode = (typeof MODES)[number];
/** What each client ends up speaking, whatever the upstream speaks: the gateway serves every version. */
const SPOKEN: Record<Mode, string> = { v1: '2025-11-25', 'v2 default': '2025-11-25', 'v2 auto': '2026-07-28', 'v2 pinned 2026-07-28': '2026-07-28' };

let server: TestServer;
let everything: EverythingServer;
const upstreams: Record<string, Upstream> = {};
let user: Caller;
/** The ChittyAuth access token of each route (resource URL → token). */
const tokens = new Map<string, string>();
const routes: { target: Target; kind: 'path' | 'hostname'; url: string }[] = [];

interface Connected {
  tools(): Promise<string[]>;
  call(name: string, args: Record<string, unknown>, onprogress?: (p: { progress: number }) => void): Promise<{ isError?: boolean; content: { text?: string }[] }>;
  version(): string | undefined;
  close(): Promise<void>;
}

async function connect(mode: Mode, url: string): Promise<Connected> {
  const requestInit = { headers: { authorization: `Bearer ${tokens.get(url)}` } };
  if (mode === 'v1') {
    const client = new V1Client({ name: 'matrix-v1', version: '1.0.0' });
    const transport = new V1Transport(new URL(url), { requestInit, fetch: hostFetch });
    await client.connect(transport);
    return {
      tools: async () => (await client.listTools()).tools.map((t) => t.name),
      call: (name, args, onprogress) => client.callTool({ name, arguments: args }, undefined, onprogress ? { onprogress, timeout: 30_000 } : { timeout: 30_000 }) as never,
      version: () => transport.protocolVersion,
      close: () => client.close(),
    };
  }
  const negotiation = mode === 'v2 auto' ? { versionNegotiation: { mode: 'auto' as const } } : mode === 'v2 pinned 2026-07-28' ? { versionNegotiation: { mode: { pin: '2026-07-28' as const } } } : {};
  const client = new V2Client({ name: 'matrix-v2', version: '1.0.0' }, negotiation);
  await client.connect(new V2Transport(new URL(url), { requestInit, fetch: hostFetch }));
  return {
    tools: async () => (await client.listTools()).tools.map((t) => t.name),
    call: (name, args, onprogress) => client.callTool({ name, arguments: args }, { timeout: 30_000, ...(onprogress ? { onprogress } : {}) }) as never,
    version: () => client.getNegotiatedProtocolVersion(),
    close: () => client.close(),
  };
}

async function tokenFor(resource: string) {
  const p = new ScriptedOAuthProvider(REDIRECT, user);
  expect(await auth(p, { serverUrl: resource, fetchFn: hostFetch })).toBe('REDIRECT');
  expect(await auth(p, { serverUrl: resource, authorizationCode: p.lastCode(), fetchFn: hostFetch })).toBe('AUTHORIZED');
  tokens.set(resource, p.saved!.access_token);
}

beforeAll(async () => {
  [server, everything] = await Promise.all([startTestServer({ vars: { GATEWAY_DOMAIN } }), startEverything()]);
  [upstreams.everything, upstreams.modern] = await Promise.all([startUpstream({ serve: { relayTo: everything.url }, resourceName: 'Everything' }), startUpstream({ serve: 'v2-modern', resourceName: 'Modern' })]);
  const admin = await server.admin();
  user = await server.account(['user']);
  for (const target of TARGETS) {
    const upstream = upstreams[target.id]!;
    const registered = await server.rest('POST', '/v1/servers/register', { server_id: `matrix-${target.id}`, name: target.name, endpoints: { mcp: upstream.mcpUrl }, auth: { type: 'oauth' } }, admin.token);
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);
    target.id = `matrix-${target.id}`;
    const policy = await server.rest('PUT', `/v1/servers/${target.id}/policy`, {
      access: { view: ['admin', 'user'], connect: ['admin', 'user'], call: ['admin', 'user'], admin: ['admin'] },
      tools: [{ tool: target.denied, effect: 'deny', role: 'user' }],
    }, admin.token);
    expect(policy.status).toBe(200);
    // The user connects the upstream once (its own OAuth consent); both routes of the server use it.
    const done = await connectThroughBrowser(new ScriptedBrowser(), `${server.url}/gw/${target.id}/connect`, user);
    expect(done.html).toContain('Connected');
    const encoded = await server.rest('GET', `/v1/gateway/encode?domain=${encodeURIComponent(new URL(upstream.mcpUrl).host)}`, undefined, admin.token);
    expect(encoded.body.server_id).toBe(target.id);
    routes.push({ target, kind: 'path', url: `${server.url}/gw/${target.id}/mcp` }, { target, kind: 'hostname', url: `http://${encoded.body.host}:${new URL(server.url).port}/mcp` });
  }
  for (const r of routes) await tokenFor(r.url);
}, 180_000);

afterAll(async () => {
  await Promise.all([server?.stop(), everything?.stop(), ...Object.values(upstreams).map((u) => u.close())]);
  await loopback.close();
});

describe('the gateway matrix: client generations × upstream generations × route kinds', () => {
  it('the portal’s health check sees a 2025 upstream ready with the version it speaks (server/portal/servers.test.ts: a 2026-only one)', async () => {
    const admin = await server.admin();
    const res = await server.rest('POST', '/v1/servers/register', { server_id: 'matrix-open-everything', name: 'Everything, open', endpoints: { mcp: everything.url }, auth: { type: 'none' } }, admin.token);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.server).toMatchObject({ status: 'ready', protocol_version: '2025-11-25' });
  });

  for (const targetId of ['everything', 'modern']) {
    for (const kind of ['path', 'hostname'] as const) {
      for (const mode of MODES) {
        it(`${mode} → ${targetId} via the ${kind} route`, async () => {
          const route = routes.find((r) => r.target.id === `matrix-${targetId}` && r.kind === kind)!;
          const { target } = route;
          const c = await connect(mode, route.url);
          try {
            expect(c.version()).toBe(SPOKEN[mode]);
            const tools = await c.tools();
            expect(tools).toContain(target.allowed);
            expect(tools).toContain(target.progress[0]);
            expect(tools).not.toContain(target.denied);

            const progress: number[] = [];
            const streamed = await c.call(target.progress[0], target.progress[1], (p) => progress.push(p.progress));
            expect(streamed.isError ?? false).toBe(false);
            expect(progress).toEqual([1, 2, 3]);

            const refused = await c.call(target.denied, {}).then(
              (r) => ({ result: r, error: null }),
              (e: Error) => ({ result: null, error: e }),
            );
            expect(refused.result).toBeNull();
            expect(refused.error?.message).toContain(`Tool ${target.denied} is not allowed for you`);

            const failed = await c.call(target.failing[0], target.failing[1]);
            expect(failed.isError).toBe(true);
            expect(failed.content.map((p) => p.text).join(' ')).toContain(target.failing[2]);
          } finally {
            await c.close();
          }
        });
      }
    }
  }
});
