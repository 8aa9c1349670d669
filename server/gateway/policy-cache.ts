import type { DB, GrantsTable } from '../db/schema';
import { nowIso } from '../lib/time';
import type { AccessMap, ToolRule } from '../portal/access';
import { findAccess, findEnabled, findServer, listToolRules, type ServerRow } from '../portal/servers.store';

/**
 * What the gateway needs to decide a call — the server's registry row, its access policy and tool rules,
 * the caller's grants and on/off switch — cached in the isolate's memory for a few seconds, so a call does
 * not wait on D1 (DESIGN: the hot paths do no D1 write and at most a cached read).
 *
 * Changes made through this isolate take effect at once (the routers that write them call `forget…`);
 * changes made through another isolate take effect within CACHE_MS, like grant revocation
 * (server/oauth/grants.ts). Grants are cached with their expiry and filtered on every use, so an expired
 * grant stops at its expiry.
 */
export const POLICY_CACHE_MS = 10_000;
const MAX_ENTRIES = 10_000;

export interface ServerPolicy {
  row: ServerRow;
  access: AccessMap;
  rules: ToolRule[];
}

interface Entry<T> {
  value: T;
  until: number;
}

class TtlCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  /** Bumped by every forget, so a load that began before a change is not kept after it. */
  private generation = 0;

  /**
   * Values, never promises, are kept: a promise begun in one request must not be awaited by another
   * (Workers ties I/O to the request that started it). Concurrent misses each load; the last one stays.
   */
  async get(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit && hit.until > Date.now()) return hit.value;
    const generation = this.generation;
    const value = await load();
    if (generation !== this.generation) return value;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, { value, until: Date.now() + POLICY_CACHE_MS });
    return value;
  }

  delete(key: string) {
    this.generation++;
    this.entries.delete(key);
  }

  deleteWhere(match: (key: string) => boolean) {
    this.generation++;
    for (const key of this.entries.keys()) if (match(key)) this.entries.delete(key);
  }

  clear() {
    this.generation++;
    this.entries.clear();
  }
}

const servers = new TtlCache<ServerPolicy | null>();
const grants = new TtlCache<GrantsTable[]>();
const enabled = new TtlCache<boolean>();
const hosts = new TtlCache<{ id: string; mcp_url: string }[]>();

export function serverPolicy(db: DB, serverId: string): Promise<ServerPolicy | null> {
  return servers.get(serverId, async () => {
    const [row, access, rules] = await Promise.all([findServer(db, serverId), findAccess(db, serverId), listToolRules(db, serverId)]);
    return row ? { row, access, rules } : null;
  });
}

/** The caller's grants that have not expired (filtered now, whatever the age of the cached list). */
export async function liveGrants(db: DB, chittyId: string): Promise<GrantsTable[]> {
  const all = await grants.get(chittyId, () => db.selectFrom('grants').selectAll().where('chitty_id', '=', chittyId).orderBy('id', 'asc').execute());
  const now = nowIso();
  return all.filter((g) => g.expires_at === null || g.expires_at > now);
}

export const serverEnabled = (db: DB, chittyId: string, serverId: string) => enabled.get(`${chittyId}\u0000${serverId}`, () => findEnabled(db, chittyId, serverId));

/** Registered servers whose MCP URL is on a domain (candidates for a hostname route). */
export const serversOnDomain = (domain: string, load: () => Promise<{ id: string; mcp_url: string }[]>) => hosts.get(domain, load);

/** A server was registered, changed or removed, or its policy was set. */
export function forgetServer(serverId: string) {
  servers.delete(serverId);
  enabled.deleteWhere((key) => key.endsWith(`\u0000${serverId}`));
  hosts.clear();
}

/** A user's grants changed. */
export const forgetGrants = (chittyId: string) => grants.delete(chittyId);

/** A user turned a server on or off. */
export const forgetEnabled = (chittyId: string, serverId: string) => enabled.delete(`${chittyId}\u0000${serverId}`);
