import { IsolateCache } from '../db/cache';
import type { DB } from '../db/schema';
import { nowIso } from '../lib/time';
import { revokeGrant } from '../oauth/grants';
import type { DirectScope, DirectServer } from './direct';

export const listResourcesOf = (db: DB, serverId: string) =>
  db.selectFrom('mcp_server_resources').select('resource').where('server_id', '=', serverId).orderBy('resource').execute().then((rows) => rows.map((r) => r.resource));

export async function listScopesOf(db: DB, serverId: string): Promise<DirectScope[]> {
  const rows = await db.selectFrom('mcp_server_scopes').selectAll().where('server_id', '=', serverId).orderBy('scope').execute();
  return rows.map((r) => ({ name: r.scope, description: r.description, action: r.action, default: r.is_default === 1 }));
}

export const findDirectSettings = (db: DB, serverId: string) => db.selectFrom('mcp_server_direct').selectAll().where('server_id', '=', serverId).executeTakeFirst();

/** Which server (if any) already holds each of these resources. */
export const findResourceOwners = (db: DB, resources: string[]) =>
  resources.length === 0 ? Promise.resolve([]) : db.selectFrom('mcp_server_resources').select(['resource', 'server_id']).where('resource', 'in', resources).execute();

/** Every scope name any direct server defines (dynamic client registration accepts these too). */
export async function isDirectScope(db: DB, scope: string): Promise<boolean> {
  return !!(await db.selectFrom('mcp_server_scopes').select('scope').where('scope', '=', scope).limit(1).executeTakeFirst());
}

export interface DirectInput {
  resources: string[];
  scopes: DirectScope[];
  introspectionClientId: string | null;
}

/**
 * Replaces a server's direct protection. The caller has checked that no other server holds the resources; a
 * concurrent claim of the same URL loses on the primary key (isUniqueViolation).
 */
export async function replaceDirect(db: DB, serverId: string, input: DirectInput): Promise<void> {
  const now = nowIso();
  await db.deleteFrom('mcp_server_resources').where('server_id', '=', serverId).execute();
  await db.deleteFrom('mcp_server_scopes').where('server_id', '=', serverId).execute();
  if (input.resources.length === 0 && input.scopes.length === 0 && input.introspectionClientId === null) {
    await db.deleteFrom('mcp_server_direct').where('server_id', '=', serverId).execute();
    return;
  }
  await db
    .insertInto('mcp_server_direct')
    .values({ server_id: serverId, introspection_client_id: input.introspectionClientId, created_at: now, updated_at: now })
    .onConflict((oc) => oc.column('server_id').doUpdateSet({ introspection_client_id: input.introspectionClientId, updated_at: now }))
    .execute();
  if (input.resources.length) await db.insertInto('mcp_server_resources').values(input.resources.map((resource) => ({ resource, server_id: serverId, created_at: now }))).execute();
  if (input.scopes.length) {
    await db
      .insertInto('mcp_server_scopes')
      .values(input.scopes.map((s) => ({ server_id: serverId, scope: s.name, description: s.description, action: s.action, is_default: s.default ? 1 : 0 })))
      .execute();
  }
}

export async function deleteDirect(db: DB, serverId: string): Promise<void> {
  await db.deleteFrom('mcp_server_resources').where('server_id', '=', serverId).execute();
  await db.deleteFrom('mcp_server_scopes').where('server_id', '=', serverId).execute();
  await db.deleteFrom('mcp_server_direct').where('server_id', '=', serverId).execute();
}

const byResource = new IsolateCache<DirectServer | null>(['mcp_servers', 'mcp_server_direct', 'mcp_server_resources', 'mcp_server_scopes']);

/**
 * The direct server a canonical resource belongs to, through the isolate cache (db/cache.ts): read at every
 * authorization, token and introspection request for that resource. Unknown resources are not cached.
 */
export const findDirectByResource = (db: DB, resource: string): Promise<DirectServer | null> =>
  byResource.get(
    resource,
    async () => {
      const row = await db
        .selectFrom('mcp_server_resources')
        .innerJoin('mcp_servers', 'mcp_servers.id', 'mcp_server_resources.server_id')
        .leftJoin('mcp_server_direct', 'mcp_server_direct.server_id', 'mcp_server_resources.server_id')
        .select(['mcp_servers.id', 'mcp_servers.owner', 'mcp_servers.name', 'mcp_server_direct.introspection_client_id'])
        .where('mcp_server_resources.resource', '=', resource)
        .executeTakeFirst();
      if (!row) return null;
      return { server: { id: row.id, owner: row.owner, name: row.name }, resource, scopes: await listScopesOf(db, row.id), introspectionClientId: row.introspection_client_id ?? null };
    },
    (found) => found !== null,
  );

/** Revokes every live grant issued for these resources (a resource removed, its server deleted). */
export async function revokeGrantsForResources(db: DB, resources: string[], reason: string): Promise<number> {
  if (resources.length === 0) return 0;
  const grants = await db.selectFrom('oauth_grants').select('id').where('resource', 'in', resources).where('revoked_at', 'is', null).execute();
  for (const g of grants) await revokeGrant(db, g.id, reason);
  return grants.length;
}
