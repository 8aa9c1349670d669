import { clearCachesFor } from '../db/cache';
import { d1Of, isUniqueViolation, type DB, type DevicesTable, type SyncDocumentsTable } from '../db/schema';
import { nowIso } from '../lib/time';
import { markGrantsRevoked } from '../oauth/grants';

/** Revisions kept per document to merge against; an older base_revision must pull first. */
export const KEPT_REVISIONS = 100;

export const findLiveDevice = (db: DB, chittyId: string, deviceId: string) =>
  db.selectFrom('devices').selectAll().where('id', '=', deviceId).where('chitty_id', '=', chittyId).where('removed_at', 'is', null).executeTakeFirst();

export const listLiveDevices = (db: DB, chittyId: string) =>
  db.selectFrom('devices').selectAll().where('chitty_id', '=', chittyId).where('removed_at', 'is', null).orderBy('id', 'asc').execute();

export const insertDevice = (db: DB, row: DevicesTable) => db.insertInto('devices').values(row).execute();

export const renameDeviceRow = (db: DB, id: string, name: string) => db.updateTable('devices').set({ name, updated_at: nowIso() }).where('id', '=', id).where('removed_at', 'is', null).execute();

/** The device a credential was issued to, if any (sessions and API keys record it). */
export async function deviceOfCredential(db: DB, credential: string, credentialId: string): Promise<string | null> {
  if (credential === 'session') return (await db.selectFrom('sessions').select('device_id').where('id', '=', credentialId).executeTakeFirst())?.device_id ?? null;
  if (credential === 'api_key') return (await db.selectFrom('api_keys').select('device_id').where('id', '=', credentialId).executeTakeFirst())?.device_id ?? null;
  return null;
}

export const bindSessionToDevice = (db: DB, sessionId: string, deviceId: string) => db.updateTable('sessions').set({ device_id: deviceId }).where('id', '=', sessionId).execute();

/**
 * Removes a device and revokes what was issued to it, in one D1 batch (a transaction): the device, its live
 * sessions, its live API keys and the live OAuth grants approved through any of its sessions (the MCP clients
 * authorized on it) all at once, or nothing. Returns the sessions ended (their ids, for the live streams), how
 * many keys were revoked, with the ids of the keys that were live, and the ids of the grants revoked (for their
 * open sockets).
 */
export async function removeDeviceAndCredentials(db: DB, chittyId: string, deviceId: string): Promise<{ sessions: string[]; apiKeys: number; apiKeyIds: string[]; grantIds: string[] }> {
  const at = nowIso();
  const sessions = await db.selectFrom('sessions').select('id').where('device_id', '=', deviceId).where('revoked_at', 'is', null).execute();
  const liveKeys = await db.selectFrom('api_keys').select('id').where('device_id', '=', deviceId).where('revoked_at', 'is', null).execute();
  // Grants approved through any of its sessions (oauth_grants.session_id, set at /oauth/authorize), also one signed
  // out since: the MCP client authorized on the device outlives the browser session that approved it. A subquery,
  // not a list of ids: a device may have more sessions than D1 binds parameters in one statement.
  const deviceSessions = db.selectFrom('sessions').select('id').where('device_id', '=', deviceId);
  const liveGrants = await db.selectFrom('oauth_grants').select('id').where('session_id', 'in', deviceSessions).where('revoked_at', 'is', null).execute();
  const statements = [
    db.updateTable('devices').set({ removed_at: at, updated_at: at }).where('id', '=', deviceId).where('chitty_id', '=', chittyId).where('removed_at', 'is', null).compile(),
    db
      .updateTable('oauth_grants')
      .set({ revoked_at: at, revoked_reason: 'device_removed', refresh_hash: null, next_refresh_encrypted: null })
      .where('session_id', 'in', deviceSessions)
      .where('revoked_at', 'is', null)
      .compile(),
    db.updateTable('sessions').set({ revoked_at: at }).where('device_id', '=', deviceId).where('revoked_at', 'is', null).compile(),
    db.updateTable('api_keys').set({ revoked_at: at }).where('device_id', '=', deviceId).where('revoked_at', 'is', null).compile(),
  ];
  const d1 = d1Of(db);
  let keys = 0;
  // A raw batch goes around Kysely's cache plugin: clear what it touches before and after it (db/cache.ts).
  const touched = ['devices', 'sessions', 'api_keys', 'oauth_grants'];
  clearCachesFor(touched);
  if (d1) {
    const results = await d1.batch(statements.map((q) => d1.prepare(q.sql).bind(...q.parameters)));
    keys = results[3]!.meta.changes;
  } else {
    await db.transaction().execute(async (tx) => {
      for (const [i, q] of statements.entries()) {
        const r = await tx.executeQuery(q);
        if (i === 3) keys = Number(r.numAffectedRows ?? 0);
      }
    });
  }
  clearCachesFor(touched);
  // The grant-state cache of access tokens (oauth/grants.ts) is not one of db/cache.ts's: tell it directly.
  const grantIds = liveGrants.map((g) => g.id);
  markGrantsRevoked(grantIds);
  return { sessions: sessions.map((s) => s.id), apiKeys: keys, apiKeyIds: liveKeys.map((k) => k.id), grantIds };
}

