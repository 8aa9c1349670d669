import { SELF } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../crypto/hash';
import { admin, auditHead, auditSince, mcp, ORIGIN, query, rest, type Caller } from '../../test/workers/helpers';
import { authorizeAsBrowser, Browser, fullFlow, MCP_RESOURCE, pkcePair, REDIRECT, registerClient, token } from '../../test/workers/oauth-helpers';
import { REFRESH_GRACE_S } from './grants';

/**
 * /oauth/token: code redemption (OAuth 2.1 §4.1.3, RFC 7636, RFC 9700 §4.5), refresh rotation with reuse
 * detection (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2), client_credentials, client authentication and the wire shape.
 */
let root: Caller;
let clientId: string;
const browser = new Browser();

beforeAll(async () => {
  root = await admin();
  clientId = (await registerClient()).body.client_id;
});

/** A code for the admin and `clientId`, not yet redeemed. */
const authorize = (scope = 'mcp:read mcp:write') => authorizeAsBrowser({ clientId, scope, browser });
/** A code redeemed: access and refresh token. */
const issue = async (scope = 'mcp:read mcp:write') => (await fullFlow(scope, { clientId, browser })).tokens.body as { access_token: string; refresh_token: string };

const redeem = (code: string, verifier: string, extra: Record<string, string> = {}) =>
  token({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: clientId, redirect_uri: REDIRECT, ...extra });
const refresh = (refreshToken: string, extra: Record<string, string> = {}) => token({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, ...extra });

