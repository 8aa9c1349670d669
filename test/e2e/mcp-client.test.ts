/**
 * End to end: a real `wrangler dev` and the MCP SDK's own client over Streamable HTTP, authenticated with an
 * API key created through REST. What an MCP host (Claude, an agent) does, nothing simulated.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';

const SEED_TOOLS = [
  'generate_api_key',
  'validate_api_key',
  'generate_jwt',
  'validate_jwt',
  'check_permission',
  'grant_authorization',
  'list_sessions',
] as const;

let server: TestServer;
let admin: Caller;
let adminKey: string;
let client: Client;
const clients: Client[] = [];

async function connect(token: string): Promise<Client> {
  const c = new Client({ name: 'chittyauth-e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await c.connect(transport);
  clients.push(c);
  return c;
}

/** Calls a tool and insists that it succeeded; returns its structured result. */
async function call(c: Client, name: string, args: Record<string, unknown>): Promise<any> {
  const result = (await c.callTool({ name, arguments: args })) as CallToolResult;
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.structuredContent ?? result.content)}\n${server.logs().slice(-4000)}`);
  expect(result.structuredContent, `${name} returns structuredContent`).toBeTypeOf('object');
  // The text content carries the same result, for clients that ignore structuredContent.
  const text = result.content.find((part) => part.type === 'text');
  expect(text && JSON.parse((text as { text: string }).text)).toEqual(result.structuredContent);
  return result.structuredContent;
}

beforeAll(async () => {
  server = await startTestServer();
  admin = await server.admin();
  adminKey = await server.apiKey(admin);
  expect(adminKey).toMatch(/^chitty_/);
  client = await connect(adminKey);
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await server?.stop();
});

describe('MCP over Streamable HTTP with the SDK client', () => {
  it('initializes as chittyauth', () => {
    expect(client.getServerVersion()?.name).toBe('chittyauth');
    expect(client.getServerCapabilities()?.tools).toBeDefined();
  });

  it('tools/list includes the seed tools, each with input and output schemas', async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining([...SEED_TOOLS]));
    expect(names).toContain('create_account'); // admin sees admin-only tools
    for (const name of SEED_TOOLS) {
      const tool = tools.find((t) => t.name === name)!;
      expect(tool.inputSchema.type).toBe('object');
      expect(tool.outputSchema?.type).toBe('object');
      expect(tool.description).toBeTruthy();
    }
  });

  it('generate_api_key creates a key that works', async () => {
    const out = await call(client, 'generate_api_key', { name: 'made over mcp', scopes: ['mcp:read'] });
    expect(out.api_key).toMatch(/^chitty_/);
    expect(out.chitty_id).toBe(admin.chittyId);
    expect(out.name).toBe('made over mcp');
    expect(out.scopes).toEqual(['mcp:read']);
    expect(out.api_key.startsWith(out.prefix)).toBe(true);
    expect(out.revoked_at).toBeNull();

    const me = await server.rest('GET', '/v1/accounts/me', undefined, out.api_key);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ chitty_id: admin.chittyId, credential: 'api_key', credential_id: out.key_id });
  });

  it('validate_api_key says the REST-made key is valid and whose it is', async () => {
    const out = await call(client, 'validate_api_key', { api_key: adminKey });
    expect(out.valid).toBe(true);
    expect(out.reason).toBeNull();
    expect(out.key.chitty_id).toBe(admin.chittyId);
    expect(adminKey.startsWith(out.key.prefix)).toBe(true);
    expect(out.key).not.toHaveProperty('api_key');

    const bogus = await call(client, 'validate_api_key', { api_key: 'chitty_not-a-real-key' });
    expect(bogus).toMatchObject({ valid: false, reason: 'unknown', key: null });
  });

  it('generate_jwt and validate_jwt round-trip', async () => {
    const audience = 'https://service.example';
    const jwt = await call(client, 'generate_jwt', { claims: { purpose: 'e2e', n: 7 }, audience, expires_in: 600 });
    expect(jwt.token_type).toBe('JWT');
    expect(jwt.token.split('.')).toHaveLength(3);
    expect(Date.parse(jwt.expires_at)).toBeGreaterThan(Date.now());

    const out = await call(client, 'validate_jwt', { token: jwt.token, audience });
    expect(out.valid).toBe(true);
    expect(out.reason).toBeNull();
    expect(out.header).toMatchObject({ kid: jwt.kid });
    expect(out.claims).toMatchObject({ sub: admin.chittyId, iss: server.url, aud: audience, jti: jwt.jti, purpose: 'e2e', n: 7 });

    const wrongAudience = await call(client, 'validate_jwt', { token: jwt.token, audience: 'https://other.example' });
    expect(wrongAudience).toMatchObject({ valid: false, reason: 'wrong_audience' });
  });

  it('check_permission: the admin may generate API keys', async () => {
    const out = await call(client, 'check_permission', { permission: 'api_keys:generate' });
    expect(out).toMatchObject({ allowed: true, chitty_id: admin.chittyId, permission: 'api_keys:generate' });
    expect(out.matched_by).toContain('role:admin');
  });

  it('grant_authorization grants a permission to another account', async () => {
    const other = await server.account(['user']);
    const before = await call(client, 'check_permission', { chitty_id: other.chittyId, permission: 'audit:events:read' });
    expect(before.allowed).toBe(false);

    const grant = await call(client, 'grant_authorization', { chitty_id: other.chittyId, permission: 'audit:events:read' });
    expect(grant).toMatchObject({ chitty_id: other.chittyId, permission: 'audit:events:read', role: null, granted_by: admin.chittyId, expires_at: null });
    expect(grant.grant_id).toBeTruthy();

    const after = await call(client, 'check_permission', { chitty_id: other.chittyId, permission: 'audit:events:read' });
    expect(after.allowed).toBe(true);

    const grants = await server.rest('GET', `/v1/permissions/grants?chitty_id=${encodeURIComponent(other.chittyId)}`, undefined, admin.token);
    expect(grants.status).toBe(200);
    expect(grants.body.items.map((g: { grant_id: string }) => g.grant_id)).toContain(grant.grant_id);
  });

  it('list_sessions shows the REST sign-in session', async () => {
    const out = await call(client, 'list_sessions', {});
    const session = out.items.find((s: { session_id: string }) => s.session_id === admin.sessionId);
    expect(session).toMatchObject({ chitty_id: admin.chittyId, device_name: 'e2e', revoked_at: null });
    // The caller is an API key, not a session.
    expect(session.current).toBe(false);
  });

  it("a user's key sees no admin-only tools and cannot call them", async () => {
    const user = await server.account(['user']);
    const userClient = await connect(await server.apiKey(user));
    const { tools } = await userClient.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['generate_api_key', 'validate_api_key', 'check_permission', 'list_sessions']));
    for (const adminOnly of ['create_account', 'list_accounts', 'disable_account', 'grant_authorization', 'rotate_signing_keys']) {
      expect(names).not.toContain(adminOnly);
    }

    const denied = (await userClient.callTool({
      name: 'create_account',
      arguments: { username: 'should-not-exist', password: 'long enough password' },
    })) as CallToolResult;
    expect(denied.isError).toBe(true);
    expect(denied.structuredContent).toBeUndefined();
    expect(denied._meta).toMatchObject({ 'cc.chitty/error': { code: 'FORBIDDEN', status: 403 } });
    expect(denied.content).toEqual([{ type: 'text', text: expect.stringMatching(/^FORBIDDEN \(403\): /) }]);
  });

  it('/mcp without a token is HTTP 401 with a Bearer challenge', async () => {
    const res = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    await res.body?.cancel();

    const bad = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: 'Bearer chitty_nope' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/^Bearer\b.*error="invalid_token"/);
    await bad.body?.cancel();
  });

  it('the SDK client cannot connect without credentials', async () => {
    const c = new Client({ name: 'anonymous', version: '1.0.0' });
    await expect(c.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)))).rejects.toThrow();
    await c.close().catch(() => {});
  });
});
