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
