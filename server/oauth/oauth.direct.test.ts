import { SELF } from 'cloudflare:test';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, auditHead, auditSince, ORIGIN, query, rest, user, type Caller } from '../../test/workers/helpers';
import { authorizeAsBrowser, Browser, REDIRECT, registerClient, token } from '../../test/workers/oauth-helpers';

/**
 * ChittyAuth as the authorization server of MCP servers registered in the portal (servers.setDirect): resource
 * matching (RFC 8707, canonical form), scopes per server, the portal policy at /oauth/authorize and at refresh,
 * the audience boundary (RFC 9068 §4), introspection by the resource server (RFC 7662) and revocation.
 */
let root: Caller;
let n = 0;
const serverId = () => `direct-${++n}-${crypto.randomUUID().slice(0, 6)}`;

const SCOPES = [
  { name: 'notes:read', description: 'Read your notes', action: 'connect' },
  { name: 'notes:write', description: 'Change your notes', action: 'call' },
  { name: 'notes:admin', description: 'Administer the notes server', action: 'admin', default: false },
];

/** A server at https://mcp.example, protected directly at https://mcp.example/<id>/mcp. */
async function directServer(o: { scopes?: unknown[]; introspection_client_id?: string } = {}) {
  const server_id = serverId();
  const reg = await rest('POST', '/v1/servers/register', { server_id, name: `Notes ${server_id}`, endpoints: { mcp: 'https://mcp.example/mcp' } }, root.token);
  expect(reg.status).toBe(200);
  const resource = `https://mcp.example/${server_id}/mcp`;
  const set = await rest('PUT', `/v1/servers/${server_id}/direct`, { resources: [resource], scopes: o.scopes ?? SCOPES, ...(o.introspection_client_id ? { introspection_client_id: o.introspection_client_id } : {}) }, root.token);
  expect(set.status, JSON.stringify(set.body)).toBe(200);
  return { server_id, resource, name: `Notes ${server_id}` };
}

/** Login + consent for `who`, then the code exchanged: the token response, and what the pages showed. */
async function signIn(resource: string, o: { who?: { username: string; password: string }; scope?: string; clientId?: string } = {}) {
  const clientId = o.clientId ?? (await registerClient()).body.client_id;
  const browser = new Browser();
  const flow = await authorizeAsBrowser({ clientId, resource, browser, ...(o.scope !== undefined ? { scope: o.scope } : {}), ...(o.who ? { username: o.who.username, password: o.who.password } : {}) });
  if (!flow.code) return { clientId, flow, tokens: null };
  const tokens = await token({ grant_type: 'authorization_code', code: flow.code, code_verifier: flow.verifier, client_id: clientId, redirect_uri: REDIRECT, resource });
  return { clientId, flow, tokens };
}

/** A confidential client: the resource server's own credentials for introspection. */
async function confidentialClient() {
  const res = await rest('POST', '/v1/oauth/clients', { client_name: 'Notes resource server', redirect_uris: [], grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' }, root.token);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { id: res.body.client_id as string, secret: res.body.client_secret as string };
}

async function introspect(tokenValue: string, client: { id: string; secret: string }) {
  const res = await SELF.fetch(`${ORIGIN}/oauth/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${btoa(`${client.id}:${client.secret}`)}` },
    body: new URLSearchParams({ token: tokenValue }).toString(),
  });
  return (await res.json()) as Record<string, any>;
}

const jwks = async () => createLocalJWKSet((await (await SELF.fetch(`${ORIGIN}/.well-known/jwks.json`)).json()) as { keys: [] });
const authorizeGet = (params: Record<string, string>) => SELF.fetch(`${ORIGIN}/oauth/authorize?${new URLSearchParams({ response_type: 'code', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', redirect_uri: REDIRECT, state: 's', ...params })}`, { redirect: 'manual' });

beforeAll(async () => {
  root = await admin();
});

