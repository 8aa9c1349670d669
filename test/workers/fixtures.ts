import { env } from 'cloudflare:test';
import { accessAssertion } from './access';
import { ADMIN_PASSWORD, rest, type Caller } from './helpers';
import { connectUpstream, portalBrowser, registerOAuthUpstream } from './gateway-helpers';
import { authorizeAsBrowser, MCP_RESOURCE, REDIRECT, fullFlow } from './oauth-helpers';

/**
 * One case per contract procedure: how to make a valid input for it (a fresh one per call, so that
 * each door acts on its own target). The parity and bad-input tests walk the contract and fail for any
 * procedure that has no case here: a new procedure cannot be left out by accident.
 */
export interface Prepared {
  input: Record<string, unknown>;
  /** Strings that legitimately differ between calls (a generated username), replaced before comparing. */
  volatile?: string[];
}

export type Fixture = (admin: Caller) => Promise<Prepared>;

let n = 0;
const unique = (prefix: string) => `${prefix}${++n}x${crypto.randomUUID().slice(0, 6)}`;

async function newAccount(admin: Caller) {
  const username = unique('acct');
  const res = await rest('POST', '/v1/accounts', { username, password: 'parity password 1' }, admin.token);
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  return { username, chittyId: res.body.chitty_id as string };
}

async function newClient(admin: Caller, extra: Record<string, unknown> = {}) {
  const res = await rest('POST', '/v1/oauth/clients', { client_name: 'Parity client', redirect_uris: ['https://app.example/callback', REDIRECT], ...extra }, admin.token);
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  return res.body as { client_id: string; client_secret: string | null };
}

/** A registered MCP server (the SDK test server at https://mcp.example, see test/fixtures/third-parties.ts). */
async function newServer(admin: Caller) {
  const server_id = unique('srv-').toLowerCase();
  const res = await rest('POST', '/v1/servers/register', { server_id, name: 'Parity server', endpoints: { mcp: 'https://mcp.example/mcp' }, tags: ['parity'] }, admin.token);
  if (res.status !== 200) throw new Error(JSON.stringify(res.body));
  return server_id;
}

/** A registered device of the caller (not bound to its session). */
async function newDevice(admin: Caller): Promise<string> {
  const res = await rest('POST', '/v1/devices', { name: 'Parity phone', type: 'mobile', bind_session: false }, admin.token);
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  return res.body.device_id as string;
}

const withServer = (make: (serverId: string) => Record<string, unknown>): Fixture => async (a) => {
  const id = await newServer(a);
  return { input: make(id), volatile: [id] };
};