const gid = (accessToken: string) => decodeJwt(accessToken).gid as string;
const grantRow = async (id: string) => (await query('SELECT * FROM oauth_grants WHERE id = ?', id))[0]!;
const grantOfCode = async (code: string) => (await query('SELECT grant_id FROM oauth_codes WHERE code_hash = ?', await sha256Hex(code)))[0]!.grant_id as string;
const works = async (accessToken: string) => (await mcp('tools/list', {}, accessToken)).status === 200;
/** The token-endpoint audit events since `seq` that record a grant revoked for reuse: [actor, grant, reason]. */
const reuseEvents = async (seq: number) =>
  (await auditSince(seq)).filter((e) => e.action === 'oauth.token' && e.outcome === 'denied').map((e) => [e.actor, e.target, JSON.parse(e.detail).reason]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function expectOAuthError(res: { status: number; body: Record<string, any> }, status: number, error: string) {
  expect(res.status).toBe(status);
  expect(res.body.error).toBe(error);
}

describe('/oauth/token (authorization_code)', () => {
  it.each([
    ['at once', 0],
    ['a second later', 1000],
  ])('rejects a reused code and revokes the grant, ending its access and refresh tokens, when replayed %s', async (_, delay) => {
    const flow = await authorize();
    const first = await redeem(flow.code!, flow.verifier);
    expect(first.status).toBe(200);
    expect(await works(first.body.access_token)).toBe(true);
    await sleep(delay);

    const seq = await auditHead();
    const replay = await redeem(flow.code!, flow.verifier);
    expectOAuthError(replay, 400, 'invalid_grant');
    const grant = await grantRow(gid(first.body.access_token));
    expect(grant.revoked_at).toBeTruthy();
    expect(grant.revoked_reason).toBe('authorization_code_replay');
    expect(await reuseEvents(seq)).toEqual([[clientId, grant.id, 'authorization_code_replay']]);
    expect(await works(first.body.access_token)).toBe(false);
    expectOAuthError(await refresh(first.body.refresh_token), 400, 'invalid_grant');
  });

  it('rejects a code redeemed by another client and revokes its grant', async () => {
    const other = (await registerClient()).body.client_id as string;
    const flow = await authorize();
    const seq = await auditHead();
    const stolen = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: other, redirect_uri: REDIRECT });
    expectOAuthError(stolen, 400, 'invalid_grant');
    const grant = await grantRow(await grantOfCode(flow.code!));
    expect(grant.revoked_reason).toBe('authorization_code_other_client');
    expect(await reuseEvents(seq)).toEqual([[other, grant.id, 'authorization_code_other_client']]);
    expect(grant.refresh_hash).toBeNull();
    // The code is spent for its own client too.
    expectOAuthError(await redeem(flow.code!, flow.verifier), 400, 'invalid_grant');
  });

  it('rejects a request without code_verifier, and the code stays unspent', async () => {
    const flow = await authorize();
    const res = await token({ grant_type: 'authorization_code', code: flow.code!, client_id: clientId, redirect_uri: REDIRECT });
    expectOAuthError(res, 400, 'invalid_request');
    expect(res.body.error_description).toMatch(/code_verifier/);
    expect((await redeem(flow.code!, flow.verifier)).status).toBe(200);
  });

  it.each([
    ['the verifier of another challenge', async () => (await pkcePair()).verifier],
    ['the challenge itself (a downgrade to plain)', async (challenge: string) => challenge],
    ['shorter than RFC 7636 allows', async () => 'abc'],
  ])('rejects the code with invalid_grant and issues no token when code_verifier is %s', async (_, wrong) => {
    const flow = await authorize();
    const stored = (await query('SELECT code_challenge FROM oauth_codes WHERE code_hash = ?', await sha256Hex(flow.code!)))[0]!.code_challenge as string;
    const res = await redeem(flow.code!, await wrong(stored));
    expectOAuthError(res, 400, 'invalid_grant');
    expect(res.body.access_token).toBeUndefined();
    expect((await grantRow(await grantOfCode(flow.code!))).refresh_hash).toBeNull();
  });

  it('rejects an expired code', async () => {
    const flow = await authorize();
    await query('UPDATE oauth_codes SET expires_at = ? WHERE code_hash = ?', new Date(Date.now() - 1000).toISOString(), await sha256Hex(flow.code!));
    const res = await redeem(flow.code!, flow.verifier);
    expectOAuthError(res, 400, 'invalid_grant');
    expect(res.body.error_description).toMatch(/expired/);
    expect((await grantRow(await grantOfCode(flow.code!))).refresh_hash).toBeNull();
  });

  it.each([
    ['another registered-looking URI', 'https://app.example/callback'],
    ['the same loopback URI on another port', 'http://127.0.0.1:5555/callback'],
  ])('rejects the code when redirect_uri differs from the authorization request: %s', async (_, redirectUri) => {
    const flow = await authorize();
    expectOAuthError(await redeem(flow.code!, flow.verifier, { redirect_uri: redirectUri }), 400, 'invalid_grant');
  });

  it('rejects an unknown code', async () => {
    expectOAuthError(await redeem('not-a-code-we-issued', (await pkcePair()).verifier), 400, 'invalid_grant');
  });

  it('rejects a resource other than the one authorized (RFC 8707 §2.2)', async () => {
    const flow = await authorize();
    expectOAuthError(await redeem(flow.code!, flow.verifier, { resource: ORIGIN }), 400, 'invalid_target');
  });
});

