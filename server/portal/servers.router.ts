import { ORPCError } from '@orpc/server';
import type { Authorizer } from '../auth/authorizer';
import { encrypt } from '../crypto/encryption';
import { isUniqueViolation, type DB } from '../db/schema';
import { newId } from '../lib/ids';
import { assertPublicUrl, OutboundRefused } from '../lib/outbound';
import { nowIso } from '../lib/time';
import { invalidInput } from '../adapters/errors';
import { authzOf, os } from '../orpc';
import { listGrants } from '../permissions/permissions.store';
import { ACTIONS, actionAllowed, allowedActions, callerFrom, toolAllowed, type AccessMap, type Action, type Caller } from './access';
import * as v from 'valibot';
import { RateLimitsInputSchema, SERVER_JSON_META_KEY, SERVER_JSON_SCHEMA } from '../../contract/servers';
import { probeServer, recordHealth, secretAad } from './health';
import { rateLimitsOf } from '../gateway/rate-limit';
import { upstreamAccessToken } from '../gateway/upstream-oauth';
import { findAccess, findEnabled, findServer, listServers, listToolRules, type ServerRow } from './servers.store';
import { metadataUrlOf, registrableResource } from './direct';
import { proveControl } from './direct.proof';
import { deleteDirect, findDirectSettings, findResourceOwners, listResourcesOf, listScopesOf, replaceDirect, revokeGrantsForResources } from './direct.store';
import { findClientRow, isDevelopment } from '../oauth/clients';
import { gatewayResource } from '../oauth/params';
import type { Env } from '../env';

type AuthInput = { type: 'none' } | { type: 'header'; header_name: string; header_value: string } | { type: 'oauth'; scopes?: string[]; client_id?: string; client_secret?: string };

const callerFor = async (authz: Authorizer) => callerFrom(authz.principal.chittyId, await authz.grants(), authz.principal.scopes);

