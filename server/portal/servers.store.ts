import { IsolateCache } from '../db/cache';
import type { DB } from '../db/schema';
import type { AccessMap, Action, ToolRule } from './access';
import { ACTIONS, DEFAULT_ACCESS } from './access';

export const findServer = (db: DB, id: string) => db.selectFrom('mcp_servers').selectAll().where('id', '=', id).executeTakeFirst();

export type ServerRow = NonNullable<Awaited<ReturnType<typeof findServer>>>;

export function listServers(db: DB, o: { tag?: string; status?: string; q?: string; limit: number; cursor?: string }) {
  let q = db.selectFrom('mcp_servers').selectAll();
  if (o.status) q = q.where('status', '=', o.status as ServerRow['status']);
  if (o.tag) q = q.where('tags', 'like', `%"${o.tag.replace(/[%_"\\]/g, '')}"%`);
  if (o.q) {
    const like = `%${o.q.replace(/[%_\\]/g, (c) => `\\${c}`)}%`;
    q = q.where((eb) => eb.or([eb('name', 'like', like), eb('description', 'like', like), eb('id', 'like', like)]));
  }
  if (o.cursor) q = q.where('id', '>', o.cursor);
  return q.orderBy('id', 'asc').limit(o.limit + 1).execute();
}

/** The roles per action, with the defaults for actions no policy has set. */
export async function findAccess(db: DB, serverId: string): Promise<AccessMap> {
  const rows = await db.selectFrom('mcp_server_access').select(['action', 'role']).where('server_id', '=', serverId).execute();
  if (rows.length === 0) return DEFAULT_ACCESS;
  const map = Object.fromEntries(ACTIONS.map((a) => [a, [] as string[]])) as AccessMap;
  for (const r of rows) map[r.action as Action]?.push(r.role);
  return map;
}

export const listToolRules = (db: DB, serverId: string): Promise<ToolRule[]> =>
  db.selectFrom('mcp_tool_policies').select(['tool', 'effect', 'subject_type', 'subject']).where('server_id', '=', serverId).orderBy('tool').execute() as Promise<ToolRule[]>;

export async function findEnabled(db: DB, chittyId: string, serverId: string): Promise<boolean> {
  const row = await db.selectFrom('mcp_server_preferences').select('enabled').where('chitty_id', '=', chittyId).where('server_id', '=', serverId).executeTakeFirst();
  return row ? row.enabled === 1 : true;
}

/** What the gateway checks a call against: the server, its access map and its tool rules. */
export interface ServerPolicy {
  row: ServerRow;
  access: AccessMap;
  rules: ToolRule[];
}

const policies = new IsolateCache<ServerPolicy | null>(['mcp_servers', 'mcp_server_access', 'mcp_tool_policies']);
const preferences = new IsolateCache<boolean>(['mcp_server_preferences']);

/**
 * The gateway's per-call reads, through the isolate cache (db/cache.ts): changes made by this isolate show
 * at once, others within CACHE_TTL_MS. An unknown server is not cached (a new one is found at once).
 */
export const serverPolicy = (db: DB, serverId: string): Promise<ServerPolicy | null> =>
  policies.get(
    serverId,
    async () => {
      const row = await findServer(db, serverId);
      if (!row) return null;
      const [access, rules] = await Promise.all([findAccess(db, serverId), listToolRules(db, serverId)]);
      return { row, access, rules };
    },
    (policy) => policy !== null,
  );

export const findEnabledCached = (db: DB, chittyId: string, serverId: string): Promise<boolean> =>
  preferences.get(`${chittyId} ${serverId}`, () => findEnabled(db, chittyId, serverId));

const onDomain = new IsolateCache<{ id: string; mcp_url: string }[]>(['mcp_servers']);

/** Registered servers whose MCP URL is on a domain (a hostname route's candidates), through the isolate cache. */
export const serversOnDomain = (domain: string, load: () => Promise<{ id: string; mcp_url: string }[]>) => onDomain.get(domain, load, (rows) => rows.length > 0);
