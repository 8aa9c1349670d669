/**
 * End to end: the MCP SDK v2 client (`@modelcontextprotocol/client`) with its PrivateKeyJwtProvider against a real
 * `wrangler dev`. A pre-registered client_credentials client holds only a key pair (its public JWK registered
 * with oauth.clients.register, no secret): the SDK discovers ChittyAuth from /mcp's 401, signs an RFC 7523
 * client assertion, gets a token with client_credentials and calls a tool as the client's own ChittyID.
 */
import { Client, PrivateKeyJwtProvider, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server';

let server: TestServer;
let client: Client | undefined;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await server?.stop();
});

/** What the SDK sends to the token endpoint, read off the wire. */
function recordingFetch(seen: URLSearchParams[]): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    if (new URL(request.url).pathname === '/oauth/token') seen.push(new URLSearchParams(await request.clone().text()));
    return fetch(request);
  };
}

describe('MCP SDK v2 PrivateKeyJwtProvider against /mcp', () => {
  it('authenticates with private_key_jwt, gets a client_credentials token and calls a tool', async () => {
    const admin = await server.admin();
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = 'e2e-key-1';
    const registered = await server.rest(
      'POST',
      '/v1/oauth/clients',
      {
        client_id: 'e2e-signed-agent',
        client_name: 'E2E signed agent',
        redirect_uris: [],
        grant_types: ['client_credentials'],
        scopes: ['mcp:read', 'mcp:write'],
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] },
      },
      admin.token,
    );
    expect(registered.status).toBe(201);
    expect(registered.body.client_secret).toBeNull();

    const seen: URLSearchParams[] = [];
    const provider = new PrivateKeyJwtProvider({
      clientId: 'e2e-signed-agent',
      privateKey: { ...(await exportJWK(privateKey)), kid },
      algorithm: 'ES256',
      scope: 'mcp:read mcp:write',
      expectedIssuer: server.url,
    });
    client = new Client({ name: 'e2e-private-key-jwt', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { authProvider: provider, fetch: recordingFetch(seen) }));

    const [tokenRequest] = seen;
    expect(tokenRequest?.get('grant_type')).toBe('client_credentials');
    expect(tokenRequest?.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    expect(tokenRequest?.get('client_secret')).toBeNull();
    const assertion = JSON.parse(Buffer.from(tokenRequest!.get('client_assertion')!.split('.')[1]!, 'base64url').toString());
    expect(assertion).toMatchObject({ iss: 'e2e-signed-agent', sub: 'e2e-signed-agent' });

    const claims = JSON.parse(Buffer.from(provider.tokens()!.access_token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ iss: server.url, sub: registered.body.chitty_id, aud: `${server.url}/mcp`, client_id: 'e2e-signed-agent', scope: 'mcp:read mcp:write' });

    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toContain('whoami');
    const result = (await client.callTool({ name: 'whoami', arguments: {} })) as { isError?: boolean; structuredContent?: Record<string, unknown> };
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toMatchObject({ chitty_id: registered.body.chitty_id, credential: 'access_token' });
  });
});
