import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SELF } from 'cloudflare:test';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { admin, apiKey, ORIGIN, rest, type Caller } from '../../test/workers/helpers';
import { forgetBridgeState } from './bridge';

/**
 * Protocol bridging through /gw/{server}/mcp with the MCP SDK's own clients of both generations: a 2025 client
 * (v1 SDK, v2 default) in front of an upstream that serves only 2026-07-28 (https://modern.example), and a
 * 2026-07-28 client (v2 pinned, v2 auto) in front of 2025-only upstreams (https://stream.example, stateless with
 * SSE answers; https://session.example, with sessions). test/fixtures/third-parties.ts serves them.
 */
let root: Caller;
let key: string;
let n = 0;

const fetchSelf: typeof fetch = (input, init) => SELF.fetch(input instanceof Request ? input : new Request(input, init));

async function registerUpstream(mcp: string) {
  const server_id = `br-${++n}-${crypto.randomUUID().slice(0, 6)}`;
  const res = await rest('POST', '/v1/servers/register', { server_id, name: `Bridged ${n}`, endpoints: { mcp }, auth: { type: 'none' } }, root.token);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return server_id;
}

type Mode = 'v1' | 'v2 default' | 'v2 auto' | 'v2 pinned 2026-07-28';
interface Connected {
  listTools(): Promise<{ tools: { name: string }[] }>;
  callTool(name: string, args: Record<string, unknown>, onprogress?: (p: { progress: number }) => void): Promise<{ isError?: boolean; content: { type: string; text?: string }[] }>;
  version(): string | undefined;
  close(): Promise<void>;
}

async function connect(mode: Mode, serverId: string): Promise<Connected> {
  const url = new URL(`${ORIGIN}/gw/${serverId}/mcp`);
  const requestInit = { headers: { authorization: `Bearer ${key}` } };
  if (mode === 'v1') {
    const client = new V1Client({ name: 'bridge-v1', version: '1.0.0' });
    const transport = new V1Transport(url, { requestInit, fetch: fetchSelf });
    await client.connect(transport);
    return {
      listTools: () => client.listTools(),
      callTool: (name, args, onprogress) => client.callTool({ name, arguments: args }, undefined, onprogress ? { onprogress } : undefined) as never,
      version: () => transport.protocolVersion,
      close: () => client.close(),
    };
  }
  const negotiation = mode === 'v2 auto' ? { versionNegotiation: { mode: 'auto' as const } } : mode === 'v2 pinned 2026-07-28' ? { versionNegotiation: { mode: { pin: '2026-07-28' as const } } } : {};
  const client = new V2Client({ name: 'bridge-v2', version: '1.0.0' }, negotiation);
  await client.connect(new V2Transport(url, { requestInit, fetch: fetchSelf }));
  return {
    listTools: () => client.listTools(),
    callTool: (name, args, onprogress) => client.callTool({ name, arguments: args }, onprogress ? { onprogress } : undefined) as never,
    version: () => client.getNegotiatedProtocolVersion(),
    close: () => client.close(),
  };
}

const text = (r: { content: { text?: string }[] }) => r.content[0]?.text;

beforeAll(async () => {
  root = await admin();
  key = await apiKey(root);
});
beforeEach(() => forgetBridgeState());

