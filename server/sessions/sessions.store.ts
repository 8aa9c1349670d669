import type { DB, SessionsTable } from '../db/schema';

export const insertSession = (db: DB, row: SessionsTable) => db.insertInto('sessions').values(row).execute();

export const findSession = (db: DB, id: string) => db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();

/** The session with its owner's status: one indexed read on the authentication path. */
export const sessionForAuthQuery = (db: DB, id: string) =>
  db
    .selectFrom('sessions')
    .innerJoin('identities', 'identities.chitty_id', 'sessions.chitty_id')
    .select(['sessions.id', 'sessions.chitty_id', 'sessions.expires_at', 'sessions.revoked_at', 'sessions.last_seen_at', 'identities.status as owner_status'])
    .where('sessions.id', '=', id);

export const findSessionForAuth = (db: DB, id: string) => sessionForAuthQuery(db, id).executeTakeFirst();

export type SessionForAuth = NonNullable<Awaited<ReturnType<typeof findSessionForAuth>>>;

export function listSessions(db: DB, chittyId: string, includeEnded: boolean, now: string) {
  let q = db.selectFrom('sessions').selectAll().where('chitty_id', '=', chittyId);
  if (!includeEnded) q = q.where('revoked_at', 'is', null).where('expires_at', '>', now);
  return q.orderBy('id', 'desc').limit(500).execute();
}

export const updateSessionRevoked = (db: DB, id: string, at: string) =>
  db.updateTable('sessions').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).execute();

/** Ends every live session of a ChittyID, except `keep` when given. Returns how many ended. */
export async function updateSessionsRevokedFor(db: DB, chittyId: string, at: string, keep?: string | null): Promise<number> {
  let q = db.updateTable('sessions').set({ revoked_at: at }).where('chitty_id', '=', chittyId).where('revoked_at', 'is', null);
  if (keep) q = q.where('id', '!=', keep);
  const res = await q.executeTakeFirst();
  return Number(res.numUpdatedRows);
}

export const updateSessionLastSeen = (db: DB, id: string, at: string) =>
  db.updateTable('sessions').set({ last_seen_at: at }).where('id', '=', id).execute();
