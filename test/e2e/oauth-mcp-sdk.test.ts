/**
 * End to end: the MCP TypeScript SDK's own OAuth client against a real `wrangler dev`. The SDK starts with
 * no credentials, discovers the authorization server from the 401 (RFC 9728 → RFC 8414), registers itself
 * (RFC 7591), sends the user to /oauth/authorize (here a scripted browser signs in and approves), exchanges
 * the code with PKCE, calls tools, and refreshes its token when the server rejects the old one.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-server.mjs';
import { ScriptedOAuthProvider } from '../helpers/mcp-oauth';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';

/** One HTTP exchange the SDK made, as seen through the transport's `fetch`. */
interface Exchange {
  method: string;
  path: string;
  status: number;
  /** Form parameters of a POST to /oauth/token, or the JSON of a POST to /oauth/register. */
  body?: Record<string, unknown>;
  authorization?: string | null;
}

let server: TestServer;
let user: Caller;
let redirectUri: string;
let provider: ScriptedOAuthProvider;
const exchanges: Exchange[] = [];
const clients: Client[] = [];

/** The transport's fetch, recording every request the SDK makes (MCP and OAuth alike). */
const recordingFetch: typeof fetch = async (input, init) => {
  const request = new Request(input, init);
  const url = new URL(request.url);
  let body: Record<string, unknown> | undefined;
  if (request.method === 'POST' && url.pathname === '/oauth/token') body = Object.fromEntries(new URLSearchParams(await request.clone().text()));
  if (request.method === 'POST' && url.pathname === '/oauth/register') body = JSON.parse(await request.clone().text());
  const response = await fetch(request);
  exchanges.push({ method: request.method, path: url.pathname, status: response.status, body, authorization: request.headers.get('authorization') });
  return response;
};

const transport = () => new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { authProvider: provider, fetch: recordingFetch });

/** Exchanges recorded from now on, as "METHOD /path STATUS". */
function recordFrom() {
  const start = exchanges.length;
  return {
    lines: () => exchanges.slice(start).map((e) => `${e.method} ${e.path} ${e.status}`),
    all: () => exchanges.slice(start),
  };
}