export const fixtures: Record<string, Fixture> = {
  'identities.mint': async () => ({ input: { type: 'APP', display_name: 'Parity app' } }),
  'identities.get': async (a) => ({ input: { chitty_id: a.chittyId } }),
  'identities.validate': async (a) => ({ input: { chitty_id: a.chittyId } }),

  'accounts.bootstrap': async () => ({ input: { setup_token: env.SETUP_TOKEN, username: 'second-admin', password: ADMIN_PASSWORD } }),
  'accounts.create': async () => {
    const username = unique('new');
    return { input: { username, password: 'a long enough password', display_name: 'New Person' }, volatile: [username] };
  },
  'accounts.list': async () => ({ input: { limit: 200 } }),
  'accounts.me': async () => ({ input: {} }),
  'accounts.get': async (a) => ({ input: { chitty_id: a.chittyId } }),
  'accounts.setPassword': async (a) => {
    const { username, chittyId } = await newAccount(a);
    return { input: { chitty_id: chittyId, new_password: 'another long password' }, volatile: [username] };
  },
  'accounts.disable': async (a) => {
    const { username, chittyId } = await newAccount(a);
    return { input: { chitty_id: chittyId }, volatile: [username] };
  },
  'accounts.enable': async (a) => {
    const { username, chittyId } = await newAccount(a);
    await rest('POST', `/v1/accounts/${chittyId}/disable`, {}, a.token);
    return { input: { chitty_id: chittyId }, volatile: [username] };
  },
  'accounts.unlock': async (a) => {
    const { username, chittyId } = await newAccount(a);
    await rest('POST', '/v1/accounts/sign-in', { username, password: 'a wrong password' });
    return { input: { chitty_id: chittyId }, volatile: [username] };
  },
  'accounts.signIn': async (a) => {
    const { username } = await newAccount(a);
    return { input: { username, password: 'parity password 1', device_name: 'Parity laptop' }, volatile: [username] };
  },

  'apiKeys.create': async () => ({ input: { name: 'parity key', scopes: ['mcp:read'], expires_in: '7d' } }),
  'apiKeys.validate': async (a) => {
    const res = await rest('POST', '/v1/api-keys', { name: 'to validate', scopes: ['mcp:read'] }, a.token);
    return { input: { api_key: res.body.api_key } };
  },
  'apiKeys.list': async () => ({ input: { limit: 200 } }),
  'apiKeys.revoke': async (a) => {
    const res = await rest('POST', '/v1/api-keys', { name: 'to revoke' }, a.token);
    return { input: { key_id: res.body.key_id } };
  },

  'jwt.generate': async () => ({ input: { claims: { role: 'user', permissions: ['read'] }, expires_in: '24h', audience: 'https://app.example' } }),
  'jwt.validate': async (a) => {
    const res = await rest('POST', '/v1/jwt', { claims: { role: 'user' }, expires_in: '1h' }, a.token);
    return { input: { token: res.body.token } };
  },
  'jwt.rotateKeys': async () => ({ input: {} }),
  'jwt.listKeys': async () => ({ input: {} }),

  'permissions.check': async (a) => ({ input: { chitty_id: a.chittyId, permission: 'api_keys:generate' } }),
  'permissions.grant': async (a) => {
    const { username, chittyId } = await newAccount(a);
    return { input: { chitty_id: chittyId, permission: 'jwt:validate', expires_in: '1d' }, volatile: [username] };
  },
  'permissions.revoke': async (a) => {
    const { username, chittyId } = await newAccount(a);
    const res = await rest('POST', '/v1/permissions/grants', { chitty_id: chittyId, role: 'readonly' }, a.token);
    return { input: { grant_id: res.body.grant_id }, volatile: [username] };
  },
  'permissions.list': async () => ({ input: {} }),
  'permissions.roles': async () => ({ input: {} }),

  'sessions.list': async () => ({ input: {} }),
  'sessions.revoke': async () => {
    const res = await rest('POST', '/v1/accounts/sign-in', { username: 'admin', password: ADMIN_PASSWORD, device_name: 'Old phone' });
    return { input: { session_id: res.body.session_id } };
  },

  'audit.list': async () => ({ input: { action: 'accounts.bootstrap', outcome: 'success', limit: 10 } }),
  'audit.verify': async () => ({ input: {} }),

  'oauth.clients.register': async () => ({ input: { client_name: 'Parity client', redirect_uris: ['https://app.example/callback'], scopes: ['mcp:read'] } }),
  'oauth.clients.list': async () => ({ input: { kind: 'preregistered' } }),
  'oauth.clients.get': async (a) => ({ input: { client_id: (await newClient(a)).client_id } }),
  'oauth.clients.update': async (a) => ({ input: { client_id: (await newClient(a)).client_id, client_name: 'Renamed client', rotate_secret: true } }),
  'oauth.clients.delete': async (a) => ({ input: { client_id: (await newClient(a)).client_id } }),
  'oauth.idps.register': async () => {
    const issuer = `https://${unique('idp').toLowerCase()}.example`;
    return { input: { issuer, jwks_uri: 'https://idp.example/jwks.json', client_ids: ['parity-client'], scopes: ['mcp:read'] }, volatile: [issuer] };
  },
  'oauth.idps.list': async () => ({ input: {} }),
  'oauth.idps.delete': async (a) => {
    const res = await rest('POST', '/v1/oauth/idps', { issuer: `https://${unique('idp').toLowerCase()}.example`, jwks_uri: 'https://idp.example/jwks.json', client_ids: ['parity-client'] }, a.token);
    if (res.status !== 201) throw new Error(JSON.stringify(res.body));
    return { input: { idp_id: res.body.idp_id } };
  },
  'oauth.grants.list': async () => ({ input: {} }),
  'oauth.grants.revoke': async () => {
    await fullFlow();
    const row = await env.DB.prepare('SELECT id FROM oauth_grants ORDER BY id DESC LIMIT 1').first<{ id: string }>();
    return { input: { grant_id: row!.id } };
  },
  'tokens.validate': async (a) => ({ input: { token: (await rest('POST', '/v1/api-keys', { name: 'to validate', scopes: ['mcp:read'] }, a.token)).body.api_key } }),
  'mcp.validate': async (a) => ({ input: { token: (await rest('POST', '/v1/api-keys', { name: 'to validate', scopes: ['mcp:read'] }, a.token)).body.api_key } }),
  'mcp.linkedAppOAuth': async (a) => ({ input: { client_id: (await newClient(a)).client_id, redirect_uri: 'https://app.example/callback', scopes: ['mcp:read'] } }),
  'mcp.linkedAppToken': async (a) => {
    const client = await newClient(a, { token_endpoint_auth_method: 'none' });
    const flow = await authorizeAsBrowser({ clientId: client.client_id, scope: 'mcp:read' });
    return { input: { grant_type: 'authorization_code', client_id: client.client_id, code: flow.code!, code_verifier: flow.verifier, redirect_uri: REDIRECT, resource: MCP_RESOURCE } };
  },
  'mcp.portalAuthenticate': async () => ({ input: { assertion: await accessAssertion('portal.user@example.com') } }),

  'servers.register': async () => {
    const server_id = unique('srv-').toLowerCase();
    return { input: { server_id, name: 'Parity server', description: 'Registered by the parity test', endpoints: { mcp: 'https://mcp.example/mcp' }, tags: ['parity'] }, volatile: [server_id] };
  },
  'servers.list': async () => ({ input: { limit: 200 } }),
  'servers.get': withServer((server_id) => ({ server_id })),
  'servers.update': withServer((server_id) => ({ server_id, description: 'Updated', tags: ['parity', 'updated'] })),
  'servers.delete': withServer((server_id) => ({ server_id })),
  'servers.check': withServer((server_id) => ({ server_id })),
  'servers.policy': withServer((server_id) => ({ server_id })),
  'servers.setPolicy': withServer((server_id) => ({
    server_id,
    access: { view: ['admin', 'user'], connect: ['admin'], call: ['admin'], admin: ['admin'] },
    tools: [{ tool: 'add', effect: 'deny', role: 'readonly' }],
  })),
  'servers.setEnabled': withServer((server_id) => ({ server_id, enabled: false })),
  'servers.access': withServer((server_id) => ({ server_id, action: 'call', tool: 'echo' })),
  'servers.import': async () => {
    const server_id = unique('imp-').toLowerCase();
    return {
      input: { server_id, server: { $schema: 'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json', name: 'example.mcp/weather', title: 'Weather', description: 'Imported', version: '1.2.0', remotes: [{ type: 'streamable-http', url: 'https://mcp.example/mcp' }] } },
      volatile: [server_id],
    };
  },
  'servers.export': withServer((server_id) => ({ server_id })),
  'servers.direct': withServer((server_id) => ({ server_id })),
  'servers.setDirect': withServer((server_id) => ({
    server_id,
    // Resource URLs are unique across servers: one path per fresh server.
    resources: [`https://mcp.example/direct/${server_id}/mcp`],
    scopes: [{ name: 'notes:read', description: 'Read your notes', action: 'connect' }, { name: 'notes:write', action: 'call', default: false }],
  })),
  'gateway.encode': async () => ({ input: { domain: 'mcp.example' } }),
  'gateway.connections.list': async () => ({ input: {} }),
  'gateway.connections.disconnect': async (a) => {
    const server_id = await registerOAuthUpstream(a);
    await connectUpstream(await portalBrowser(), server_id);
    return { input: { server_id }, volatile: [server_id] };
  },

  'devices.register': async () => ({ input: { name: 'Parity laptop', type: 'claude_desktop', bind_session: false } }),
  'devices.list': async () => ({ input: {} }),
  'devices.rename': async (a) => ({ input: { device_id: await newDevice(a), name: 'Renamed laptop' } }),
  'devices.remove': async (a) => ({ input: { device_id: await newDevice(a) } }),
  'sync.get': async (a) => {
    const server_id = unique('st-').toLowerCase();
    await rest('PUT', `/v1/sync/state/${server_id}`, { base_revision: 0, document: { theme: 'dark' } }, a.token);
    return { input: { server_id }, volatile: [server_id] };
  },
  'sync.push': async () => {
    const server_id = unique('st-').toLowerCase();
    return { input: { server_id, base_revision: 0, document: { theme: 'dark', tabs: ['a', 'b'] } }, volatile: [server_id] };
  },
  'sync.pull': async () => ({ input: { cursor: '999999999', limit: 10 } }),
  'sync.force': async (a) => ({ input: { device_id: await newDevice(a) } }),
  'sync.session': async () => {
    const res = await rest('POST', '/v1/accounts/sign-in', { username: 'admin', password: ADMIN_PASSWORD, device_name: 'Parity sync' });
    return { input: { session_id: res.body.session_id, servers: ['srv-a', 'srv-b'] } };
  },
  'sync.sessions': async () => ({ input: {} }),
  'sync.createToken': withServer((server_id) => ({ server_id, name: 'Parity sync token' })),
};