export interface State {
  server_id: string;
  revision: number;
  document: Record<string, unknown>;
  updated_at: string | null;
  updated_by_device: string | null;
}

const toState = (serverId: string, row: SyncDocumentsTable | undefined): State =>
  row
    ? { server_id: serverId, revision: row.revision, document: JSON.parse(row.document) as Record<string, unknown>, updated_at: row.updated_at, updated_by_device: row.updated_by_device }
    : { server_id: serverId, revision: 0, document: {}, updated_at: null, updated_by_device: null };

export async function readState(db: DB, chittyId: string, serverId: string): Promise<State> {
  const row = await db.selectFrom('sync_documents').selectAll().where('chitty_id', '=', chittyId).where('server_id', '=', serverId).executeTakeFirst();
  return toState(serverId, row);
}

/** The document at a revision, from the kept revisions (revision 0 is the empty document); undefined when gone. */
export async function readRevision(db: DB, chittyId: string, serverId: string, revision: number): Promise<Record<string, unknown> | undefined> {
  if (revision === 0) return {};
  const row = await db.selectFrom('sync_revisions').select('document').where('chitty_id', '=', chittyId).where('server_id', '=', serverId).where('revision', '=', revision).executeTakeFirst();
  return row ? (JSON.parse(row.document) as Record<string, unknown>) : undefined;
}

/**
 * Writes `document` as revision `from + 1`, only if the document is still at `from` (compare-and-set), with
 * its kept revision and its change-log entry, in one D1 batch: if another push took revision `from + 1` first,
 * the batch fails on the revision's primary key and nothing of it is written. Returns false in that case.
 */
export async function writeState(db: DB, o: { chittyId: string; serverId: string; from: number; document: Record<string, unknown>; fields: string[]; deviceId: string | null }): Promise<boolean> {
  const at = nowIso();
  const revision = o.from + 1;
  const json = JSON.stringify(o.document);
  const row = { chitty_id: o.chittyId, server_id: o.serverId, revision, document: json, updated_at: at, updated_by_device: o.deviceId };
  const write =
    o.from === 0
      ? db.insertInto('sync_documents').values(row).compile()
      : db.updateTable('sync_documents').set({ revision, document: json, updated_at: at, updated_by_device: o.deviceId }).where('chitty_id', '=', o.chittyId).where('server_id', '=', o.serverId).where('revision', '=', o.from).compile();
  const statements = [
    write,
    db.insertInto('sync_revisions').values({ chitty_id: o.chittyId, server_id: o.serverId, revision, document: json }).compile(),
    db.insertInto('sync_changes').values({ chitty_id: o.chittyId, server_id: o.serverId, revision, fields: JSON.stringify(o.fields), device_id: o.deviceId, at }).compile(),
    db.deleteFrom('sync_revisions').where('chitty_id', '=', o.chittyId).where('server_id', '=', o.serverId).where('revision', '<=', revision - KEPT_REVISIONS).compile(),
  ];
  const d1 = d1Of(db);
  if (!d1) throw new Error('writeState needs the D1 binding (getDb)');
  try {
    const results = await d1.batch(statements.map((q) => d1.prepare(q.sql).bind(...q.parameters)));
    // An UPDATE that matched nothing (the revision moved) is caught by the revision insert's key; checked anyway.
    return results[0]!.meta.changes === 1;
  } catch (error) {
    if (isUniqueViolation(error)) return false;
    throw error;
  }
}

export async function changesSince(db: DB, chittyId: string, cursor: number, limit: number) {
  return db.selectFrom('sync_changes').selectAll().where('chitty_id', '=', chittyId).where('seq', '>', cursor).orderBy('seq', 'asc').limit(limit + 1).execute();
}

export async function statesOf(db: DB, chittyId: string, serverIds: string[]): Promise<State[]> {
  if (serverIds.length === 0) return [];
  const rows = await db.selectFrom('sync_documents').selectAll().where('chitty_id', '=', chittyId).where('server_id', 'in', serverIds).execute();
  return serverIds.map((id) => toState(id, rows.find((r) => r.server_id === id)));
}