async function call(c: Client, name: string, args: Record<string, unknown>): Promise<any> {
  const result = (await c.callTool({ name, arguments: args })) as CallToolResult;
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.structuredContent ?? result.content)}\n${server.logs().slice(-4000)}`);
  return result.structuredContent;
}

beforeAll(async () => {
  server = await startTestServer();
  user = await server.account(['user']);
  // Nothing listens here: the scripted browser only reads the Location that points at it.
  redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
  provider = new ScriptedOAuthProvider(redirectUri, user);
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await server?.stop();
});

// The cases share one provider and run in order: each continues where the previous one left off.
describe('MCP SDK OAuth client against /mcp', () => {
  let code: string;

  it('fails with UnauthorizedError after discovery, registration and the redirect to authorization', async () => {
    const rec = recordFrom();
    const c = new Client({ name: 'oauth-e2e', version: '1.0.0' });
    const error = await c.connect(transport()).then(
      () => null,
      (e: unknown) => e,
    );
    await c.close().catch(() => {});
    expect(error).toBeInstanceOf(UnauthorizedError);

    // MCP authorization: 401 → protected resource metadata (from the challenge) → AS metadata → register.
    expect(rec.lines()).toEqual([
      'POST /mcp 401',
      'GET /.well-known/oauth-protected-resource/mcp 200',
      'GET /.well-known/oauth-authorization-server 200',
      'POST /oauth/register 201',
    ]);
    const [initialize, , , register] = rec.all();
    expect(initialize!.authorization).toBeNull();
    // The SDK asks for the scopes the 401 challenge named.
    expect(register!.body).toMatchObject({ redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', scope: 'mcp:read mcp:write' });

    expect(provider.client?.client_id).toMatch(/^cli_/);
    expect(provider.client).toMatchObject({ issuer: server.url });
    expect(provider.client).not.toHaveProperty('client_secret');
    expect(provider.saved).toBeUndefined();
    expect(provider.trips).toHaveLength(1);

    const { authorizationUrl, trip } = provider.trips[0]!;
    expect(`${authorizationUrl.origin}${authorizationUrl.pathname}`).toBe(`${server.url}/oauth/authorize`);
    expect(Object.fromEntries(authorizationUrl.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: provider.client!.client_id,
      redirect_uri: redirectUri,
      code_challenge_method: 'S256',
      state: provider.states[0],
      resource: `${server.url}/mcp`,
      scope: 'mcp:read mcp:write',
    });
    expect(trip.statuses).toEqual([200, 200, 303]);

    // The redirect back: our redirect URI, with the code, the same state and (RFC 9207) our issuer, once.
    const { location } = trip;
    expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
    expect(location.searchParams.getAll('iss')).toEqual([server.url]);
    expect(location.searchParams.getAll('state')).toEqual([provider.states[0]]);
    expect(location.searchParams.has('error')).toBe(false);
    code = location.searchParams.get('code')!;
    expect(code).toBeTruthy();
  });

  it('finishAuth exchanges the code with the PKCE verifier for tokens bound to /mcp', async () => {
    const rec = recordFrom();
    await transport().finishAuth(code);
    expect(rec.lines().at(-1)).toBe('POST /oauth/token 200');
    const token = rec.all().at(-1)!;
    expect(token.body).toMatchObject({
      grant_type: 'authorization_code',
      code,
      code_verifier: provider.verifier,
      redirect_uri: redirectUri,
      client_id: provider.client!.client_id,
      resource: `${server.url}/mcp`,
    });
    expect(provider.saved).toMatchObject({ token_type: expect.stringMatching(/^bearer$/i), scope: 'mcp:read mcp:write', issuer: server.url });
    expect(provider.saved!.access_token.split('.')).toHaveLength(3);
    expect(provider.saved!.refresh_token).toMatch(/^crt_/);

    // RFC 9068: a JWT access token for this user, this client and the MCP resource.
    const claims = JSON.parse(Buffer.from(provider.saved!.access_token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ iss: server.url, sub: user.chittyId, aud: `${server.url}/mcp`, client_id: provider.client!.client_id, scope: 'mcp:read mcp:write' });

  });

  it('reconnects with the token: tools/list and tools/call succeed', async () => {
    const rec = recordFrom();
    const c = new Client({ name: 'oauth-e2e', version: '1.0.0' });
    await c.connect(transport());
    clients.push(c);
    expect(c.getServerVersion()?.name).toBe('chittyauth');
    expect(rec.all()[0]).toMatchObject({ method: 'POST', path: '/mcp', status: 200, authorization: `Bearer ${provider.saved!.access_token}` });
    // No OAuth traffic: the token was accepted as it is.
    expect(rec.lines().filter((l) => !l.includes(' /mcp '))).toEqual([]);

    const { tools } = await c.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['whoami', 'generate_api_key', 'list_sessions']));
    expect(names).not.toContain('create_account'); // a user, not an admin

    const me = await call(c, 'whoami', {});
    expect(me).toMatchObject({ chitty_id: user.chittyId, credential: 'access_token' });
    expect(me.scopes).toEqual(['mcp:read', 'mcp:write']);

    const key = await call(c, 'generate_api_key', { name: 'made by the MCP SDK over OAuth', scopes: ['mcp:read'] });
    expect(key.api_key).toMatch(/^chitty_/);
    expect(key.chitty_id).toBe(user.chittyId);
    const check = await server.rest('GET', '/v1/accounts/me', undefined, key.api_key);
    expect(check.status).toBe(200);
    expect(check.body).toMatchObject({ chitty_id: user.chittyId, credential: 'api_key', credential_id: key.key_id });
  });

  it('refreshes on a 401 for a rejected access token and retries the call', async () => {
    const c = clients[0]!;
    const before = provider.saved!;
    // The access token is no longer accepted (as when it expired); the refresh token is still good.
    provider.saveTokens({ ...before, access_token: 'not-a-valid-access-token' });

    const rec = recordFrom();
    const me = await call(c, 'whoami', {});
    expect(me).toMatchObject({ chitty_id: user.chittyId, credential: 'access_token' });

    expect(rec.lines()).toEqual([
      'POST /mcp 401',
      'GET /.well-known/oauth-protected-resource/mcp 200',
      'GET /.well-known/oauth-authorization-server 200',
      'POST /oauth/token 200',
      'POST /mcp 200',
    ]);
    const [rejected, , , token, retried] = rec.all();
    expect(rejected!.authorization).toBe('Bearer not-a-valid-access-token');
    expect(token!.body).toMatchObject({ grant_type: 'refresh_token', refresh_token: before.refresh_token, client_id: provider.client!.client_id, resource: `${server.url}/mcp` });

    const after = provider.saved!;
    expect(retried!.authorization).toBe(`Bearer ${after.access_token}`);
    expect(after.access_token).not.toBe(before.access_token);
    // Rotation (OAuth 2.1 §4.3.1): a new refresh token each time.
    expect(after.refresh_token).toMatch(/^crt_/);
    expect(after.refresh_token).not.toBe(before.refresh_token);
    expect(after.issuer).toBe(server.url);
    // No new login: the browser was not sent anywhere.
    expect(provider.trips).toHaveLength(1);

    // The refreshed token keeps working for the next call, with no OAuth traffic.
    const rec2 = recordFrom();
    expect((await call(c, 'list_sessions', {})).items).toBeInstanceOf(Array);
    expect(rec2.lines()).toEqual(['POST /mcp 200']);
  });

  it('refuses a replayed code and revokes the grant behind it', async () => {
    const live = provider.saved!;
    const rec = recordFrom();
    // OAuth 2.1 §4.1.3: a code is single-use; a second redemption revokes what the first one issued.
    await expect(transport().finishAuth(code)).rejects.toThrow(/invalid_grant|already used/i);
    expect(rec.lines().at(-1)).toBe('POST /oauth/token 400');

    const res = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${live.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    await res.body?.cancel();
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });
});
