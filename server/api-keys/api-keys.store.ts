import type { ApiKeysTable, DB } from '../db/schema';

export const findApiKeyByHash = (db: DB, secretHash: string) =>
  db
    .selectFrom('api_keys')
    .innerJoin('identities', 'identities.chitty_id', 'api_keys.chitty_id')
    .selectAll('api_keys')
    .select('identities.status as owner_status')
    .where('secret_hash', '=', secretHash)
    .executeTakeFirst();

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
