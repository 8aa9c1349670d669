/**
 * End to end: oauth4webapi (panva), a strict OAuth 2 / OAuth 2.1 client, against a real `wrangler dev`:
 * resource and authorization server discovery with exact identifier checks, dynamic registration, the
 * authorization code flow with PKCE S256, state and a resource indicator, the RFC 9207 `iss` check,
 * refresh with rotation, and revocation. The access tokens are used at /mcp after each step.
 */
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-server.mjs';
import { authorizeAsBrowser } from '../helpers/oauth-forms';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';

let server: TestServer;
let user: Caller;
let issuer: URL;
let resource: string;
let redirectUri: string;

/**
 * oauth4webapi refuses plain-http endpoints; the server under test is `wrangler dev` on a loopback
 * http address, so every request here opts in with `allowInsecureRequests`.
 */
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let as: oauth.AuthorizationServer;
let client: oauth.Client;
const clientAuth = oauth.None();

/** POST a JSON-RPC tools/list to /mcp with a bearer token. */
async function listTools(accessToken: string): Promise<Response> {
  return fetch(resource, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    signal: AbortSignal.timeout(30_000),
  });
}

async function expectToolsListed(accessToken: string) {
  const res = await listTools(accessToken);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  const body = JSON.parse(text);
  expect(body).toMatchObject({ jsonrpc: '2.0', id: 1 });
  expect(body.result.tools.map((t: { name: string }) => t.name)).toEqual(expect.arrayContaining(['whoami', 'generate_api_key']));
}

beforeAll(async () => {
  server = await startTestServer();
  user = await server.account(['user']);
  issuer = new URL(server.url);
  resource = `${server.url}/mcp`;
  redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
});

afterAll(async () => {
  await server?.stop();
});

// The cases run in order, each using what the one before obtained (as a real client would).
describe('oauth4webapi against /oauth', () => {
  let tokens: oauth.TokenEndpointResponse;
  let refreshed: oauth.TokenEndpointResponse;

  it('discovers the MCP resource and its authorization server with exact identifiers', async () => {
    // RFC 9728 §3.3: the resource in the metadata must equal the resource it was fetched for.
    const rs = await oauth.processResourceDiscoveryResponse(new URL(resource), await oauth.resourceDiscoveryRequest(new URL(resource), insecure));
    expect(rs.authorization_servers).toEqual([server.url]);

    // RFC 8414 §3.3: the issuer in the metadata must equal the issuer it was fetched for.
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
    expect(as.issuer).toBe(server.url);
    expect(as.code_challenge_methods_supported).toEqual(['S256']);
    expect(as.authorization_response_iss_parameter_supported).toBe(true);
    expect(as.registration_endpoint).toBe(`${server.url}/oauth/register`);
    expect(as.revocation_endpoint).toBe(`${server.url}/oauth/revoke`);

    // A client expecting another issuer refuses the same document.
    const other = new URL(`${server.url}/other`);
    await expect(oauth.processDiscoveryResponse(other, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }))).rejects.toThrow(/issuer/);
  });

  it('registers a public client dynamically (201)', async () => {
    const registered = await oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(
        as,
        {
          client_name: 'oauth4webapi e2e',
          redirect_uris: [redirectUri],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
          scope: 'mcp:read mcp:write',
        },
        insecure,
      ),
    );
    expect(registered.client_id).toMatch(/^cli_/);
    expect(registered).not.toHaveProperty('client_secret');
    expect(registered).toMatchObject({ redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' });
    client = { client_id: registered.client_id, token_endpoint_auth_method: 'none' };
  });

  it('runs the authorization code flow with PKCE, state and resource, and checks iss (RFC 9207)', async () => {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: redirectUri,
      scope: 'mcp:read mcp:write',
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      resource,
    }).toString();

    const { location } = await authorizeAsBrowser(url, user, 'approve');
    expect(`${location.origin}${location.pathname}`).toBe(redirectUri);

    // Throws unless iss is present and equals the issuer, and state is the one sent.
    const params = oauth.validateAuthResponse(as, client, location, state);
    expect(params.get('code')).toBeTruthy();
    // The same response fails the checks with another state or another issuer.
    expect(() => oauth.validateAuthResponse(as, client, location, oauth.generateRandomState())).toThrow(/state/);
    const forged = new URL(location);
    forged.searchParams.set('iss', 'https://attacker.example');
    expect(() => oauth.validateAuthResponse(as, client, forged, state)).toThrow(/iss/);

    const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, redirectUri, verifier, { additionalParameters: { resource }, ...insecure });
    tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.scope).toBe('mcp:read mcp:write');
    expect(tokens.expires_in).toBeGreaterThan(0);
    expect(tokens.refresh_token).toMatch(/^crt_/);

    const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ iss: server.url, sub: user.chittyId, aud: resource, client_id: client.client_id });

    await expectToolsListed(tokens.access_token);
  });

  it('refreshes with rotation; the new access token works at /mcp', async () => {
    const response = await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token!, insecure);
    refreshed = await oauth.processRefreshTokenResponse(as, client, response);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.refresh_token).toMatch(/^crt_/);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.scope).toBe('mcp:read mcp:write');
    await expectToolsListed(refreshed.access_token);
  });

  it('revokes the grant on revocation of the refresh token; its access token is refused at once', async () => {
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, clientAuth, refreshed.refresh_token!, insecure));

    // Same isolate: the revocation takes effect immediately, not after the cache window.
    const res = await listTools(refreshed.access_token);
    const body = await res.text();
    expect(res.status, body).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b.*error="invalid_token"/);

    // The refresh token is dead too.
    const again = await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshed.refresh_token!, insecure);
    const error = await oauth.processRefreshTokenResponse(as, client, again).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(oauth.ResponseBodyError);
    expect((error as oauth.ResponseBodyError).error).toBe('invalid_grant');
  });
});
