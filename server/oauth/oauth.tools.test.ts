import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { accessAssertion } from '../../test/workers/access';
import { admin, auditHead, auditSince, callTool, count, mcp, query, rest, type Caller } from '../../test/workers/helpers';
import { Browser, completeAuthorization, fullFlow, MCP_RESOURCE, REDIRECT, registerClient } from '../../test/workers/oauth-helpers';
import accessKey from '../../test/fixtures/cf-access-key.json';

/**
 * The seed's MCP tools (seed 001, "ChittyAuth MCP agent"), called at /mcp the way an MCP client does after the
 * OAuth flow: with an access token for the MCP resource carrying mcp:read and mcp:write.
 */
const SEED_TOOLS = [
  'generate_api_key',
  'validate_api_key',
  'generate_jwt',
  'validate_jwt',
  'check_permission',
  'grant_authorization',
  'list_sessions',
  'mcp_portal_authenticate',
  'create_linked_app_oauth',
  'exchange_oauth_tokens',
  'validate_mcp_token',
];

let root: Caller;
let accessToken: string;
let clientId: string;
const browser = new Browser();

beforeAll(async () => {
  root = await admin();
  const flow = await fullFlow('mcp:read mcp:write', { browser });
  expect(flow.tokens.status).toBe(200);
  accessToken = flow.tokens.body.access_token;
  clientId = flow.clientId;
});

/** Calls a tool and returns its structured result, failing on a tool error. */
async function tool(name: string, args: Record<string, unknown>) {
  const res = await callTool(name, args, accessToken);
  expect(res.status).toBe(200);
  expect(res.body.result.isError, JSON.stringify(res.body.result.structuredContent)).toBeFalsy();
  return res.body.result.structuredContent as Record<string, any>;
}

describe('/mcp tools/list', () => {
  it('lists every seed tool to an OAuth token with mcp:read and mcp:write', async () => {
    const res = await mcp('tools/list', {}, accessToken);
    expect(res.status).toBe(200);
    const names = res.body.result.tools.map((t: { name: string }) => t.name);
    expect(names).toEqual(expect.arrayContaining(SEED_TOOLS));
  });
});

