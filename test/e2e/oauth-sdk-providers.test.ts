/**
 * End to end: the MCP SDK v2 client (`@modelcontextprotocol/client`) with its OAuth extension providers against a
 * real `wrangler dev`.
 * - PrivateKeyJwtProvider: a pre-registered client_credentials client holds only a key pair (its public JWK
 *   registered with oauth.clients.register, no secret); the SDK discovers ChittyAuth from /mcp's 401, signs an
 *   RFC 7523 client assertion, gets a token and calls a tool as the client's own ChittyID.
 * - CrossAppAccessProvider (enterprise-managed authorization): the test plays the enterprise IdP (a trusted issuer
 *   registered with oauth.idps.register) and hands the SDK an ID-JAG; the SDK exchanges it with the jwt-bearer grant
 *   and calls a tool as the user the ID-JAG names.
 */
import { Client, CrossAppAccessProvider, PrivateKeyJwtProvider, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server';

let server: TestServer;
const open: Client[] = [];

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  for (const c of open) await c.close().catch(() => {});
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
    const client = new Client({ name: 'e2e-private-key-jwt', version: '1.0.0' });
    open.push(client);
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

describe('MCP SDK v2 CrossAppAccessProvider (enterprise-managed authorization) against /mcp', () => {
  it('exchanges an ID-JAG from a trusted IdP with the jwt-bearer grant and calls a tool as the user it names', async () => {
    const admin = await server.admin();
    const user = await server.account(['user']);
    const idp = await generateKeyPair('RS256', { extractable: true });
    const issuer = 'https://idp.e2e.example';
    const client = await server.rest('POST', '/v1/oauth/clients', { client_id: 'e2e-enterprise-agent', client_name: 'E2E enterprise agent', redirect_uris: [], grant_types: ['urn:ietf:params:oauth:grant-type:jwt-bearer'], token_endpoint_auth_method: 'client_secret_basic' }, admin.token);
    expect(client.status).toBe(201);
    const trusted = await server.rest('POST', '/v1/oauth/idps', { issuer, jwks: { keys: [{ ...(await exportJWK(idp.publicKey)), kid: 'idp-1', alg: 'RS256' }] }, client_ids: ['e2e-enterprise-agent'], account_claim: 'sub' }, admin.token);
    expect(trusted.status).toBe(201);

    const seen: URLSearchParams[] = [];
    const contexts: { authorizationServerUrl: string; resourceUrl: string; scope?: string }[] = [];
    const provider = new CrossAppAccessProvider({
      clientId: 'e2e-enterprise-agent',
      clientSecret: client.body.client_secret,
      expectedIssuer: server.url,
      // The IdP's token exchange (RFC 8693), played here: an ID-JAG for this authorization server and resource.
      assertion: async (ctx) => {
        contexts.push(ctx);
        const now = Math.floor(Date.now() / 1000);
        return new SignJWT({ sub: user.username, client_id: 'e2e-enterprise-agent', resource: String(ctx.resourceUrl), scope: 'mcp:read', jti: crypto.randomUUID() })
          .setProtectedHeader({ alg: 'RS256', kid: 'idp-1', typ: 'oauth-id-jag+jwt' })
          .setIssuer(issuer)
          .setAudience(String(ctx.authorizationServerUrl))
          .setIssuedAt(now)
          .setExpirationTime(now + 300)
          .sign(idp.privateKey);
      },
    });
    const mcp = new Client({ name: 'e2e-cross-app-access', version: '1.0.0' });
    open.push(mcp);
    await mcp.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { authProvider: provider, fetch: recordingFetch(seen) }));

    expect(contexts).toHaveLength(1);
    expect(String(contexts[0]!.resourceUrl)).toBe(`${server.url}/mcp`);
    const [tokenRequest] = seen;
    expect(tokenRequest?.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
    const claims = JSON.parse(Buffer.from(provider.tokens()!.access_token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ iss: server.url, sub: user.chittyId, aud: `${server.url}/mcp`, client_id: 'e2e-enterprise-agent', scope: 'mcp:read' });

    const result = (await mcp.callTool({ name: 'whoami', arguments: {} })) as { isError?: boolean; structuredContent?: Record<string, unknown> };
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toMatchObject({ chitty_id: user.chittyId, credential: 'access_token' });
  });
});