describe('a 2025 client in front of an upstream that serves only 2026-07-28', () => {
  for (const mode of ['v1', 'v2 default'] as const) {
    it(`${mode}: initializes, lists, calls (with the tool's Mcp-Param header), streams progress and sees a failing tool fail`, async () => {
      const serverId = await registerUpstream('https://modern.example/mcp');
      const c = await connect(mode, serverId);
      expect(c.version()).toBe('2025-11-25');
      const tools = (await c.listTools()).tools.map((t) => t.name).sort();
      expect(tools).toEqual(['countdown', 'fail', 'locate', 'shout']);
      expect(text(await c.callTool('shout', { message: 'hi' }))).toBe('HI');
      // The upstream refuses a tools/call of locate without Mcp-Param-Region matching the body (-32020).
      expect(text(await c.callTool('locate', { region: 'eu-west' }))).toBe('in eu-west');
      const progress: number[] = [];
      expect(text(await c.callTool('countdown', { steps: 3 }, (p) => progress.push(p.progress)))).toBe('liftoff');
      expect(progress).toEqual([1, 2, 3]);
      const failed = await c.callTool('fail', {});
      expect(failed.isError).toBe(true);
      expect(text(failed)).toBe('upstream tool failed');
      await c.close();

      // Other test files call the same fixture: this test's request is the one with its argument.
      const seen = (await (await fetch('https://modern.example/__requests')).json()) as { method: string; headers: Record<string, string>; body?: string }[];
      const locate = seen.find((r) => r.headers['mcp-name'] === 'locate' && r.body?.includes('eu-west'));
      expect(locate?.headers).toMatchObject({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-param-region': 'eu-west' });
      // Nothing 2025-only reached the upstream after it refused the handshake once.
      expect(seen.filter((r) => r.headers['mcp-session-id'] && r.headers['mcp-protocol-version'] === '2026-07-28')).toEqual([]);
    });
  }

  it('answers initialize for the route from the upstream’s server/discover, and keeps the session sealed', async () => {
    const serverId = await registerUpstream('https://modern.example/mcp');
    const init = await SELF.fetch(`${ORIGIN}/gw/${serverId}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: { elicitation: {} }, clientInfo: { name: 'raw', version: '1' } } }),
    });
    expect(init.status).toBe(200);
    const body = (await init.json()) as { id: number; result: { protocolVersion: string; serverInfo: { name: string }; capabilities: Record<string, unknown> } };
    expect(body).toMatchObject({ id: 7, result: { protocolVersion: '2025-06-18', serverInfo: { name: 'test-modern-upstream' }, capabilities: { tools: {} } } });
    const session = init.headers.get('mcp-session-id')!;
    expect(session).toBeTruthy();
    expect(session).not.toContain('bridge:');
    expect(session).not.toContain('elicitation');

    const send = (headers: Record<string, string>, message: unknown, method = 'POST') =>
      SELF.fetch(`${ORIGIN}/gw/${serverId}/mcp`, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers }, body: method === 'POST' ? JSON.stringify(message) : undefined });
    // The declared capabilities reach the upstream in each request's _meta.
    const list = await send({ 'mcp-session-id': session }, { jsonrpc: '2.0', id: 8, method: 'tools/list', params: {} });
    expect(list.status).toBe(200);
    const seen = (await (await fetch('https://modern.example/__requests')).json()) as { headers: Record<string, string> }[];
    expect(seen.at(-1)!.headers['mcp-method']).toBe('tools/list');
    // Removed in 2026-07-28, answered by the gateway as 2025 defines them.
    expect(await (await send({ 'mcp-session-id': session }, { jsonrpc: '2.0', id: 9, method: 'ping' })).json()).toEqual({ jsonrpc: '2.0', id: 9, result: {} });
    expect((await send({ 'mcp-session-id': session }, { jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
    const batch = (await (await send({ 'mcp-session-id': session }, [{ jsonrpc: '2.0', id: 10, method: 'ping' }])).json()) as { error: { code: number; message: string } };
    expect(batch.error).toMatchObject({ code: -32600 });
    const get = await send({ 'mcp-session-id': session }, undefined, 'GET');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST, DELETE');
    expect((await send({ 'mcp-session-id': session }, undefined, 'DELETE')).status).toBe(204);

    // Another user's key cannot use the session id: it is sealed to the user and route.
    const other = await apiKey(await (await import('../../test/workers/helpers')).user(['admin']));
    const stolen = await SELF.fetch(`${ORIGIN}/gw/${serverId}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session },
      body: JSON.stringify({ jsonrpc: '2.0', id: 11, method: 'tools/list' }),
    });
    expect(stolen.status).toBe(404);
  });
});