describe('/oauth/token (refresh_token)', () => {
  it('revokes the whole grant when a rotated refresh token is reused after the grace period', async () => {
    const t = await issue();
    const rotated = await refresh(t.refresh_token);
    expect(rotated.status).toBe(200);
    const id = gid(t.access_token);
    await query('UPDATE oauth_grants SET rotated_at = ? WHERE id = ?', new Date(Date.now() - (REFRESH_GRACE_S + 5) * 1000).toISOString(), id);

    const seq = await auditHead();
    expectOAuthError(await refresh(t.refresh_token), 400, 'invalid_grant');
    const grant = await grantRow(id);
    expect(grant.revoked_reason).toBe('refresh_token_reuse');
    expect(await reuseEvents(seq)).toEqual([[clientId, id, 'refresh_token_reuse']]);
    // Every token of the family stops working.
    expectOAuthError(await refresh(rotated.body.refresh_token), 400, 'invalid_grant');
    expect(await works(t.access_token)).toBe(false);
    expect(await works(rotated.body.access_token)).toBe(false);
  });

  it('returns the same new refresh token to a retry within the grace period and revokes nothing', async () => {
    const t = await issue();
    const first = await refresh(t.refresh_token);
    const retry = await refresh(t.refresh_token);
    expect(retry.status).toBe(200);
    expect(retry.body.refresh_token).toBe(first.body.refresh_token);
    const grant = await grantRow(gid(t.access_token));
    expect(grant.revoked_at).toBeNull();
    expect(grant.refresh_hash).toBe(await sha256Hex(first.body.refresh_token));
    const next = await refresh(first.body.refresh_token);
    expect(next.status).toBe(200);
    expect(await works(next.body.access_token)).toBe(true);
  });

  it.each([
    ['asks for more scope than granted', { scope: 'mcp:read mcp:write' }, 'invalid_scope'],
    ['asks for another resource', { resource: ORIGIN }, 'invalid_target'],
  ])('refuses a refresh that %s and leaves the refresh token as it was', async (_, extra, error) => {
    const t = await issue('mcp:read');
    const before = await grantRow(gid(t.access_token));
    expectOAuthError(await refresh(t.refresh_token, extra), 400, error);
    // Nothing is half-written: the token did not rotate, so it works as before (and no reuse is detected later).
    expect(await grantRow(gid(t.access_token))).toEqual(before);
    const again = await refresh(t.refresh_token);
    expect(again.status).toBe(200);
    expect(again.body.scope).toBe('mcp:read');
  });

  it('narrows the scope of the new access token when asked for less', async () => {
    const t = await issue();
    const r = await refresh(t.refresh_token, { scope: 'mcp:read' });
    expect(r.status).toBe(200);
    expect(r.body.scope).toBe('mcp:read');
    expect(decodeJwt(r.body.access_token).scope).toBe('mcp:read');
  });

  it('refuses a refresh token presented by another client, which stays valid for its own', async () => {
    const t = await issue();
    const other = (await registerClient()).body.client_id as string;
    expectOAuthError(await token({ grant_type: 'refresh_token', refresh_token: t.refresh_token, client_id: other }), 400, 'invalid_grant');
    expect((await refresh(t.refresh_token)).status).toBe(200);
  });
});

describe('/oauth/token (concurrent refreshes)', () => {
  it('rotates exactly once when 50 refreshes of one token race, and all winners get the same new token', async () => {
    const t = await issue();
    const id = gid(t.access_token);
    const results = await Promise.all(Array.from({ length: 50 }, () => refresh(t.refresh_token)));
    expect(results.filter((r) => r.status !== 200 && !(r.status === 400 && r.body.error === 'invalid_grant'))).toEqual([]);
    const ok = results.filter((r) => r.status === 200);
    expect(ok.length).toBeGreaterThan(0);
    const issued = new Set(ok.map((r) => r.body.refresh_token));
    expect(issued.size).toBe(1);
    const [next] = [...issued] as string[];

    const grant = await grantRow(id);
    expect(grant.revoked_at).toBeNull();
    expect(grant.previous_refresh_hash).toBe(await sha256Hex(t.refresh_token));
    expect(grant.refresh_hash).toBe(await sha256Hex(next!));
    expect((await query('SELECT id FROM oauth_grants WHERE refresh_hash = ?', await sha256Hex(next!))).length).toBe(1);

    const after = await refresh(next!);
    expect(after.status).toBe(200);
    expect(after.body.refresh_token).not.toBe(next);
    expect(await works(after.body.access_token)).toBe(true);
  });
});

