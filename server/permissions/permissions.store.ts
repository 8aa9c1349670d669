import { IsolateCache } from '../db/cache';
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

const grantsCache = new IsolateCache<GrantsTable[]>(['grants']);

/**
 * listGrants through the isolate cache (db/cache.ts): for OAuth access tokens, which are checked without a
 * D1 read. Grants written by this isolate show at once, others within CACHE_TTL_MS; expiry is checked on
 * every call.
 */
export async function listGrantsCached(db: DB, chittyId: string): Promise<GrantsTable[]> {
  const rows = await grantsCache.get(chittyId, () => db.selectFrom('grants').selectAll().where('chitty_id', '=', chittyId).orderBy('id', 'asc').execute());
  const now = nowIso();
  return rows.filter((g) => g.expires_at === null || g.expires_at > now);
}

/**
 * listGrants for the holder of a credential, found by a subquery on the credential (an API key by its hash, a
 * session by its id), so that it can be read in the same D1 round trip as the credential (readTogether).
 */
export const grantsOfApiKeyQuery = (db: DB, secretHash: string) =>
  db
    .selectFrom('grants')
    .selectAll()
    .where('chitty_id', 'in', db.selectFrom('api_keys').select('api_keys.chitty_id').where('api_keys.secret_hash', '=', secretHash))
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso())]))
    .orderBy('id', 'asc');

export const grantsOfSessionQuery = (db: DB, sessionId: string) =>
  db
    .selectFrom('grants')
    .selectAll()
    .where('chitty_id', 'in', db.selectFrom('sessions').select('sessions.chitty_id').where('sessions.id', '=', sessionId))
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso())]))
    .orderBy('id', 'asc');

export const findGrant = (db: DB, id: string) => db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst();

export const insertGrant = (db: DB, row: GrantsTable) => db.insertInto('grants').values(row).execute();

export const deleteGrant = (db: DB, id: string) => db.deleteFrom('grants').where('id', '=', id).execute();

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