describe('servers.setDirect', () => {
  it('stores resources in canonical form (lowercase host, no trailing slash) and shows them on the server', async () => {
    const server_id = serverId();
    await rest('POST', '/v1/servers/register', { server_id, name: 'Canonical', endpoints: { mcp: 'https://mcp.example/mcp' } }, root.token);
    const res = await rest('PUT', `/v1/servers/${server_id}/direct`, { resources: [`HTTPS://MCP.Example:443/${server_id}/mcp/`, `https://mcp.example/${server_id}/mcp`], scopes: SCOPES }, root.token);
    expect(res.status).toBe(200);
    expect(res.body.resources).toEqual([{ resource: `https://mcp.example/${server_id}/mcp`, metadata_url: `https://mcp.example/.well-known/oauth-protected-resource/${server_id}/mcp` }]);
    expect(res.body.scopes.map((s: { name: string; action: string; default: boolean }) => [s.name, s.action, s.default])).toEqual([['notes:admin', 'admin', false], ['notes:read', 'connect', true], ['notes:write', 'call', true]]);
    expect(res.body.authorization_server).toBe(ORIGIN);
    const server = await rest('GET', `/v1/servers/${server_id}`, undefined, root.token);
    expect(server.body.reachable).toEqual({ gateway: `${ORIGIN}/gw/${server_id}/mcp`, direct: [`https://mcp.example/${server_id}/mcp`] });
    expect((await rest('GET', `/v1/servers/${server_id}/direct`, undefined, root.token)).body).toEqual(res.body);
  });

  it.each([
    ['a fragment', 'https://mcp.example/x/mcp#top', /fragment/],
    ['a query', 'https://mcp.example/x/mcp?tenant=1', /query/],
    ['user info', 'https://ada@mcp.example/x/mcp', /user info/],
    ['plain http', 'http://mcp.example/x/mcp', /https/],
    ['another origin than the MCP endpoint', 'https://tools.example/mcp', /origin of the server's MCP endpoint/],
  ])('refuses a resource with %s and changes nothing', async (_, url, reason) => {
    const { server_id, resource } = await directServer();
    const res = await rest('PUT', `/v1/servers/${server_id}/direct`, { resources: [url] }, root.token);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(reason);
    expect(await query('SELECT resource FROM mcp_server_resources WHERE server_id = ?', server_id)).toEqual([{ resource }]);
  });

  it('refuses a resource another server holds (409) and scope names that are not RFC 6749 scope-tokens', async () => {
    const a = await directServer();
    const b = await directServer();
    const taken = await rest('PUT', `/v1/servers/${b.server_id}/direct`, { resources: [`${a.resource.replace('https://mcp.example', 'https://MCP.example')}/`] }, root.token);
    expect(taken.status).toBe(409);
    const badScope = await rest('PUT', `/v1/servers/${b.server_id}/direct`, { resources: [b.resource], scopes: [{ name: 'has space' }] }, root.token);
    expect(badScope.status).toBe(400);
    expect(badScope.body.message).toMatch(/scope-token/);
  });

  it.each([
    ['names another authorization server', 'https://mcp.example/mcp', (id: string) => `https://mcp.example/foreign/${id}/mcp`, /does not list http:\/\/chittyauth\.test in authorization_servers/],
    ['is not served', 'https://down.example/mcp', (id: string) => `https://down.example/${id}/mcp`, /answered HTTP 503/],
  ])('refuses a resource whose RFC 9728 metadata %s (422 UNVERIFIED: no proof of control)', async (_, mcpUrl, url, reason) => {
    const server_id = serverId();
    expect((await rest('POST', '/v1/servers/register', { server_id, name: 'Unproven', endpoints: { mcp: mcpUrl } }, root.token)).status).toBe(200);
    const res = await rest('PUT', `/v1/servers/${server_id}/direct`, { resources: [url(server_id)] }, root.token);
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('UNVERIFIED');
    expect(res.body.message).toMatch(reason);
    expect(await query('SELECT * FROM mcp_server_resources WHERE server_id = ?', server_id)).toEqual([]);
  });

  it('keeps the MCP endpoint on the origin of the direct resources', async () => {
    const { server_id } = await directServer();
    const moved = await rest('PATCH', `/v1/servers/${server_id}`, { endpoints: { mcp: 'https://tools.example/mcp' } }, root.token);
    expect(moved.status).toBe(400);
    expect(moved.body.message).toMatch(/protected directly at https:\/\/mcp\.example/);
    const reRegistered = await rest('POST', '/v1/servers/register', { server_id, name: 'Moved', endpoints: { mcp: 'https://tools.example/mcp' } }, root.token);
    expect(reRegistered.status).toBe(400);
    expect(await query('SELECT mcp_url FROM mcp_servers WHERE id = ?', server_id)).toEqual([{ mcp_url: 'https://mcp.example/mcp' }]);
  });

  it('is refused to a user who does not administer the server', async () => {
    const { server_id, resource } = await directServer();
    const someone = await user();
    const res = await rest('PUT', `/v1/servers/${server_id}/direct`, { resources: [] }, someone.token);
    expect(res.status).toBe(403);
    expect(await query('SELECT resource FROM mcp_server_resources WHERE server_id = ?', server_id)).toEqual([{ resource }]);
  });
});

describe('/oauth/authorize and /oauth/token for a direct resource', () => {
  it('issues an RFC 9068 token whose aud is the canonical resource, matched whatever the host case and trailing slash', async () => {
    const { resource, name } = await directServer();
    const asked = resource.replace('https://mcp.example', 'https://MCP.EXAMPLE') + '/';
    const { flow, tokens } = await signIn(asked, { scope: 'notes:read notes:write' });
    expect(flow.html).toContain(`the MCP server <strong>${name}</strong>`);
    expect(flow.html).toContain('Read your notes');
    expect(tokens!.status).toBe(200);
    expect(tokens!.body.scope).toBe('notes:read notes:write');
    const claims = decodeJwt(tokens!.body.access_token);
    expect(decodeProtectedHeader(tokens!.body.access_token).typ).toBe('at+jwt');
    expect(claims).toMatchObject({ iss: ORIGIN, aud: resource, sub: root.chittyId, scope: 'notes:read notes:write' });
    expect(typeof claims.client_id).toBe('string');
  });

  it('grants the server’s default scopes when none is asked for, and refuses scopes the server does not define', async () => {
    const { resource } = await directServer();
    const { tokens } = await signIn(resource, { scope: '' });
    expect(tokens!.body.scope).toBe('notes:read notes:write');
    const clientId = (await registerClient()).body.client_id;
    const res = await authorizeGet({ client_id: clientId, resource, scope: 'mcp:read' });
    const location = new URL(res.headers.get('location')!);
    expect(location.searchParams.get('error')).toBe('invalid_scope');
    expect(location.searchParams.get('error_description')).toMatch(/unknown scope mcp:read for Notes/);
  });

  it('answers invalid_target for an unregistered URL, one with a query, and one of a server no longer protected', async () => {
    const { server_id, resource } = await directServer();
    await rest('PUT', `/v1/servers/${server_id}/direct`, { resources: [] }, root.token);
    const clientId = (await registerClient()).body.client_id;
    for (const r of ['https://mcp.example/unknown/mcp', `${resource}?x=1`, resource]) {
      const location = new URL((await authorizeGet({ client_id: clientId, resource: r, scope: 'notes:read' })).headers.get('location')!);
      expect(location.searchParams.get('error')).toBe('invalid_target');
    }
  });

  it('narrows the scopes to what the portal policy lets the user do', async () => {
    const { server_id, resource } = await directServer();
    await rest('PUT', `/v1/servers/${server_id}/policy`, { access: { view: ['admin', 'user'], connect: ['admin', 'user'], call: ['admin'], admin: ['admin'] } }, root.token);
    const ada = await user();
    const { flow, tokens } = await signIn(resource, { who: ada, scope: 'notes:read notes:write' });
    expect(flow.html).not.toContain('notes:write');
    expect(tokens!.body.scope).toBe('notes:read');
    expect(decodeJwt(tokens!.body.access_token)).toMatchObject({ sub: ada.chittyId, aud: resource, scope: 'notes:read' });
  });

  it('shows a page saying why when the policy denies connect, and audits the denial', async () => {
    const { server_id, resource, name } = await directServer();
    await rest('PUT', `/v1/servers/${server_id}/policy`, { access: { view: ['admin', 'user'], connect: ['admin'], call: ['admin'], admin: ['admin'] } }, root.token);
    const ada = await user();
    const before = await auditHead();
    const { flow, tokens } = await signIn(resource, { who: ada, scope: 'notes:read' });
    expect(tokens).toBeNull();
    expect(flow.res.status).toBe(403);
    expect(flow.redirect).toBeNull();
    expect(flow.html).toContain('Access denied');
    expect(flow.html).toContain(`Your access policy does not allow you to connect to ${name}`);
    const events = await auditSince(before);
    expect(events.find((e) => e.action === 'oauth.authorize')).toMatchObject({ actor: ada.chittyId, outcome: 'denied' });
    expect(await query('SELECT id FROM oauth_grants WHERE chitty_id = ? AND resource = ?', ada.chittyId, resource)).toEqual([]);
  });

  it('refuses a user who turned the server off for themselves', async () => {
    const { server_id, resource } = await directServer();
    const ada = await user();
    await rest('PUT', `/v1/servers/${server_id}/enabled`, { enabled: false }, ada.token);
    const { flow } = await signIn(resource, { who: ada, scope: 'notes:read' });
    expect(flow.res.status).toBe(403);
    expect(flow.html).toContain('turned');
  });

  it('rotates refresh tokens, and a refresh after the user lost connect access revokes the grant', async () => {
    const { server_id, resource } = await directServer();
    const ada = await user();
    const { clientId, tokens } = await signIn(resource, { who: ada, scope: 'notes:read' });
    const first = await token({ grant_type: 'refresh_token', refresh_token: tokens!.body.refresh_token, client_id: clientId, resource });
    expect(first.status).toBe(200);
    expect(first.body.refresh_token).not.toBe(tokens!.body.refresh_token);
    expect(decodeJwt(first.body.access_token).aud).toBe(resource);
    await rest('PUT', `/v1/servers/${server_id}/policy`, { access: { view: ['admin', 'user'], connect: ['admin'], call: ['admin'], admin: ['admin'] } }, root.token);
    const second = await token({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: clientId });
    expect(second.status).toBe(400);
    expect(second.body.error).toBe('invalid_grant');
    expect(second.body.error_description).toMatch(/does not allow you to connect/);
    const [grant] = await query('SELECT revoked_at, revoked_reason FROM oauth_grants WHERE chitty_id = ? AND resource = ?', ada.chittyId, resource);
    expect(grant).toMatchObject({ revoked_reason: 'access_policy' });
  });

  it('gives client_credentials tokens only to a client identity the policy lets connect', async () => {
    const { server_id, resource } = await directServer();
    const client = await rest('POST', '/v1/oauth/clients', { client_name: 'Notes robot', redirect_uris: [], grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_post' }, root.token);
    const ask = () => token({ grant_type: 'client_credentials', client_id: client.body.client_id, client_secret: client.body.client_secret, resource, scope: 'notes:read' });
    const refused = await ask();
    expect([refused.status, refused.body.error]).toEqual([400, 'unauthorized_client']);
    expect(refused.body.error_description).toMatch(/does not allow you to connect/);
    await rest('POST', '/v1/permissions/grants', { chitty_id: client.body.chitty_id, permission: `mcp:${server_id}:connect` }, root.token);
    const granted = await ask();
    expect(granted.status).toBe(200);
    expect(decodeJwt(granted.body.access_token)).toMatchObject({ aud: resource, sub: client.body.chitty_id, scope: 'notes:read' });
  });

  it('accepts dynamic registration with a direct server’s scopes and refuses unknown ones', async () => {
    await directServer();
    expect((await registerClient({ scope: 'notes:read notes:write' })).status).toBe(201);
    expect((await registerClient({ scope: 'notes:read no-such-scope' })).status).toBe(400);
  });
});

describe('the audience boundary (RFC 9068 §4, RFC 8707)', () => {
  it('a token for server A fails server B’s audience check and ChittyAuth’s own /v1 and /mcp', async () => {
    const a = await directServer();
    const b = await directServer();
    const { tokens } = await signIn(a.resource, { scope: 'notes:read' });
    const jwt = tokens!.body.access_token as string;
    const keys = await jwks();
    await expect(jwtVerify(jwt, keys, { issuer: ORIGIN, audience: a.resource, typ: 'at+jwt', algorithms: ['ES256'] })).resolves.toBeTruthy();
    await expect(jwtVerify(jwt, keys, { issuer: ORIGIN, audience: b.resource, typ: 'at+jwt', algorithms: ['ES256'] })).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' });
    // The one credential path (server/auth/authenticate.ts) checks aud against the door's own resource.
    const v1 = await rest('GET', '/v1/sessions', undefined, jwt);
    expect(v1.status).toBe(401);
    const overMcp = await SELF.fetch(`${ORIGIN}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }) });
    expect(overMcp.status).toBe(401);
    expect(overMcp.headers.get('www-authenticate')).toMatch(/error="invalid_token", error_description="the access token is wrong audience"/);
    // The gateway route of the same server is another resource: refused too.
    const viaGateway = await SELF.fetch(`${ORIGIN}/gw/${a.server_id}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
    expect(viaGateway.status).toBe(401);
  });

  it('a token for ChittyAuth’s own /mcp is refused by a direct server’s audience check', async () => {
    const a = await directServer();
    const { tokens } = await signIn(`${ORIGIN}/mcp`, { scope: 'mcp:read' });
    await expect(jwtVerify(tokens!.body.access_token, await jwks(), { issuer: ORIGIN, audience: a.resource, typ: 'at+jwt' })).rejects.toMatchObject({ claim: 'aud' });
  });
});

describe('/oauth/introspect for a direct resource (RFC 7662)', () => {
  it('answers the resource server’s own client, stops when access or the grant goes, and answers others inactive', async () => {
    const rs = await confidentialClient();
    const stranger = await confidentialClient();
    const { server_id, resource } = await directServer({ introspection_client_id: rs.id });
    const ada = await user();
    const { tokens } = await signIn(resource, { who: ada, scope: 'notes:read' });
    const jwt = tokens!.body.access_token as string;
    const active = await introspect(jwt, rs);
    expect(active).toMatchObject({ active: true, token_type: 'access_token', aud: resource, sub: ada.chittyId, scope: 'notes:read', iss: ORIGIN });
    expect(await introspect(jwt, stranger)).toEqual({ active: false });
    // The portal policy is decided on every introspection: connect removed, the token is inactive at once.
    await rest('PUT', `/v1/servers/${server_id}/policy`, { access: { view: ['admin', 'user'], connect: ['admin'], call: ['admin'], admin: ['admin'] } }, root.token);
    expect(await introspect(jwt, rs)).toEqual({ active: false });
    await rest('PUT', `/v1/servers/${server_id}/policy`, { access: { view: ['admin', 'user'], connect: ['admin', 'user'], call: ['admin', 'user'], admin: ['admin'] } }, root.token);
    expect((await introspect(jwt, rs)).active).toBe(true);
    // Removing the resource revokes its grants.
    await rest('PUT', `/v1/servers/${server_id}/direct`, { resources: [], introspection_client_id: rs.id }, root.token);
    expect(await introspect(jwt, rs)).toEqual({ active: false });
    expect(await query('SELECT revoked_reason FROM oauth_grants WHERE chitty_id = ? AND resource = ?', ada.chittyId, resource)).toEqual([{ revoked_reason: 'resource_removed' }]);
  });

  it('a disabled account’s direct tokens are inactive at once and cannot be refreshed', async () => {
    const rs = await confidentialClient();
    const { resource } = await directServer({ introspection_client_id: rs.id });
    const ada = await user();
    const { clientId, tokens } = await signIn(resource, { who: ada, scope: 'notes:read' });
    expect((await introspect(tokens!.body.access_token, rs)).active).toBe(true);
    expect((await rest('POST', `/v1/accounts/${ada.chittyId}/disable`, {}, root.token)).status).toBe(200);
    expect(await introspect(tokens!.body.access_token, rs)).toEqual({ active: false });
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: tokens!.body.refresh_token, client_id: clientId });
    expect([refreshed.status, refreshed.body.error]).toEqual([400, 'invalid_grant']);
  });

  it('refuses a public client as the introspection client', async () => {
    const { server_id, resource } = await directServer();
    const pub = await rest('POST', '/v1/oauth/clients', { client_name: 'Public', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }, root.token);
    const res = await rest('PUT', `/v1/servers/${server_id}/direct`, { resources: [resource], introspection_client_id: pub.body.client_id }, root.token);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/confidential/);
  });

  it('revoking the token at /oauth/revoke ends it for the resource server too', async () => {
    const rs = await confidentialClient();
    const { resource } = await directServer({ introspection_client_id: rs.id });
    const { clientId, tokens } = await signIn(resource, { scope: 'notes:read' });
    const revoked = await SELF.fetch(`${ORIGIN}/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: tokens!.body.refresh_token, client_id: clientId }).toString() });
    expect(revoked.status).toBe(200);
    expect(await introspect(tokens!.body.access_token, rs)).toEqual({ active: false });
  });
});

describe('servers.delete of a direct server', () => {
  it('revokes the grants for its resources and frees the URLs', async () => {
    const { server_id, resource } = await directServer();
    const { tokens } = await signIn(resource, { scope: 'notes:read' });
    expect(tokens!.status).toBe(200);
    expect((await rest('DELETE', `/v1/servers/${server_id}`, undefined, root.token)).status).toBe(200);
    expect(await query('SELECT revoked_reason FROM oauth_grants WHERE resource = ?', resource)).toEqual([{ revoked_reason: 'server_removed' }]);
    expect(await query('SELECT * FROM mcp_server_resources WHERE resource = ?', resource)).toEqual([]);
  });
});
