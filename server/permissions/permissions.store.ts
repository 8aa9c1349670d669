import type { DB, GrantsTable } from '../db/schema';
import { nowIso } from '../lib/time';
import { forgetGrants } from '../gateway/policy-cache';

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

export async function insertGrant(db: DB, row: GrantsTable) {
  await db.insertInto('grants').values(row).execute();
  forgetGrants(row.chitty_id);
}

export async function deleteGrant(db: DB, id: string) {
  const row = await db.deleteFrom('grants').where('id', '=', id).returning('chitty_id').executeTakeFirst();
  if (row) forgetGrants(row.chitty_id);
}

const liveAdminGrants = (db: DB) =>
  db
    .selectFrom('grants')
    .innerJoin('identities', 'identities.chitty_id', 'grants.chitty_id')
    .where('grants.role', '=', 'admin')
    .where('identities.status', '=', 'active')
    .where((eb) => eb.or([eb('grants.expires_at', 'is', null), eb('grants.expires_at', '>', nowIso())]));

/** Whether any active identity holds an unexpired admin grant (first-run bootstrap is allowed only before). */
export const findAnyAdminGrant = (db: DB) => liveAdminGrants(db).select('grants.id').limit(1).executeTakeFirst();

export async function countLiveAdminGrants(db: DB): Promise<number> {
  const row = await liveAdminGrants(db).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** An unexpired grant identical to the given one, if any (grants are not duplicated). */
export const findSameGrant = (db: DB, chittyId: string, role: string | null, permission: string | null) =>
  db
    .selectFrom('grants')
    .selectAll()
    .where('chitty_id', '=', chittyId)
    .where((eb) => (role ? eb('role', '=', role) : eb('permission', '=', permission!)))
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso())]))
    .executeTakeFirst();
