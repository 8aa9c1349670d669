import { IsolateCache } from '../db/cache';
import { readTogether, type ApiKeysTable, type DB, type GrantsTable } from '../db/schema';
import { nowIso } from '../lib/time';
import { grantsOfApiKeyQuery } from '../permissions/permissions.store';

/** The key with its owner's status. */
export const apiKeyByHashQuery = (db: DB, secretHash: string) =>
  db
    .selectFrom('api_keys')
    .innerJoin('identities', 'identities.chitty_id', 'api_keys.chitty_id')
    .selectAll('api_keys')
    .select('identities.status as owner_status')
    .where('secret_hash', '=', secretHash);

export const findApiKeyByHash = (db: DB, secretHash: string) => apiKeyByHashQuery(db, secretHash).executeTakeFirst();

export type ApiKeyWithOwner = NonNullable<Awaited<ReturnType<typeof findApiKeyByHash>>>;

const keysByHash = new IsolateCache<{ key: ApiKeyWithOwner | undefined; grants: GrantsTable[] }>(['api_keys', 'identities', 'grants']);

/**
 * The key with its owner's status and grants, in one D1 round trip, kept in the isolate cache (db/cache.ts):
 * an API key's every request (and every validate_api_key of it) reads D1 at most once per CACHE_TTL_MS.
 * Revocation, expiry edits, owner status and grant changes made by this isolate show at once (its writes clear
 * the cache), those of other isolates within CACHE_TTL_MS, the bound OAuth access tokens have too. Unknown keys
 * are not kept. Expiry (the key's and its grants') is checked by the caller against the current time.
 */
export async function findApiKeyWithGrants(db: DB, secretHash: string): Promise<{ key: ApiKeyWithOwner | undefined; grants: GrantsTable[] }> {
  const found = await keysByHash.get(
    secretHash,
    async () => {
      const [keys, grants] = await readTogether(db, [apiKeyByHashQuery(db, secretHash).compile(), grantsOfApiKeyQuery(db, secretHash).compile()]);
      return { key: keys![0] as ApiKeyWithOwner | undefined, grants: grants as GrantsTable[] };
    },
    (value) => value.key !== undefined,
  );
  const now = nowIso();
  return { key: found.key, grants: found.grants.filter((g) => g.expires_at === null || g.expires_at > now) };
}

export const findApiKey = (db: DB, id: string) => db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();

export const insertApiKey = (db: DB, row: ApiKeysTable) => db.insertInto('api_keys').values(row).execute();

export function listApiKeys(db: DB, chittyId: string, o: { includeRevoked: boolean; limit: number; cursor?: string }) {
  let q = db.selectFrom('api_keys').selectAll().where('chitty_id', '=', chittyId);
  if (!o.includeRevoked) q = q.where('revoked_at', 'is', null);
  if (o.cursor) q = q.where('id', '<', o.cursor);
  return q.orderBy('id', 'desc').limit(o.limit + 1).execute();
}

export const updateApiKeyRevoked = (db: DB, id: string, at: string) =>
  db.updateTable('api_keys').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).execute();

export const updateApiKeyLastUsed = (db: DB, id: string, at: string) =>
  db.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', id).execute();
