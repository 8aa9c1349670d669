import type { DB } from './db/schema';
import { nowIso } from './lib/time';

/** How long ended rows are kept (for the dashboard and investigations) before deletion. */
const RETAIN_MS = 30 * 86_400_000;
/** How long the sync change log is kept (pull since a cursor). */
export const SYNC_CHANGES_RETAIN_MS = 90 * 86_400_000;

/**
 * The scheduled handler: deletes expired and long-ended rows. Audit events are never deleted here
 * (the chain is the record); retired signing keys go once no token they signed can still be valid.
 */
export async function cleanupExpired(db: DB, now = Date.now()) {
  const at = nowIso(now);
  const horizon = nowIso(now - RETAIN_MS);
  // What a session spans (sync_session) goes with the session.
  const syncSessions = await db
    .deleteFrom('sync_sessions')
    .where('session_id', 'in', db.selectFrom('sessions').select('id').where((eb) => eb.or([eb('expires_at', '<', horizon), eb('revoked_at', '<', horizon)])))
    .executeTakeFirst();
  const sessions = await db
    .deleteFrom('sessions')
    .where((eb) => eb.or([eb('expires_at', '<', horizon), eb('revoked_at', '<', horizon)]))
    .executeTakeFirst();
  const apiKeys = await db
    .deleteFrom('api_keys')
    .where((eb) => eb.or([eb('expires_at', '<', horizon), eb('revoked_at', '<', horizon)]))
    .executeTakeFirst();
  const grants = await db.deleteFrom('grants').where('expires_at', '<', at).executeTakeFirst();
  const keys = await db.deleteFrom('signing_keys').where('status', '=', 'retired').where('verify_until', '<', at).executeTakeFirst();
  // OAuth: codes live a minute; dynamic registrations never used expire; grants go once ended long enough.
  const codes = await db.deleteFrom('oauth_codes').where('expires_at', '<', at).executeTakeFirst();
  const clients = await db.deleteFrom('oauth_clients').where('kind', '=', 'dynamic').where('expires_at', '<', at).executeTakeFirst();
  const oauthGrants = await db
    .deleteFrom('oauth_grants')
    .where((eb) => eb.or([eb('expires_at', '<', horizon), eb('revoked_at', '<', horizon)]))
    .executeTakeFirst();
  // A spent client-assertion jti is kept only while the assertion could still be presented (RFC 7523 §3 (7)).
  const assertions = await db.deleteFrom('oauth_client_assertions').where('expires_at', '<', at).executeTakeFirst();
  const idJagJtis = await db.deleteFrom('oauth_id_jag_jtis').where('expires_at', '<', at).executeTakeFirst();
  const limits = await db.deleteFrom('rate_limits').where('window_ends', '<', at).executeTakeFirst();
  const states = await db.deleteFrom('gateway_auth_states').where('expires_at', '<', at).executeTakeFirst();
  // The sync change log keeps SYNC_CHANGES_RETAIN_MS; a device whose cursor is older reads each state afresh.
  const changes = await db.deleteFrom('sync_changes').where('at', '<', nowIso(now - SYNC_CHANGES_RETAIN_MS)).executeTakeFirst();
  return {
    sync_sessions: Number(syncSessions.numDeletedRows),
    sync_changes: Number(changes.numDeletedRows),
    gateway_auth_states: Number(states.numDeletedRows),
    oauth_codes: Number(codes.numDeletedRows),
    oauth_clients: Number(clients.numDeletedRows),
    oauth_grants: Number(oauthGrants.numDeletedRows),
    oauth_client_assertions: Number(assertions.numDeletedRows),
    oauth_id_jag_jtis: Number(idJagJtis.numDeletedRows),
    rate_limits: Number(limits.numDeletedRows),
    sessions: Number(sessions.numDeletedRows),
    api_keys: Number(apiKeys.numDeletedRows),
    grants: Number(grants.numDeletedRows),
    signing_keys: Number(keys.numDeletedRows),
  };
}
