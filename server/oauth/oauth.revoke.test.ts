import { SELF } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, auditHead, auditSince, mcp, ORIGIN, query } from '../../test/workers/helpers';
import { authorizeAsBrowser, Browser, fullFlow, MCP_RESOURCE, REDIRECT, registerClient, token } from '../../test/workers/oauth-helpers';

/** RFC 7009 revocation and RFC 7662 introspection: for a client, about its own tokens. */
const browser = new Browser();
/** A public client and a confidential one (client_secret_basic), each with consent already given. */
let publicId: string;
let confidential: { id: string; secret: string };

beforeAll(async () => {
  await admin();
  publicId = (await registerClient({ token_endpoint_auth_method: 'none' })).body.client_id;
  const c = (await registerClient({ token_endpoint_auth_method: 'client_secret_basic' })).body;
  confidential = { id: c.client_id, secret: c.client_secret };
});

const basic = (id: string, secret: string) => ({ authorization: `Basic ${btoa(`${id}:${secret}`)}` });

async function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await SELF.fetch(`${ORIGIN}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

/** Tokens for the admin through the public client. */
const publicTokens = async () => (await fullFlow('mcp:read mcp:write', { clientId: publicId, browser })).tokens.body as { access_token: string; refresh_token: string };

/** Tokens for the admin through the confidential client (its code is redeemed with Basic authentication). */
async function confidentialTokens() {
  const flow = await authorizeAsBrowser({ clientId: confidential.id, browser });
  const t = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, redirect_uri: REDIRECT, resource: MCP_RESOURCE }, basic(confidential.id, confidential.secret));
  expect(t.status).toBe(200);
  return t.body as { access_token: string; refresh_token: string };
}

const grantOf = async (accessToken: string) => (await query('SELECT * FROM oauth_grants WHERE id = ?', decodeJwt(accessToken).gid))[0]!;

describe('/oauth/revoke', () => {
  it('revokes the grant of a refresh token: its access and refresh tokens stop working', async () => {
    const t = await publicTokens();
    const seq = await auditHead();
    const res = await post('/oauth/revoke', { token: t.refresh_token, token_type_hint: 'refresh_token', client_id: publicId });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const grant = await grantOf(t.access_token);
    expect(grant).toMatchObject({ revoked_reason: 'revoked_by_client', refresh_hash: null });
    expect((await auditSince(seq)).map((e) => [e.action, e.actor, e.target, e.outcome])).toEqual([['oauth.revoke', publicId, grant.id, 'success']]);
    expect((await mcp('tools/list', {}, t.access_token)).status).toBe(401);
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: t.refresh_token, client_id: publicId });
    expect(refreshed.status).toBe(400);
    expect(refreshed.body.error).toBe('invalid_grant');
  });

  it('revokes the grant of an access token', async () => {
    const t = await publicTokens();
    expect((await post('/oauth/revoke', { token: t.access_token, client_id: publicId })).status).toBe(200);
    expect((await grantOf(t.access_token)).revoked_at).toBeTruthy();
    expect((await mcp('tools/list', {}, t.access_token)).status).toBe(401);
  });

  it.each(['crt_unknown-refresh-token', 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln', 'anything'])('answers 200 to the unknown token %s and changes nothing (RFC 7009 §2.2)', async (unknown) => {
    const live = await query('SELECT count(*) AS n FROM oauth_grants WHERE revoked_at IS NULL');
    const res = await post('/oauth/revoke', { token: unknown, client_id: publicId });
    expect(res.status).toBe(200);
    expect(await query('SELECT count(*) AS n FROM oauth_grants WHERE revoked_at IS NULL')).toEqual(live);
  });

  it('does not revoke a token of another client, and still answers 200', async () => {
    const t = await publicTokens();
    const seq = await auditHead();
    const res = await post('/oauth/revoke', { token: t.refresh_token }, basic(confidential.id, confidential.secret));
    expect(res.status).toBe(200);
    expect(await auditSince(seq)).toEqual([]);
    expect((await grantOf(t.access_token)).revoked_at).toBeNull();
    expect((await mcp('tools/list', {}, t.access_token)).status).toBe(200);
    expect((await token({ grant_type: 'refresh_token', refresh_token: t.refresh_token, client_id: publicId })).status).toBe(200);
  });

  it('refuses 401 a confidential client with a wrong secret, and revokes nothing', async () => {
    const t = await confidentialTokens();
    const res = await post('/oauth/revoke', { token: t.refresh_token }, basic(confidential.id, 'cs_wrong'));
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect((await grantOf(t.access_token)).revoked_at).toBeNull();
  });
});

describe('/oauth/introspect', () => {
  it.each([
    ['no client authentication', () => ({ form: {}, headers: {} })],
    ['a public client', () => ({ form: { client_id: publicId }, headers: {} })],
    ['a wrong secret', () => ({ form: {}, headers: basic(confidential.id, 'cs_wrong') })],
  ])('refuses 401 invalid_client with %s', async (_, auth) => {
    const t = await publicTokens();
    const { form, headers } = auth();
    const res = await post('/oauth/introspect', { token: t.access_token, ...form }, headers);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect(res.body.active).toBeUndefined();
  });

  it('answers active with the claims for its own access and refresh tokens, and inactive once revoked', async () => {
    const t = await confidentialTokens();
    const auth = basic(confidential.id, confidential.secret);
    const access = await post('/oauth/introspect', { token: t.access_token }, auth);
    expect(access.status).toBe(200);
    expect(access.headers.get('cache-control')).toBe('no-store');
    expect(access.body).toMatchObject({ active: true, token_type: 'access_token', client_id: confidential.id, scope: 'mcp:read mcp:write', aud: MCP_RESOURCE, iss: ORIGIN });
    expect((await post('/oauth/introspect', { token: t.refresh_token }, auth)).body).toMatchObject({ active: true, token_type: 'refresh_token', client_id: confidential.id });

    expect((await post('/oauth/revoke', { token: t.refresh_token }, auth)).status).toBe(200);
    expect((await post('/oauth/introspect', { token: t.access_token }, auth)).body).toEqual({ active: false });
    expect((await post('/oauth/introspect', { token: t.refresh_token }, auth)).body).toEqual({ active: false });
  });

  it.each([
    ['a token of another client', async () => (await publicTokens()).access_token],
    ['a refresh token of another client', async () => (await publicTokens()).refresh_token],
    ['garbage', async () => 'not-a-token'],
    ['a refresh token that has rotated', async () => {
      const t = await confidentialTokens();
      await token({ grant_type: 'refresh_token', refresh_token: t.refresh_token }, basic(confidential.id, confidential.secret));
      return t.refresh_token;
    }],
  ])('answers only active: false for %s', async (_, make) => {
    const res = await post('/oauth/introspect', { token: await make() }, basic(confidential.id, confidential.secret));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ active: false });
  });
});
