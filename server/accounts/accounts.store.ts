import type { AccountsTable, DB } from '../db/schema';
import { nowIso } from '../lib/time';

const withIdentity = (db: DB) =>
  db
    .selectFrom('accounts')
    .innerJoin('identities', 'identities.chitty_id', 'accounts.chitty_id')
    .selectAll('accounts')
    .select(['identities.display_name', 'identities.status']);

export type AccountRow = NonNullable<Awaited<ReturnType<typeof findAccount>>>;

export const findAccount = (db: DB, chittyId: string) => withIdentity(db).where('accounts.chitty_id', '=', chittyId).executeTakeFirst();

export const findAccountByUsername = (db: DB, username: string) => withIdentity(db).where('accounts.username', '=', username).executeTakeFirst();

export function listAccounts(db: DB, o: { limit: number; cursor?: string }) {
  let q = withIdentity(db);
  if (o.cursor) q = q.where('accounts.chitty_id', '>', o.cursor);
  return q.orderBy('accounts.chitty_id', 'asc').limit(o.limit + 1).execute();
}

export const insertAccount = (db: DB, row: AccountsTable) => db.insertInto('accounts').values(row).execute();

export const updateAccountPassword = (db: DB, chittyId: string, passwordHash: string, at: string) =>
  db.updateTable('accounts').set({ password_hash: passwordHash, failed_attempts: 0, locked_until: null, updated_at: at }).where('chitty_id', '=', chittyId).execute();

export const updateAccountFailedAttempts = (db: DB, chittyId: string, failed: number, lockedUntil: string | null) =>
  db.updateTable('accounts').set({ failed_attempts: failed, locked_until: lockedUntil }).where('chitty_id', '=', chittyId).execute();

/** Role names per ChittyID, for many accounts in one query. */
export async function listRolesFor(db: DB, chittyIds: string[]): Promise<Map<string, string[]>> {
  const roles = new Map<string, string[]>();
  if (chittyIds.length === 0) return roles;
  const rows = await db
    .selectFrom('grants')
    .select(['chitty_id', 'role'])
    .where('chitty_id', 'in', chittyIds)
    .where('role', 'is not', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso())]))
    .orderBy('role')
    .execute();
  for (const r of rows) roles.set(r.chitty_id, [...(roles.get(r.chitty_id) ?? []), r.role!]);
  return roles;
}
