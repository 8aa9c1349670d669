/**
 * End to end: MCP over WebSocket at /mcp under `wrangler dev`, with the `ws` package (what Node MCP clients use;
 * it sends an Authorization header on the upgrade). A real MCP SDK client (v1, and v2 pinned to 2026-07-28)
 * runs over the socket through a small Transport: it lists tools, calls one that succeeds and one that fails. The
 * upgrade is refused, as an HTTP answer, without a valid credential; revoking the API key closes the socket
 * within a second (a correctness bound of issue 11, measured from the revocation request).
 */
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Client as V2Client } from '@modelcontextprotocol/client';
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WebSocketTransport } from '../helpers/ws-transport';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';

let server: TestServer;
let admin: Caller;
let adminKey: string;
const sockets: WebSocket[] = [];

const wsUrl = (query = '') => `${server.url.replace(/^http/, 'ws')}/mcp${query}`;

/** One JSON-RPC message per text frame, as the server speaks it; what an SDK Client needs of a transport. */
/** Opens a socket; resolves when it is open, or rejects with the HTTP answer that refused the upgrade. */
function open(options: { query?: string; headers?: Record<string, string>; protocols?: string[] } = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(options.query), options.protocols ?? ['mcp'], { headers: options.headers ?? {} });
    sockets.push(ws);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => reject(Object.assign(new Error(`refused: HTTP ${res.statusCode}`), { status: res.statusCode, headers: res.headers, body })));
    });
    ws.once('error', reject);
  });
}

const refusal = (promise: Promise<unknown>) => promise.then(() => expect.unreachable('the upgrade was accepted'), (e: { status: number; headers: Record<string, string>; body: string }) => e);

const closedOf = (ws: WebSocket) => new Promise<{ code: number; reason: string; at: number }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason), at: Date.now() })));

beforeAll(async () => {
  server = await startTestServer();
  admin = await server.admin();
  adminKey = await server.apiKey(admin);
});

afterAll(async () => {
  for (const ws of sockets) ws.terminate();
  await server?.stop();
});

describe('MCP over WebSocket at /mcp, before the upgrade', () => {
  it('is refused with the 401 challenge of the HTTP door without a credential or with a bad one', async () => {
    const none = await refusal(open());
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toContain(`resource_metadata="${server.url}/.well-known/oauth-protected-resource/mcp"`);
    const bad = await refusal(open({ headers: { authorization: 'Bearer chitty_not-a-real-key' } }));
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toContain('error="invalid_token"');
    const badProtocol = await refusal(open({ protocols: ['mcp', 'bearer.chitty_not-a-real-key'] }));
    expect(badProtocol.status).toBe(401);
  });

  it('is refused with a token in the URL, from a foreign Origin, and without the mcp subprotocol', async () => {
    const inUrl = await refusal(open({ query: `?access_token=${adminKey}` }));
    expect(inUrl.status).toBe(400);
    expect(inUrl.headers['www-authenticate']).toContain('error="invalid_request"');
    const foreign = await refusal(open({ headers: { authorization: `Bearer ${adminKey}`, origin: 'https://evil.example' } }));
    expect(foreign.status).toBe(403);
    const noMcp = await refusal(open({ headers: { authorization: `Bearer ${adminKey}` }, protocols: ['graphql-ws'] }));
    expect(noMcp.status).toBe(400);
  });
});

describe('MCP over WebSocket at /mcp with a credential', () => {
  it('serves the v1 SDK client (initialize, 2025-11-25): tools listed, a call that succeeds and one that fails with the contract error', async () => {
    const ws = await open({ headers: { authorization: `Bearer ${adminKey}` } });
    expect(ws.protocol).toBe('mcp');
    const client = new V1Client({ name: 'e2e-ws-v1', version: '1.0.0' });
    const transport = new WebSocketTransport(ws);
    await client.connect(transport);
    expect(transport.received.find((m) => m.result?.protocolVersion)?.result.protocolVersion).toBe('2025-11-25');
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['whoami', 'get_account', 'revoke_api_key']));
    const me = await client.callTool({ name: 'whoami', arguments: {} });
    expect(me.isError ?? false).toBe(false);
    expect(me.structuredContent).toMatchObject({ chitty_id: admin.chittyId, credential: 'api_key' });
    const failed = await client.callTool({ name: 'get_account', arguments: { chitty_id: 'CHITTY-PEO-ZZZZZZZZZZ-ZZZ' } });
    expect(failed.isError).toBe(true);
    expect(JSON.stringify(failed.content)).toContain('NOT_FOUND (404)');
    await client.close();
  });

  it('serves the v2 SDK client pinned to 2026-07-28 (a _meta envelope per request), with the token as a bearer.<token> subprotocol', async () => {
    const ws = await open({ protocols: ['mcp', `bearer.${adminKey}`] });
    expect(ws.protocol).toBe('mcp');
    const client = new V2Client({ name: 'e2e-ws-v2', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await client.connect(new WebSocketTransport(ws) as never);
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('whoami');
    const me = await client.callTool({ name: 'whoami', arguments: {} });
    expect(me.structuredContent).toMatchObject({ chitty_id: admin.chittyId });
    await client.close();
  });

  it('answers protocol-level ping frames (RFC 6455 §5.5.2)', async () => {
    const ws = await open({ headers: { authorization: `Bearer ${adminKey}` } });
    const pong = new Promise<void>((resolve) => ws.once('pong', () => resolve()));
    ws.ping();
    await pong;
    ws.close(1000, 'done');
  });

  it('closes the socket with 4401 within a second of its API key being revoked', async () => {
    const someone = await server.account(['user']);
    const created = await server.rest('POST', '/v1/api-keys', { name: 'ws e2e key' }, someone.token);
    expect(created.status).toBe(201);
    const ws = await open({ headers: { authorization: `Bearer ${created.body.api_key}` } });
    const client = new V1Client({ name: 'e2e-ws-revoked', version: '1.0.0' });
    await client.connect(new WebSocketTransport(ws));
    expect((await client.callTool({ name: 'whoami', arguments: {} })).isError ?? false).toBe(false);

    const closed = closedOf(ws);
    const revokedAt = Date.now();
    expect((await server.rest('DELETE', `/v1/api-keys/${created.body.key_id}`, undefined, someone.token)).status).toBe(200);
    const { code, reason, at } = await closed;
    expect(code).toBe(4401);
    expect(reason).toBe('credential revoked');
    console.info(`socket closed ${at - revokedAt} ms after the revocation request was sent`);
    expect(at - revokedAt).toBeLessThan(1000);
    // And it cannot come back.
    expect((await refusal(open({ headers: { authorization: `Bearer ${created.body.api_key}` } }))).status).toBe(401);
  });
});
