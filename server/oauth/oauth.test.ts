import { describe, expect, it } from 'vitest';
import { admin, mcp, ORIGIN } from '../../test/workers/helpers';
import { authorizeAsBrowser, fullFlow, MCP_RESOURCE, registerClient, REDIRECT, token } from '../../test/workers/oauth-helpers';

describe('oauth authorization code flow', () => {
  it('issues a code after login and consent, and the token works at /mcp', async () => {
    await admin();
    const client = await registerClient();
    expect(client.status).toBe(201);
    const flow = await authorizeAsBrowser({ clientId: client.body.client_id });
    expect(flow.res.status).toBe(303);
    expect(flow.redirect?.origin + flow.redirect!.pathname).toBe(REDIRECT);
    expect(flow.redirect?.searchParams.get('state')).toBe(flow.state);
    expect(flow.redirect?.searchParams.getAll('iss')).toEqual([ORIGIN]);
    const t = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: client.body.client_id, redirect_uri: REDIRECT, resource: MCP_RESOURCE });
    expect(t.status).toBe(200);
    expect(t.headers.get('cache-control')).toBe('no-store');
    expect(t.body).toMatchObject({ token_type: 'Bearer', scope: 'mcp:read mcp:write' });
    const list = await mcp('tools/list', {}, t.body.access_token);
    expect(list.status).toBe(200);
    expect(list.body.result.tools.length).toBeGreaterThan(10);
  });

  it('rotates the refresh token and keeps the resource', async () => {
    const { clientId, tokens } = await fullFlow();
    const r = await token({ grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token, client_id: clientId });
    expect(r.status).toBe(200);
    expect(r.body.refresh_token).not.toBe(tokens.body.refresh_token);
    expect((await mcp('tools/list', {}, r.body.access_token)).status).toBe(200);
  });
});

describe('scheduled cleanup of oauth rows', () => {
  it('deletes expired codes and unused dynamic registrations, and keeps used ones', async () => {
    const { cleanupExpired } = await import('../cleanup');
    const { getDb } = await import('../db/schema');
    const { env } = await import('cloudflare:test');
    const { clientId } = await fullFlow();
    const unused = await registerClient();
    const past = new Date(Date.now() - 1000).toISOString();
    await env.DB.prepare('UPDATE oauth_clients SET expires_at = ? WHERE client_id = ?').bind(past, unused.body.client_id).run();
    await env.DB.prepare('UPDATE oauth_codes SET expires_at = ?').bind(past).run();
    const removed = await cleanupExpired(getDb(env.DB));
    expect(removed.oauth_clients).toBe(1);
    expect(removed.oauth_codes).toBeGreaterThan(0);
    expect(await env.DB.prepare('SELECT count(*) AS n FROM oauth_clients WHERE client_id = ?').bind(clientId).first('n')).toBe(1);
    expect(await env.DB.prepare('SELECT count(*) AS n FROM oauth_codes').first('n')).toBe(0);
  });
});

describe('access tokens of a disabled account', () => {
  it('stop working at once, and stay revoked when the account is enabled again', async () => {
    const { user } = await import('../../test/workers/helpers');
    const { rest } = await import('../../test/workers/helpers');
    const someone = await user(['user']);
    const client = await registerClient();
    const flow = await authorizeAsBrowser({ clientId: client.body.client_id, username: someone.username, password: someone.password });
    const t = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: client.body.client_id, redirect_uri: REDIRECT, resource: MCP_RESOURCE });
    expect((await mcp('tools/list', {}, t.body.access_token)).status).toBe(200);
    const root = await admin();
    expect((await rest('POST', `/v1/accounts/${someone.chittyId}/disable`, {}, root.token)).status).toBe(200);
    expect((await mcp('tools/list', {}, t.body.access_token)).status).toBe(401);
    expect((await rest('POST', `/v1/accounts/${someone.chittyId}/enable`, {}, root.token)).status).toBe(200);
    expect((await mcp('tools/list', {}, t.body.access_token)).status).toBe(401);
  });
});
