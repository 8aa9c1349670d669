import type { ContractEntry } from '../../contract/walk';

/**
 * The contract-wide suites are split across files because @cloudflare/vitest-pool-workers slows down with
 * every SELF.fetch made in one workerd instance (cloudflare/workers-sdk#15446); each file gets a fresh one.
 * A procedure's shard is its index modulo SHARDS: every procedure is in exactly one shard, by construction.
 */
export const SHARDS = 4;

export const shardOf = (entries: ContractEntry[], shard: number) => entries.filter((_, i) => i % SHARDS === shard);