describe('a 2026-07-28 client in front of upstreams that serve only 2025', () => {
  for (const mode of ['v2 pinned 2026-07-28', 'v2 auto'] as const) {
    for (const upstream of ['https://stream.example/mcp', 'https://session.example/mcp']) {
      it(`${mode} → ${new URL(upstream).host}: discovers, lists and calls through one held upstream session`, async () => {
        const serverId = await registerUpstream(upstream);
        const c = await connect(mode, serverId);
        expect(c.version()).toBe('2026-07-28');
        const tools = (await c.listTools()).tools.map((t) => t.name);
        expect(tools).toContain('echo');
        expect(text(await c.callTool('echo', { message: 'bridged' }))).toBe('bridged');
        if (upstream.includes('stream')) {
          const progress: number[] = [];
          expect(text(await c.callTool('countdown', { steps: 2 }, (p) => progress.push(p.progress)))).toBe('liftoff');
          expect(progress).toEqual([1, 2]);
        }
        await c.close();
        const seen = (await (await fetch(`${new URL(upstream).origin}/__requests`)).json()) as { headers: Record<string, string> }[];
        // Each request after the handshake speaks 2025 to the upstream.
        expect(seen.at(-1)!.headers['mcp-protocol-version']).toMatch(/^2025-/);
      });
    }
  }

  it('answers server/discover for the route from the upstream’s initialize, with every version it serves', async () => {
    const serverId = await registerUpstream('https://session.example/mcp');
    const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' } };
    const res = await SELF.fetch(`${ORIGIN}/gw/${serverId}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'server/discover' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: meta } }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { result: Record<string, unknown> };
    expect(body.result).toMatchObject({ supportedVersions: ['2026-07-28', '2025-11-25', '2025-06-18', '2025-03-26'], resultType: 'complete', cacheScope: 'private', capabilities: { tools: {} } });
  });
});

describe('what cannot cross the bridge is refused clearly', () => {
  it('a 2026-07-28 input_required result reaches a 2025 client as an error naming why', async () => {
    const serverId = await registerUpstream('https://mrtr.example/mcp');
    const c = await connect('v1', serverId);
    expect((await c.listTools()).tools.map((t) => t.name)).toEqual(['confirm']);
    const error = await c.callTool('confirm', {}).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.message).toContain('asked for more input');
    expect(error?.message).toContain('use a 2026-07-28 client');
    await c.close();
  });

  it('a 2025 upstream’s request to the client during a 2026-07-28 call is answered -32601 for the client, and the call completes', async () => {
    const serverId = await registerUpstream('https://session.example/mcp');
    // The client declares elicitation (a 2026 client answers it within input_required results), so the upstream asks.
    const client = new V2Client({ name: 'bridge-v2', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities: { elicitation: {} } });
    await client.connect(new V2Transport(new URL(`${ORIGIN}/gw/${serverId}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } }, fetch: fetchSelf }));
    const result = (await client.callTool({ name: 'ask', arguments: {} })) as { isError?: boolean; content: { text?: string }[] };
    expect(result.isError).toBe(true);
    expect(text(result)).toContain('elicitation/create cannot be relayed to this client');
    await client.close();
  });

  it('re-opens the upstream session when the upstream forgot it (404), without the client noticing', async () => {
    const serverId = await registerUpstream('https://session.example/mcp');
    const c = await connect('v2 pinned 2026-07-28', serverId);
    expect(text(await c.callTool('echo', { message: 'one' }))).toBe('one');
    await fetch('https://session.example/__forget', { method: 'POST' });
    expect(text(await c.callTool('echo', { message: 'two' }))).toBe('two');
    const seen = (await (await fetch('https://session.example/__requests')).json()) as { body?: string }[];
    expect(seen.filter((r) => r.body?.includes('"initialize"')).length).toBeGreaterThanOrEqual(2);
    await c.close();
  });

  it('keeps the portal’s policy on bridged calls: a denied tool is hidden and refused', async () => {
    const serverId = await registerUpstream('https://modern.example/mcp');
    const policy = await rest('PUT', `/v1/servers/${serverId}/policy`, { access: { view: ['admin'], connect: ['admin'], call: ['admin'], admin: ['admin'] }, tools: [{ tool: 'shout', effect: 'deny', role: 'admin' }] }, root.token);
    expect(policy.status, JSON.stringify(policy.body)).toBe(200);
    for (const mode of ['v1', 'v2 pinned 2026-07-28'] as const) {
      const c = await connect(mode, serverId);
      expect((await c.listTools()).tools.map((t) => t.name)).not.toContain('shout');
      const error = await c.callTool('shout', { message: 'x' }).then(
        () => null,
        (e: Error) => e,
      );
      expect(error?.message).toContain('Tool shout is not allowed for you');
      await c.close();
    }
  });
});
