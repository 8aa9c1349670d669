import { SELF } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../crypto/hash';
import { admin, auditHead, auditSince, count, direct, mcp, ORIGIN, query } from '../../test/workers/helpers';
import { authorizeAsBrowser, authorizeUrl, Browser, MCP_RESOURCE, pkcePair, REDIRECT, registerClient, token } from '../../test/workers/oauth-helpers';

/**
 * Who a client is: RFC 7591 dynamic registration at /oauth/register, and Client ID Metadata Documents
 * (https client_ids fetched from the client's own site; vitest.config.ts serves the documents of https://client.example).
 */
beforeAll(async () => {
  await admin();
});

const register = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  SELF.fetch(`${ORIGIN}/oauth/register`, { method: 'POST', headers, body }).then(async (res) => ({ status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> }));

describe('/oauth/register', () => {
  it('registers a public client: 201 with a client_id and no secret', async () => {
    const seq = await auditHead();
    const res = await registerClient({ token_endpoint_auth_method: 'none' });
    expect(res.status).toBe(201);
    expect(res.body.client_id).toMatch(/^cli_/);
    expect(res.body).not.toHaveProperty('client_secret');
    expect(res.body).toMatchObject({ redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none' });
    const [row] = await query('SELECT * FROM oauth_clients WHERE client_id = ?', res.body.client_id);
    expect(row).toMatchObject({ kind: 'dynamic', client_secret_hash: null });
    expect(row!.expires_at).toBeTruthy(); // an unused registration expires
    expect((await auditSince(seq)).map((e) => [e.action, e.target])).toEqual([['oauth.register', res.body.client_id]]);
  });

  it.each([
    ['client_secret_basic', { token_endpoint_auth_method: 'client_secret_basic' }],
    ['client_secret_post', { token_endpoint_auth_method: 'client_secret_post' }],
    ['no method named (client_secret_basic by default)', { token_endpoint_auth_method: undefined }],
  ])('returns a secret once for a confidential client (%s) and stores only its hash', async (_, meta) => {
    const seq = await auditHead();
    const res = await registerClient(meta);
    expect(res.status).toBe(201);
    const secret = res.body.client_secret as string;
    expect(secret).toMatch(/^cs_[A-Za-z0-9]{40,}$/);
    const [row] = await query('SELECT * FROM oauth_clients WHERE client_id = ?', res.body.client_id);
    expect(row!.client_secret_hash).toBe(await sha256Hex(secret));
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(JSON.stringify(await auditSince(seq))).not.toContain(secret);
  });

  it('lets a confidential client authenticate with its secret and refuses a wrong one', async () => {
    const c = (await registerClient({ token_endpoint_auth_method: 'client_secret_post' })).body;
    const flow = await authorizeAsBrowser({ clientId: c.client_id });
    const base = { grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: c.client_id, redirect_uri: REDIRECT };
    const wrong = await token({ ...base, client_secret: `${c.client_secret}x` });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
    expect((await token({ ...base, client_secret: c.client_secret })).status).toBe(200);
  });

  it.each([
    ['an http redirect_uri that is not loopback', { redirect_uris: ['http://app.example/callback'] }, 'invalid_redirect_uri'],
    ['a redirect_uri with a fragment', { redirect_uris: ['https://app.example/callback#frag'] }, 'invalid_redirect_uri'],
    ['a javascript: redirect_uri', { redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri'],
    ['a private scheme that is not reverse-DNS', { redirect_uris: ['myapp://callback'] }, 'invalid_redirect_uri'],
    ["another callback on Cursor's scheme", { redirect_uris: ['cursor://anysphere.cursor-mcp/oauth/elsewhere'] }, 'invalid_redirect_uri'],
    ['a relative redirect_uri', { redirect_uris: ['/callback'] }, 'invalid_redirect_uri'],
    ['no redirect_uri', { redirect_uris: [] }, 'invalid_redirect_uri'],
    ['redirect_uris that are not strings', { redirect_uris: [42] }, 'invalid_client_metadata'],
    ['an unknown grant type', { grant_types: ['authorization_code', 'urn:example:magic'] }, 'invalid_client_metadata'],
    ['the implicit grant', { grant_types: ['implicit'] }, 'invalid_client_metadata'],
    ['client_credentials (only for pre-registered clients)', { grant_types: ['client_credentials'] }, 'invalid_client_metadata'],
    ['response_types token', { response_types: ['token'] }, 'invalid_client_metadata'],
    ['an unsupported auth method', { token_endpoint_auth_method: 'client_secret_jwt' }, 'invalid_client_metadata'],
    ['private_key_jwt without keys (server/oauth/oauth.assertion.test.ts has the rest)', { token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata'],
    ['an unknown scope', { scope: 'mcp:read admin' }, 'invalid_client_metadata'],
    ['an http logo_uri', { logo_uri: 'http://app.example/logo.png' }, 'invalid_client_metadata'],
  ])('refuses 400 and stores nothing for %s', async (_, meta, error) => {
    const before = await count('oauth_clients');
    const res = await registerClient(meta);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe(error);
    expect(res.body.error_description).toEqual(expect.any(String));
    expect(await count('oauth_clients')).toBe(before);
  });

  it.each([
    ['a body that is not JSON', 'client_name=x&redirect_uris=y', { 'content-type': 'application/json' }, 'invalid_client_metadata'],
    ['a JSON array', '[]', { 'content-type': 'application/json' }, 'invalid_client_metadata'],
    ['a form body', 'redirect_uris=https%3A%2F%2Fapp.example%2Fcb', { 'content-type': 'application/x-www-form-urlencoded' }, 'invalid_request'],
  ])('refuses 400 %s', async (_, body, headers, error) => {
    const before = await count('oauth_clients');
    const res = await register(body, headers);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe(error);
    expect(await count('oauth_clients')).toBe(before);
  });

  it('refuses the 21st registration from one address within the hour with 429, and not other addresses', async () => {
    const from = (ip: string) => registerClient({ token_endpoint_auth_method: 'none' }, { 'cf-connecting-ip': ip });
    for (let i = 0; i < 20; i++) expect((await from('203.0.113.7')).status).toBe(201);
    const before = await count('oauth_clients');
    const limited = await from('203.0.113.7');
    expect(limited.status).toBe(429);
    expect(limited.body.error).toBe('invalid_request');
    expect(await count('oauth_clients')).toBe(before);
    expect((await from('203.0.113.8')).status).toBe(201);
  });
});

const CIMD = 'https://client.example/client.json';

async function authorizeWith(clientId: string, envOverrides: Record<string, unknown> = {}) {
  const { challenge } = await pkcePair();
  const url = new URL(authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope: 'mcp:read', state: 's', code_challenge: challenge, code_challenge_method: 'S256', resource: MCP_RESOURCE }));
  return direct('GET', url.pathname + url.search, undefined, undefined, envOverrides);
}

describe('/oauth/authorize with a Client ID Metadata Document', () => {
  it('shows the client_name of a valid document, and its code is exchanged with the URL as client_id', async () => {
    const page = await authorizeWith(CIMD);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<strong>Example CIMD Client</strong>');

    const flow = await authorizeAsBrowser({ clientId: CIMD, scope: 'mcp:read', browser: new Browser() });
    expect(flow.html).toContain('Authorize Example CIMD Client');
    expect(flow.html).toContain(CIMD);
    const t = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: CIMD, redirect_uri: REDIRECT });
    expect(t.status).toBe(200);
    expect(decodeJwt(t.body.access_token).client_id).toBe(CIMD);
    expect((await mcp('tools/list', {}, t.body.access_token)).status).toBe(200);
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: CIMD });
    expect(refreshed.status).toBe(200);
  });

  it.each([
    ['its client_id differs from its URL', 'https://client.example/mismatch.json', 'does not match its URL'],
    ['it is larger than 5 KiB', 'https://client.example/oversized.json', 'larger than 5120 bytes'],
    ['it cannot be fetched', 'https://client.example/missing.json', 'could not be fetched'],
    ['its URL has no path', 'https://client.example/', 'must have a path'],
  ])('shows an error page and redirects nowhere when %s', async (_, clientId, reason) => {
    const page = await authorizeWith(clientId);
    expect(page.status).toBe(400);
    expect(page.headers.get('location')).toBeNull();
    expect(page.body).toContain(reason);
  });

  it('refuses the token request of a client whose document does not match its URL', async () => {
    const res = await token({ grant_type: 'refresh_token', refresh_token: 'crt_x', client_id: 'https://client.example/mismatch.json' });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it.each([
    'https://10.0.0.1/client.json',
    'https://169.254.169.254/latest/meta-data',
    'https://192.168.1.1/client.json',
    'https://127.0.0.1/client.json',
    'https://[::1]/client.json',
    'https://metadata.internal/client.json',
    'http://client.example/client.json',
  ])('refuses the client_id %s in production without fetching it', async (clientId) => {
    const page = await authorizeWith(clientId, { ENVIRONMENT: 'production' });
    expect(page.status).toBe(400);
    expect(page.headers.get('location')).toBeNull();
    expect(page.body).toContain('client_id metadata document URL refused');
  });

  it('accepts a public https client_id in production', async () => {
    const page = await authorizeWith(CIMD, { ENVIRONMENT: 'production' });
    expect(page.status).toBe(200);
    expect(page.body).toContain('Example CIMD Client');
  });
});

/**
 * The dynamic registrations MCP hosts send (shapes modeled on each client's public behaviour: a public client,
 * loopback or private-scheme redirect URIs), each through code + PKCE, exchange and refresh. docs/clients.md
 * lists them; the ChatGPT and Claude metadata documents are in oauth.assertion.test.ts.
 */
describe('/oauth/register as MCP hosts do it', () => {
  it.each([
    ['VS Code', ['http://127.0.0.1:33418/', 'https://vscode.dev/redirect'], 'http://127.0.0.1:33418/'],
    ['Cursor', ['cursor://anysphere.cursor-mcp/oauth/callback'], 'cursor://anysphere.cursor-mcp/oauth/callback'],
    ['Claude Code', ['http://localhost:54212/callback'], 'http://localhost:61234/callback'],
    ['Codex', ['http://127.0.0.1:47811/callback'], 'http://127.0.0.1:47811/callback'],
    ['MCP Inspector', ['http://localhost:6274/oauth/callback'], 'http://localhost:6274/oauth/callback'],
  ])('%s: a public client completes code + PKCE, the exchange and refresh', async (name, redirect_uris, redirectUri) => {
    const reg = await registerClient({ client_name: name, redirect_uris, grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' });
    expect(reg.status).toBe(201);
    const flow = await authorizeAsBrowser({ clientId: reg.body.client_id, redirectUri });
    expect(flow.redirect?.protocol).toBe(new URL(redirectUri).protocol);
    expect(flow.redirect?.searchParams.get('iss')).toBe(ORIGIN);
    const t = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: reg.body.client_id, redirect_uri: redirectUri, resource: MCP_RESOURCE });
    expect(t.status).toBe(200);
    expect(decodeJwt(t.body.access_token)).toMatchObject({ client_id: reg.body.client_id, aud: MCP_RESOURCE });
    expect((await token({ grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: reg.body.client_id })).status).toBe(200);
  });
});