function toServer(env: Env, row: ServerRow, access: AccessMap, caller: Caller, enabled: boolean, direct: string[]) {
  const config = JSON.parse(row.auth_config) as { header_name?: string; scopes?: string[]; client_id?: string };
  return {
    server_id: row.id,
    name: row.name,
    description: row.description,
    version: row.version,
    endpoints: { mcp: row.mcp_url, health: row.health_url, oauth_callback: row.oauth_callback_url },
    transport: row.transport,
    auth: { type: row.auth_type, header_name: config.header_name ?? null, scopes: config.scopes ?? null, client_id: config.client_id ?? null, has_secret: row.auth_secret_encrypted !== null },
    tags: JSON.parse(row.tags) as string[],
    owner: row.owner,
    status: row.status,
    status_detail: row.status_detail,
    latency_ms: row.latency_ms,
    protocol_version: row.protocol_version,
    capabilities: row.capabilities ? (JSON.parse(row.capabilities) as Record<string, unknown>) : null,
    tools: row.tools ? (JSON.parse(row.tools) as { name: string; title: string | null; description: string | null }[]) : [],
    checked_at: row.checked_at,
    rate_limits: rateLimitsOut(row),
    reachable: { gateway: gatewayResource(env, row.id), direct },
    enabled_for_me: enabled,
    my_access: allowedActions(access, row, caller),
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

function rateLimitsOut(row: ServerRow) {
  const { perUser, perServer } = rateLimitsOf(row);
  return { per_user: { requests: perUser.requests, window_seconds: perUser.windowSeconds }, per_server: { requests: perServer.requests, window_seconds: perServer.windowSeconds } };
}

type LimitInput = { requests: number; window_seconds: number } | null | undefined;
type RateLimitsInput = { per_user?: LimitInput; per_server?: LimitInput };

/** Columns for the limits given; an omitted limit is left out (unchanged on update), null means the default. */
function rateLimitColumns(input: RateLimitsInput) {
  const columns: Partial<Pick<ServerRow, 'rate_limit_user' | 'rate_limit_user_window_s' | 'rate_limit_server' | 'rate_limit_server_window_s'>> = {};
  if (input.per_user !== undefined) Object.assign(columns, { rate_limit_user: input.per_user?.requests ?? null, rate_limit_user_window_s: input.per_user?.window_seconds ?? null });
  if (input.per_server !== undefined) Object.assign(columns, { rate_limit_server: input.per_server?.requests ?? null, rate_limit_server_window_s: input.per_server?.window_seconds ?? null });
  return columns;
}

/** A server's direct resources live on its MCP endpoint's origin: the endpoint cannot move away from them. */
async function keepDirectOrigin(db: DB, serverId: string, mcpUrl: string) {
  const origin = new URL(mcpUrl).origin;
  const stranded = (await listResourcesOf(db, serverId)).find((r) => new URL(r).origin !== origin);
  if (stranded) throw invalidInput('endpoints.mcp', `the server is protected directly at ${stranded}; remove that resource first (servers.setDirect) or keep the endpoint on ${new URL(stranded).origin}`);
}

async function directOut(env: Env, db: DB, serverId: string) {
  const [resources, scopes, settings] = await Promise.all([listResourcesOf(db, serverId), listScopesOf(db, serverId), findDirectSettings(db, serverId)]);
  return {
    server_id: serverId,
    authorization_server: env.ISSUER,
    resources: resources.map((resource) => ({ resource, metadata_url: metadataUrlOf(resource) })),
    scopes,
    introspection_client_id: settings?.introspection_client_id ?? null,
  };
}

const notFound = (id: string) => new ORPCError('NOT_FOUND', { status: 404, message: `No MCP server ${id}` });

/** The server, if the caller may at least see it (a hidden server is indistinguishable from a missing one). */
async function visibleServer(db: DB, authz: Authorizer, id: string) {
  const row = await findServer(db, id);
  if (!row) throw notFound(id);
  const caller = await callerFor(authz);
  const access = await findAccess(db, id);
  if (!actionAllowed(access, row, caller, 'view')) throw notFound(id);
  return { row, caller, access };
}

async function requireAction(db: DB, authz: Authorizer, id: string, action: Action, orPermission: string) {
  const found = await visibleServer(db, authz, id);
  if (!actionAllowed(found.access, found.row, found.caller, action) && !(await authz.can(orPermission))) {
    throw new ORPCError('FORBIDDEN', { status: 403, message: `Permission denied: this requires ${orPermission} or ${action} access to ${id}`, data: { permission: orPermission } });
  }
  return found;
}

async function serverOut(env: Env, db: DB, authz: Authorizer, id: string) {
  const { row, caller, access } = await visibleServer(db, authz, id);
  return toServer(env, row, access, caller, await findEnabled(db, caller.chittyId, id), await listResourcesOf(db, id));
}

/** https to public addresses only (loopback in development): refused URLs are a 422 naming the URL. */
async function checkUrls(env: Parameters<typeof assertPublicUrl>[0], endpoints: { mcp: string; health?: string; oauth_callback?: string }) {
  try {
    for (const url of [endpoints.mcp, endpoints.health, endpoints.oauth_callback]) if (url) await assertPublicUrl(env, url);
  } catch (error) {
    if (error instanceof OutboundRefused) throw new ORPCError('URL_REFUSED', { status: 422, message: `URL refused: ${error.message}` });
    throw error;
  }
}

async function authColumns(secretKey: string, serverId: string, auth: AuthInput) {
  if (auth.type === 'header') {
    return { auth_type: 'header' as const, auth_config: JSON.stringify({ header_name: auth.header_name }), auth_secret_encrypted: await encrypt(secretKey, auth.header_value, secretAad(serverId)) };
  }
  if (auth.type === 'oauth') {
    return {
      auth_type: 'oauth' as const,
      auth_config: JSON.stringify({ scopes: auth.scopes ?? null, client_id: auth.client_id ?? null }),
      auth_secret_encrypted: auth.client_secret ? await encrypt(secretKey, auth.client_secret, secretAad(serverId)) : null,
    };
  }
  return { auth_type: 'none' as const, auth_config: '{}', auth_secret_encrypted: null };
}

interface RegisterInput {
  server_id: string;
  name: string;
  description?: string;
  version?: string;
  endpoints: { mcp: string; health?: string; oauth_callback?: string };
  transport: 'streamable-http' | 'sse';
  auth: AuthInput;
  tags: string[];
  rate_limits?: RateLimitsInput;
}

type RegisterContext = Parameters<Parameters<typeof os.servers.register.handler>[0]>[0]['context'];

/** Registration, shared by servers.register and servers.import: idempotent for the owner. */
async function registerServer(context: RegisterContext, input: RegisterInput) {
    const authz = authzOf(context);
  await checkUrls(context.env, input.endpoints);
  const existing = await findServer(context.db, input.server_id);
  if (existing && existing.owner !== authz.principal.chittyId && !(await authz.can('portal:servers:write'))) {
    throw new ORPCError('CONFLICT', { status: 409, message: `server_id ${input.server_id} is registered by someone else` });
  }
  if (existing) await keepDirectOrigin(context.db, existing.id, input.endpoints.mcp);
  const now = nowIso();
  const columns = {
    name: input.name,
    description: input.description ?? null,
    version: input.version ?? null,
    mcp_url: input.endpoints.mcp,
    health_url: input.endpoints.health ?? null,
    oauth_callback_url: input.endpoints.oauth_callback ?? null,
    transport: input.transport,
    ...(await authColumns(context.env.ENCRYPTION_KEY, input.server_id, input.auth)),
    tags: JSON.stringify([...new Set(input.tags)]),
    // Registration states the whole server: limits not given are the defaults.
    ...rateLimitColumns({ per_user: input.rate_limits?.per_user ?? null, per_server: input.rate_limits?.per_server ?? null }),
    updated_at: now,
  };
  // Probe before storing anything: a URL that redirects or resolves somewhere private is refused outright;
  // a server that is merely down is registered with that status.
  const health = await probeServer(context.env, { id: input.server_id, ...columns });
  if (health.refused) throw new ORPCError('URL_REFUSED', { status: 422, message: `URL refused: ${health.refused}` });
  const healthColumns = {
    status: health.status,
    status_detail: health.detail,
    latency_ms: health.latencyMs,
    protocol_version: health.protocolVersion,
    capabilities: health.capabilities ? JSON.stringify(health.capabilities) : null,
    tools: health.tools ? JSON.stringify(health.tools) : null,
    checked_at: now,
  };
  if (existing) {
    await context.db.updateTable('mcp_servers').set({ ...columns, ...healthColumns }).where('id', '=', input.server_id).execute();
  } else {
    await context.db.insertInto('mcp_servers').values({ id: input.server_id, ...columns, ...healthColumns, owner: authz.principal.chittyId, created_at: now }).execute();
  }
  context.audit.target = input.server_id;
  context.audit.detail = { created: !existing, mcp_url: input.endpoints.mcp, auth: input.auth.type, status: health.status };
  return { server: await serverOut(context.env, context.db, authz, input.server_id), created: !existing };
}

export const servers = {
  register: os.servers.register.handler(async ({ input, context }) => registerServer(context, { ...input, auth: input.auth as AuthInput })),

  list: os.servers.list.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const caller = await callerFor(authz);
    const rows = await listServers(context.db, input);
    const page = rows.slice(0, input.limit);
    const items = [];
    for (const row of page) {
      const access = await findAccess(context.db, row.id);
      if (actionAllowed(access, row, caller, 'view')) items.push(toServer(context.env, row, access, caller, await findEnabled(context.db, caller.chittyId, row.id), await listResourcesOf(context.db, row.id)));
    }
    return { items, next_cursor: rows.length > input.limit ? page.at(-1)!.id : null };
  }),

  get: os.servers.get.handler(async ({ input, context }) => serverOut(context.env, context.db, authzOf(context), input.server_id)),

  update: os.servers.update.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const { row } = await requireAction(context.db, authz, input.server_id, 'admin', 'portal:servers:write');
    if (input.endpoints) {
      await checkUrls(context.env, input.endpoints);
      await keepDirectOrigin(context.db, row.id, input.endpoints.mcp);
    }
    const auth = input.auth ? await authColumns(context.env.ENCRYPTION_KEY, row.id, input.auth as AuthInput) : {};
    let health: Awaited<ReturnType<typeof probeServer>> | null = null;
    if (input.endpoints || input.auth) {
      health = await probeServer(context.env, { ...row, ...auth, ...(input.endpoints ? { mcp_url: input.endpoints.mcp } : {}) });
      if (health.refused) throw new ORPCError('URL_REFUSED', { status: 422, message: `URL refused: ${health.refused}` });
    }
    await context.db
      .updateTable('mcp_servers')
      .set({
        ...(input.name !== undefined ? { name: input.name } : {}),
        ...(input.description !== undefined ? { description: input.description } : {}),
        ...(input.version !== undefined ? { version: input.version } : {}),
        ...(input.endpoints ? { mcp_url: input.endpoints.mcp, health_url: input.endpoints.health ?? null, oauth_callback_url: input.endpoints.oauth_callback ?? null } : {}),
        ...auth,
        ...(input.tags ? { tags: JSON.stringify([...new Set(input.tags)]) } : {}),
        ...(input.rate_limits ? rateLimitColumns(input.rate_limits) : {}),
        updated_at: nowIso(),
      })
      .where('id', '=', row.id)
      .execute();
    if (health) await recordHealth(context.db, row.id, health);
    context.audit.target = row.id;
    return serverOut(context.env, context.db, authz, row.id);
  }),

  delete: os.servers.delete.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const { row } = await requireAction(context.db, authz, input.server_id, 'admin', 'portal:servers:write');
    // Tokens for its direct resources stop working: their grants are revoked with the resources.
    await revokeGrantsForResources(context.db, await listResourcesOf(context.db, row.id), 'server_removed');
    await deleteDirect(context.db, row.id);
    await context.db.deleteFrom('mcp_tool_policies').where('server_id', '=', row.id).execute();
    await context.db.deleteFrom('mcp_server_access').where('server_id', '=', row.id).execute();
    await context.db.deleteFrom('mcp_server_preferences').where('server_id', '=', row.id).execute();
    await context.db.deleteFrom('mcp_servers').where('id', '=', row.id).execute();
    context.audit.target = row.id;
    return { deleted: true };
  }),

  check: os.servers.check.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const { row } = await visibleServer(context.db, authz, input.server_id);
    // An OAuth upstream is checked through its owner's own gateway connection when the owner asks (never with
    // anyone else's credential): so the registry, and the consent pages, can know its tools.
    const mine = row.auth_type === 'oauth' && row.owner === authz.principal.chittyId;
    const result = await probeServer(context.env, row, mine ? await upstreamAccessToken(context.env, context.db, row.id, row.owner) : null);
    await recordHealth(context.db, row.id, result);
    context.audit.target = row.id;
    context.audit.detail = { status: result.status, latency_ms: result.latencyMs };
    return serverOut(context.env, context.db, authz, row.id);
  }),

  policy: os.servers.policy.handler(async ({ input, context }) => {
    const { row, access } = await visibleServer(context.db, authzOf(context), input.server_id);
    const rules = await listToolRules(context.db, row.id);
    return {
      server_id: row.id,
      access,
      tools: rules.map((r) => ({ tool: r.tool, effect: r.effect, role: r.subject_type === 'role' ? r.subject : null, chitty_id: r.subject_type === 'chitty_id' ? r.subject : null })),
    };
  }),

  setPolicy: os.servers.setPolicy.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const { row } = await requireAction(context.db, authz, input.server_id, 'admin', 'portal:policies:write');
    const now = nowIso();
    await context.db.deleteFrom('mcp_server_access').where('server_id', '=', row.id).execute();
    await context.db.deleteFrom('mcp_tool_policies').where('server_id', '=', row.id).execute();
    const accessRows = ACTIONS.flatMap((action) => [...new Set(input.access[action])].map((role) => ({ server_id: row.id, action, role })));
    if (accessRows.length) await context.db.insertInto('mcp_server_access').values(accessRows).execute();
    for (const rule of input.tools) {
      await context.db
        .insertInto('mcp_tool_policies')
        .values({ id: newId('tpl'), server_id: row.id, tool: rule.tool, subject_type: rule.role ? 'role' : 'chitty_id', subject: (rule.role ?? rule.chitty_id)!, effect: rule.effect, created_at: now })
        .execute();
    }
    context.audit.target = row.id;
    context.audit.detail = { access: input.access, tool_rules: input.tools.length };
    const rules = await listToolRules(context.db, row.id);
    return {
      server_id: row.id,
      access: await findAccess(context.db, row.id),
      tools: rules.map((r) => ({ tool: r.tool, effect: r.effect, role: r.subject_type === 'role' ? r.subject : null, chitty_id: r.subject_type === 'chitty_id' ? r.subject : null })),
    };
  }),

  setEnabled: os.servers.setEnabled.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const { row } = await visibleServer(context.db, authz, input.server_id);
    await context.db
      .insertInto('mcp_server_preferences')
      .values({ chitty_id: authz.principal.chittyId, server_id: row.id, enabled: input.enabled ? 1 : 0, updated_at: nowIso() })
      .onConflict((oc) => oc.columns(['chitty_id', 'server_id']).doUpdateSet({ enabled: input.enabled ? 1 : 0, updated_at: nowIso() }))
      .execute();
    context.audit.target = row.id;
    context.audit.detail = { enabled: input.enabled };
    return serverOut(context.env, context.db, authz, row.id);
  }),

  access: os.servers.access.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const { row } = await visibleServer(context.db, authz, input.server_id);
    const subject = await authz.subject(input.chitty_id);
    const caller = subject === authz.principal.chittyId ? await callerFor(authz) : callerFrom(subject, await listGrants(context.db, subject), ['*']);
    const access = await findAccess(context.db, input.server_id);
    if (!actionAllowed(access, row, caller, input.action)) return { allowed: false, reason: `no ${input.action} access to ${input.server_id}` };
    if ((input.action === 'connect' || input.action === 'call') && !(await findEnabled(context.db, subject, input.server_id))) {
      return { allowed: false, reason: `${input.server_id} is turned off for this user` };
    }
    if (input.tool) return toolAllowed(await listToolRules(context.db, input.server_id), input.server_id, input.tool, caller);
    return { allowed: true, reason: `${input.action} access granted` };
  }),

  direct: os.servers.direct.handler(async ({ input, context }) => {
    const { row } = await visibleServer(context.db, authzOf(context), input.server_id);
    return directOut(context.env, context.db, row.id);
  }),

  setDirect: os.servers.setDirect.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const { env, db } = context;
    const { row } = await requireAction(db, authz, input.server_id, 'admin', 'portal:servers:write');
    const resources: string[] = [];
    for (const [i, raw] of input.resources.entries()) {
      const c = registrableResource(raw, { development: isDevelopment(env), mcpUrl: row.mcp_url, issuer: env.ISSUER, gatewayDomain: env.GATEWAY_DOMAIN });
      if (!c.ok) throw invalidInput(`resources[${i}]`, `${raw} ${c.reason}`);
      if (!resources.includes(c.resource)) resources.push(c.resource);
    }
    const owners = await findResourceOwners(db, resources);
    const taken = owners.find((r) => r.server_id !== row.id);
    if (taken) throw new ORPCError('CONFLICT', { status: 409, message: `${taken.resource} is already a resource of another server` });
    for (const resource of resources.filter((r) => !owners.some((o) => o.resource === r))) {
      const unproven = await proveControl(env, resource);
      if (unproven) throw new ORPCError('UNVERIFIED', { status: 422, message: `${resource} cannot be protected directly: ${unproven}` });
    }
    const introspectionClientId = input.introspection_client_id ?? null;
    if (introspectionClientId !== null) {
      const client = await findClientRow(db, introspectionClientId);
      // RFC 7662 §2.1: the protected resource authenticates; only a confidential client can.
      if (!client || client.kind !== 'preregistered' || client.token_endpoint_auth_method === 'none') {
        throw invalidInput('introspection_client_id', 'must be a confidential pre-registered OAuth client (register one with oauth.clients.register)');
      }
      if (client.created_by !== authz.principal.chittyId && !(await authz.can('oauth:clients:write'))) throw invalidInput('introspection_client_id', 'must be a client you registered');
    }
    const before = await listResourcesOf(db, row.id);
    const scopes = input.scopes.map((s) => ({ name: s.name, description: s.description ?? null, action: s.action, default: s.default }));
    try {
      await replaceDirect(db, row.id, { resources, scopes, introspectionClientId });
    } catch (error) {
      if (isUniqueViolation(error)) throw new ORPCError('CONFLICT', { status: 409, message: 'a resource was claimed by another server at the same time' });
      throw error;
    }
    // A resource no longer protected here: the tokens and refresh tokens issued for it stop working.
    const revoked = await revokeGrantsForResources(db, before.filter((r) => !resources.includes(r)), 'resource_removed');
    context.audit.target = row.id;
    context.audit.detail = { resources, scopes: scopes.map((s) => s.name), introspection_client_id: introspectionClientId, grants_revoked: revoked };
    return directOut(env, db, row.id);
  }),

  import: os.servers.import.handler(async ({ input, context }) => {
    const doc = input.server;
    const remote = doc.remotes.find((r) => r.type === 'streamable-http') ?? doc.remotes[0]!;
    const ours = (doc._meta?.[SERVER_JSON_META_KEY] ?? {}) as { server_id?: unknown; tags?: unknown; endpoints?: { health?: unknown; oauth_callback?: unknown }; rate_limits?: unknown };
    // Our own settings in _meta are as untrusted as the rest of the document: the same schema as register.
    const limits = ours.rate_limits === undefined ? undefined : v.safeParse(RateLimitsInputSchema, ours.rate_limits);
    if (limits && !limits.success) throw invalidInput(`server._meta["${SERVER_JSON_META_KEY}"].rate_limits`, limits.issues.map((i) => i.message).join('; '));
    const secretHeader = remote.headers?.find((h) => h.isSecret || h.isRequired);
    if (secretHeader && !input.header_value) throw invalidInput('header_value', `the server needs the ${secretHeader.name} header; give its value`);
    const derived = doc.name.split('/')[1]!.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
    const serverId = input.server_id ?? (typeof ours.server_id === 'string' ? ours.server_id : derived);
    if (!/^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$/.test(serverId)) throw invalidInput('server_id', `cannot derive a valid server_id from ${doc.name}; give server_id`);
    const tags = Array.isArray(ours.tags) ? ours.tags.filter((t): t is string => typeof t === 'string' && /^[a-z0-9][a-z0-9_.-]{0,31}$/.test(t)).slice(0, 16) : [];
    const str = (x: unknown) => (typeof x === 'string' ? x : undefined);
    return registerServer(context, {
      server_id: serverId,
      name: (doc.title ?? doc.name).slice(0, 100),
      description: doc.description,
      version: doc.version,
      endpoints: { mcp: remote.url, health: str(ours.endpoints?.health), oauth_callback: str(ours.endpoints?.oauth_callback) },
      transport: remote.type,
      auth: secretHeader && input.header_value ? { type: 'header', header_name: secretHeader.name, header_value: input.header_value } : { type: 'none' },
      tags,
      rate_limits: limits?.output,
    });
  }),

  export: os.servers.export.handler(async ({ input, context }) => {
    const server = await serverOut(context.env, context.db, authzOf(context), input.server_id);
    const host = new URL(server.endpoints.mcp).hostname.split('.').reverse().join('.');
    return {
      $schema: SERVER_JSON_SCHEMA,
      name: `${host}/${server.server_id}`,
      title: server.name,
      description: server.description ?? server.name,
      version: server.version ?? '0.0.0',
      remotes: [
        {
          type: server.transport,
          url: server.endpoints.mcp,
          ...(server.auth.type === 'header' && server.auth.header_name ? { headers: [{ name: server.auth.header_name, isSecret: true, isRequired: true }] } : {}),
        },
      ],
      _meta: {
        [SERVER_JSON_META_KEY]: {
          server_id: server.server_id,
          tags: server.tags,
          auth: { type: server.auth.type, header_name: server.auth.header_name, scopes: server.auth.scopes, client_id: server.auth.client_id },
          endpoints: { health: server.endpoints.health, oauth_callback: server.endpoints.oauth_callback },
          rate_limits: server.rate_limits,
        },
      },
    };
  }),
};