describe('/oauth/token (responses)', () => {
  it('sends Cache-Control: no-store with the tokens', async () => {
    const flow = await authorize();
    const res = await redeem(flow.code!, flow.verifier);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: expect.any(Number), scope: 'mcp:read mcp:write' });
  });

  it.each([
    ['grant_type is missing', () => token({ client_id: clientId }), 400, 'invalid_request'],
    ['grant_type is unknown', () => token({ grant_type: 'password', client_id: clientId, username: 'admin', password: 'x' }), 400, 'unsupported_grant_type'],
    ['the client is unknown', () => token({ grant_type: 'refresh_token', refresh_token: 'crt_x', client_id: 'cli_00000000000000000000000000' }), 401, 'invalid_client'],
    ['no client_id is sent', () => token({ grant_type: 'refresh_token', refresh_token: 'crt_x' }), 401, 'invalid_client'],
    ['the refresh token is unknown', () => refresh('crt_unknown'), 400, 'invalid_grant'],
    ['a parameter is repeated', () => tokenRaw(`grant_type=refresh_token&client_id=${clientId}&refresh_token=a&refresh_token=b`), 400, 'invalid_request'],
  ])('answers an RFC 6749 §5.2 error body with no-store when %s', async (_, send, status, error) => {
    const res = await send();
    expect(res.status).toBe(status);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Object.keys(res.body).sort()).toEqual(['error', 'error_description']);
    expect(res.body.error).toBe(error);
    expect(typeof res.body.error_description).toBe('string');
  });

  it('refuses a JSON body (the token endpoint takes forms)', async () => {
    const res = await fetchToken(JSON.stringify({ grant_type: 'refresh_token' }), { 'content-type': 'application/json' });
    expectOAuthError(res, 400, 'invalid_request');
  });
});

async function fetchToken(body: string, headers: Record<string, string>) {
  const res = await SELF.fetch(`${ORIGIN}/oauth/token`, { method: 'POST', headers, body });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}
const tokenRaw = (body: string) => fetchToken(body, { 'content-type': 'application/x-www-form-urlencoded' });

describe('/oauth/token (client_credentials)', () => {
  const basic = (id: string, secret: string) => ({ authorization: `Basic ${btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}` });

  async function serviceClient() {
    const res = await rest('POST', '/v1/oauth/clients', { client_name: 'Nightly job', redirect_uris: [], grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' }, root.token);
    expect(res.status).toBe(201);
    return res.body as { client_id: string; client_secret: string; chitty_id: string };
  }

  it('issues an access token for a pre-registered confidential client, as its own ChittyID', async () => {
    const c = await serviceClient();
    const res = await token({ grant_type: 'client_credentials', scope: 'mcp:read', resource: MCP_RESOURCE }, basic(c.client_id, c.client_secret));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body.refresh_token).toBeUndefined();
    const claims = decodeJwt(res.body.access_token);
    expect(claims).toMatchObject({ sub: c.chitty_id, aud: MCP_RESOURCE, client_id: c.client_id, scope: 'mcp:read' });
    expect(await works(res.body.access_token)).toBe(true);
  });

  it('refuses client_credentials to a public client', async () => {
    const res = await token({ grant_type: 'client_credentials', client_id: clientId, resource: MCP_RESOURCE });
    expectOAuthError(res, 400, 'unauthorized_client');
    const preregistered = await rest('POST', '/v1/oauth/clients', { client_name: 'Public job', redirect_uris: [], grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' }, root.token);
    expect(preregistered.status).toBe(400);
  });

  it.each([
    ['a wrong secret', (c: { client_id: string; client_secret: string }) => basic(c.client_id, `${c.client_secret}x`)],
    ['no secret', (c: { client_id: string; client_secret: string }) => basic(c.client_id, '')],
  ])('answers 401 invalid_client with a Basic challenge to %s', async (_, auth) => {
    const c = await serviceClient();
    const res = await token({ grant_type: 'client_credentials', resource: MCP_RESOURCE }, auth(c));
    expectOAuthError(res, 401, 'invalid_client');
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect(Object.keys(res.body).sort()).toEqual(['error', 'error_description']);
  });
});