describe('/mcp tools/call', () => {
  it('generate_api_key returns a key once, stores its hash and audits the call on the mcp door', async () => {
    const seq = await auditHead();
    const out = await tool('generate_api_key', { name: 'from an MCP client', scopes: ['mcp:read'] });
    expect(out.api_key).toMatch(/^chitty_/);
    const [row] = await query('SELECT * FROM api_keys WHERE id = ?', out.key_id);
    expect(row).toMatchObject({ chitty_id: root.chittyId, name: 'from an MCP client' });
    expect(JSON.stringify(row)).not.toContain(out.api_key);
    const events = await auditSince(seq);
    expect(events.map((e) => [e.action, e.door, e.actor, e.outcome])).toContainEqual(['apiKeys.create', 'mcp', root.chittyId, 'success']);
  });

  it('validate_api_key says a fresh key is valid and whose it is', async () => {
    const key = await tool('generate_api_key', { name: 'to validate' });
    const out = await tool('validate_api_key', { api_key: key.api_key });
    expect(out).toMatchObject({ valid: true, reason: null, key: { key_id: key.key_id, chitty_id: root.chittyId } });
  });

  it('generate_jwt signs a token with the custom claims, and validate_jwt verifies it', async () => {
    const jwt = await tool('generate_jwt', { claims: { role: 'tester' }, expires_in: '1h', audience: 'https://app.example' });
    expect(decodeJwt(jwt.token)).toMatchObject({ role: 'tester', sub: root.chittyId, aud: 'https://app.example' });
    const out = await tool('validate_jwt', { token: jwt.token, audience: 'https://app.example' });
    expect(out).toMatchObject({ valid: true, reason: null, claims: { role: 'tester' } });
  });

  it('check_permission tells whether the caller holds a permission and through which grant', async () => {
    const out = await tool('check_permission', { permission: 'api_keys:generate' });
    expect(out).toMatchObject({ allowed: true, chitty_id: root.chittyId, matched_by: ['role:admin'] });
  });

  it('grant_authorization writes a grant that check_permission then sees', async () => {
    const app = await rest('POST', '/v1/identities', { type: 'APP', display_name: 'Granted app' }, root.token);
    const out = await tool('grant_authorization', { chitty_id: app.body.chitty_id, permission: 'jwt:validate' });
    expect(out).toMatchObject({ chitty_id: app.body.chitty_id, permission: 'jwt:validate', granted_by: root.chittyId });
    expect(await count('grants', 'id = ? AND chitty_id = ? AND permission = ?', out.grant_id, app.body.chitty_id, 'jwt:validate')).toBe(1);
    expect(await tool('check_permission', { chitty_id: app.body.chitty_id, permission: 'jwt:validate' })).toMatchObject({ allowed: true });
  });

  it('list_sessions lists the sign-in session the authorization pages started', async () => {
    const out = await tool('list_sessions', {});
    expect(out.items.length).toBeGreaterThan(0);
    expect(out.items.map((s: { client: string }) => s.client)).toContain('oauth');
  });

  it('mcp_portal_authenticate turns a Cloudflare Access assertion into a session for a new account', async () => {
    const email = 'portal.person@example.com';
    const out = await tool('mcp_portal_authenticate', { assertion: await accessAssertion(email) });
    expect(out).toMatchObject({ token_type: 'Bearer', email });
    expect(await count('accounts', 'username = ? AND chitty_id = ?', email, out.chitty_id)).toBe(1);
    expect(await count('sessions', 'id = ? AND client = ?', out.session_id, 'cf_access')).toBe(1);
    expect((await rest('GET', '/v1/accounts/me', undefined, out.access_token)).body).toMatchObject({ chitty_id: out.chitty_id });
  });

  it.each([
    ['its audience is another Access application', { aud: 'another-access-app' }],
    ['it has expired', { expiresIn: '-5m' }],
    ['another issuer signed it', { issuer: 'https://other-team.cloudflareaccess.com' }],
  ])('mcp_portal_authenticate answers INVALID_ASSERTION 401 and creates nothing when %s', async (_, o) => {
    const email = `refused.${crypto.randomUUID().slice(0, 8)}@example.com`;
    const sessions = await count('sessions');
    const res = await callTool('mcp_portal_authenticate', { assertion: await accessAssertion(email, o) }, accessToken);
    expect(res.status).toBe(200);
    expect(res.body.result.isError).toBe(true);
    expect(res.body.result._meta['cc.chitty/error']).toMatchObject({ code: 'INVALID_ASSERTION', status: 401 });
    expect(await count('accounts', 'username = ?', email)).toBe(0);
    expect(await count('sessions')).toBe(sessions);
  });

  it('mcp_portal_authenticate refuses an assertion signed with the right key id but not by Access', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ email: 'forged@example.com' })
      .setProtectedHeader({ alg: 'ES256', kid: accessKey.private.kid })
      .setIssuer(accessKey.team)
      .setAudience(accessKey.aud)
      .setExpirationTime('5m')
      .sign(privateKey);
    const res = await callTool('mcp_portal_authenticate', { assertion: forged }, accessToken);
    expect(res.body.result._meta['cc.chitty/error']).toMatchObject({ code: 'INVALID_ASSERTION', status: 401 });
  });

  it('create_linked_app_oauth builds a PKCE authorization URL whose code exchange_oauth_tokens redeems', async () => {
    const linked = (await registerClient({ client_name: 'Linked app' })).body.client_id as string;
    const start = await tool('create_linked_app_oauth', { client_id: linked, redirect_uri: REDIRECT, scopes: ['mcp:read'] });
    expect(start).toMatchObject({ code_challenge_method: 'S256', resource: MCP_RESOURCE });
    const url = new URL(start.authorization_url);
    expect(url.searchParams.get('code_challenge')).toBe(start.code_challenge);
    expect(url.searchParams.get('state')).toBe(start.state);

    const flow = await completeAuthorization(start.authorization_url, { browser });
    expect(flow.redirect!.searchParams.get('state')).toBe(start.state);
    const seq = await auditHead();
    const tokens = await tool('exchange_oauth_tokens', { grant_type: 'authorization_code', client_id: linked, code: flow.code!, code_verifier: start.code_verifier, redirect_uri: REDIRECT });
    expect(tokens).toMatchObject({ token_type: 'Bearer', scope: 'mcp:read', refresh_token: expect.stringMatching(/^crt_/) });
    expect(decodeJwt(tokens.access_token)).toMatchObject({ client_id: linked, aud: MCP_RESOURCE, sub: root.chittyId });
    expect((await mcp('tools/list', {}, tokens.access_token)).status).toBe(200);
    expect((await auditSince(seq)).map((e) => [e.action, e.door, e.target])).toContainEqual(['mcp.linkedAppToken', 'mcp', linked]);

    const refreshed = await tool('exchange_oauth_tokens', { grant_type: 'refresh_token', client_id: linked, refresh_token: tokens.refresh_token });
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
  });

  it('exchange_oauth_tokens refuses a code without its verifier with the OAuth error', async () => {
    const linked = (await registerClient({ client_name: 'Linked app' })).body.client_id as string;
    const start = await tool('create_linked_app_oauth', { client_id: linked, redirect_uri: REDIRECT });
    const flow = await completeAuthorization(start.authorization_url, { browser });
    const res = await callTool('exchange_oauth_tokens', { grant_type: 'authorization_code', client_id: linked, code: flow.code!, code_verifier: 'A'.repeat(43), redirect_uri: REDIRECT }, accessToken);
    expect(res.body.result.isError).toBe(true);
    expect(res.body.result._meta['cc.chitty/error']).toMatchObject({ code: 'OAUTH_ERROR', data: { error: 'invalid_grant' } });
  });

  it('validate_mcp_token says the caller’s own access token is active for this MCP server', async () => {
    const out = await tool('validate_mcp_token', { token: accessToken });
    expect(out).toMatchObject({ active: true, token_type: 'access_token', client_id: clientId, aud: MCP_RESOURCE, sub: root.chittyId, scope: 'mcp:read mcp:write' });
  });

  it('validate_mcp_token says a sign-in token, issued for the API, is not active here', async () => {
    const out = await tool('validate_mcp_token', { token: root.token });
    expect(out).toMatchObject({ active: false, reason: 'wrong_audience' });
  });
});
