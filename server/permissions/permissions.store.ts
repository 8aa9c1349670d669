import type { DB, GrantsTable } from '../db/schema';
import { nowIso } from '../lib/time';

/** The unexpired grants of a ChittyID. */
export const listGrants = (db: DB, chittyId: string) =>
  db
    .selectFrom('grants')
    .selectAll()
    .where('chitty_id', '=', chittyId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso())]))
    .orderBy('id', 'asc')
    .execute();

export const findGrant = (db: DB, id: string) => db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst();

export const insertGrant = (db: DB, row: GrantsTable) => db.insertInto('grants').values(row).execute();

export const deleteGrant = (db: DB, id: string) => db.deleteFrom('grants').where('id', '=', id).execute();

/** Whether any identity holds the admin role (first-run bootstrap is allowed only before). */
export const findAnyAdminGrant = (db: DB) => db.selectFrom('grants').select('id').where('role', '=', 'admin').limit(1).executeTakeFirst();
