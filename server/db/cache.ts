import type { AliasNode, KyselyPlugin, OperationNode, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, TableNode, UnknownRow } from 'kysely';

/**
 * Per-isolate caches of rows the hot path would otherwise read from D1 on every request (an OAuth access
 * token's permission grants, a gateway route's server and policy). Two rules keep them honest:
 * - an entry lives at most CACHE_TTL_MS, so a change made by another isolate shows within that time (the
 *   bound OAuth access tokens already have for revocation: see grantIsLive);
 * - a write this isolate makes through Kysely to a table a cache depends on clears that cache at once,
 *   before the write is sent and again when it has completed, and a load that overlapped such a write is
 *   not kept. Nothing else in the code needs to remember to invalidate anything.
 */
export const CACHE_TTL_MS = 10_000;
const MAX_ENTRIES = 10_000;

const caches = new Set<IsolateCache<unknown>>();

export class IsolateCache<V> {
  readonly #entries = new Map<string, { value: V; until: number }>();
  #generation = 0;

  /** `tables`: what the cached values are read from; a write to any of them clears the cache. */
  constructor(readonly tables: readonly string[]) {
    caches.add(this as IsolateCache<unknown>);
  }

  /**
   * The cached value, or `load()`'s, kept when `keep(value)` (e.g. not for "not found"). Concurrent misses each
   * load: a Worker may not await another request's I/O.
   */
  async get(key: string, load: () => Promise<V>, keep: (value: V) => boolean = () => true): Promise<V> {
    const hit = this.#entries.get(key);
    if (hit && hit.until > Date.now()) return hit.value;
    const generation = this.#generation;
    const value = await load();
    if (generation === this.#generation && keep(value)) {
      if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
      this.#entries.set(key, { value, until: Date.now() + CACHE_TTL_MS });
    }
    return value;
  }

  clear(): void {
    this.#generation++;
    this.#entries.clear();
  }
}

/** Clears the caches that read any of `tables`: for writes made around Kysely (a raw D1 batch), before and after. */
export const clearCachesFor = (tables: readonly string[] | 'all') => clearFor(tables);

const clearFor = (tables: readonly string[] | 'all') => {
  for (const cache of caches) {
    if (tables === 'all' || cache.tables.some((t) => tables.includes(t))) cache.clear();
  }
};

const tableOf = (node: OperationNode | undefined): string | undefined => {
  if (!node) return undefined;
  if (node.kind === 'TableNode') return (node as TableNode).table.identifier.name;
  if (node.kind === 'AliasNode') return tableOf((node as AliasNode).node);
  return undefined;
};

/** The tables a query writes; 'all' when it may write and which tables is not known; [] for reads. */
function writtenTables(node: RootOperationNode): string[] | 'all' {
  const named = (names: (string | undefined)[]) => (names.every((n) => n !== undefined) ? (names as string[]) : 'all');
  switch (node.kind) {
    case 'InsertQueryNode':
      return named([tableOf(node.into)]);
    case 'UpdateQueryNode':
      return named([tableOf(node.table)]);
    case 'DeleteQueryNode':
      return named(node.from.froms.map(tableOf));
    case 'SelectQueryNode':
      return [];
    default:
      return 'all'; // raw SQL, schema changes, MERGE: assume the worst
  }
}

const inFlight = new WeakMap<object, string[] | 'all'>();

/** The Kysely plugin (installed by getDb) that clears the caches a write touches. */
export const invalidateOnWrite: KyselyPlugin = {
  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    const tables = writtenTables(node);
    if (tables === 'all' || tables.length > 0) {
      clearFor(tables);
      inFlight.set(queryId, tables);
    }
    return node;
  },
  async transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const tables = inFlight.get(queryId);
    if (tables) {
      inFlight.delete(queryId);
      clearFor(tables);
    }
    return result;
  },
};
