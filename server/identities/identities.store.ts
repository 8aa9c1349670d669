import type { DB, IdentitiesTable } from '../db/schema';

export const findIdentity = (db: DB, chittyId: string) =>
  db.selectFrom('identities').selectAll().where('chitty_id', '=', chittyId).executeTakeFirst();

export const insertIdentity = (db: DB, row: IdentitiesTable) => db.insertInto('identities').values(row).execute();

export const updateIdentityStatus = (db: DB, chittyId: string, status: 'active' | 'disabled', at: string) =>
  db.updateTable('identities').set({ status, updated_at: at }).where('chitty_id', '=', chittyId).execute();
