import { ORPCError } from '@orpc/server';
import { API_KEY_PREFIX } from '../auth/authenticate';
import type { Authorizer } from '../auth/authorizer';
import { randomSecret, sha256Hex } from '../crypto/hash';
import type { ApiKeysTable, DB } from '../db/schema';
import { newId } from '../lib/ids';
import { durationSeconds, isoIn, nowIso } from '../lib/time';
import { invalidInput } from '../adapters/errors';
import { insertApiKey } from '../api-keys/api-keys.store';
import { authzOf, os } from '../orpc';
import { scopesCovered } from '../permissions/policy';
import { findServer } from '../portal/servers.store';
import { findSession } from '../sessions/sessions.store';
import { publish } from './hub';
import { changedFields, merge } from './merge';
import { changesSince, deviceOfCredential, findLiveDevice, readRevision, readState, statesOf, writeState } from './sync.store';

/** The per-server permissions behind state documents; `cross_sync` (sync:*) and the user role cover them all. */
export const statePermission = (action: 'read' | 'write', serverId: string) => `sync:state:${action}:${serverId}`;
/** What a sync token for one server carries: the cross_sync scope narrowed to that server. */
export const syncTokenScopes = (serverId: string) => [statePermission('read', serverId), statePermission('write', serverId)];

const WRITE_ATTEMPTS = 20;
const SYNC_TOKEN_SECRET_LENGTH = 40;
const MAX_SYNC_TOKEN_LIFETIME_S = 366 * 86_400;

const deviceNotFound = (id: string) => new ORPCError('NOT_FOUND', { status: 404, message: `No device ${id}` });

/** The device a push or stream is for: the one named (it must be the caller's), else the credential's own. */
async function deviceFor(db: DB, authz: Authorizer, named: string | undefined): Promise<string | null> {
  const { principal } = authz;
  if (named) {
    if (!(await findLiveDevice(db, principal.chittyId, named))) throw invalidInput('device_id', 'no such device of yours');
    return named;
  }
  return deviceOfCredential(db, principal.credential, principal.credentialId);
}

export const sync = {
  get: os.sync.get.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    await authz.require(statePermission('read', input.server_id));
    return readState(context.db, authz.principal.chittyId, input.server_id);
  }),

  push: os.sync.push.handler(async ({ input, context, errors }) => {
    const authz = authzOf(context);
    const chittyId = authz.principal.chittyId;
    await authz.require(statePermission('write', input.server_id));
    context.audit.target = input.server_id;
    const deviceId = await deviceFor(context.db, authz, input.device_id);
    const base = await readRevision(context.db, chittyId, input.server_id, input.base_revision);
    // Retried when another push wins the revision between our read and our write (compare-and-set).
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const current = await readState(context.db, chittyId, input.server_id);
      if (input.base_revision > current.revision || base === undefined) throw errors.BASE_UNAVAILABLE({ data: { revision: current.revision } });
      const { merged, conflicts, takenFromCurrent } =
        input.base_revision === current.revision ? { merged: input.document, conflicts: [], takenFromCurrent: [] } : merge(base, current.document, input.document);
      if (conflicts.length > 0) {
        context.audit.detail = { outcome: 'conflict', base_revision: input.base_revision, revision: current.revision, fields: conflicts.map((c) => c.field) };
        throw errors.CONFLICT({ data: { revision: current.revision, conflicts } });
      }
      const fields = changedFields(current.document, merged);
      if (fields.length === 0) return { ...current, merged: takenFromCurrent };
      if (await writeState(context.db, { chittyId, serverId: input.server_id, from: current.revision, document: merged, fields, deviceId })) {
        const written = await readState(context.db, chittyId, input.server_id);
        const cursor = await latestCursor(context.db, chittyId, input.server_id, written.revision);
        context.audit.detail = { revision: written.revision, fields, merged: takenFromCurrent, device_id: deviceId };
        await publish(context.env, chittyId, { event: { type: 'state_changed', server_id: input.server_id, revision: written.revision, cursor, device_id: deviceId, fields } });
        return { ...written, merged: takenFromCurrent };
      }
    }
    throw new ORPCError('SERVICE_UNAVAILABLE', { status: 503, message: 'The state is changing too fast to write; retry' });
  }),

  pull: os.sync.pull.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const chittyId = authz.principal.chittyId;
    const cursor = Number(input.cursor ?? 0);
    const rows = await changesSince(context.db, chittyId, cursor, input.limit);
    const page = rows.slice(0, input.limit);
    // Only the servers this credential may read (a sync token: its one server).
    const readable = new Map<string, boolean>();
    for (const id of new Set(page.map((r) => r.server_id))) readable.set(id, await authz.can(statePermission('read', id)));
    // The cursor advances past changes the credential may not read: they are simply not shown.
    const changes = page
      .filter((r) => readable.get(r.server_id))
      .map((r) => ({ cursor: String(r.seq), server_id: r.server_id, revision: r.revision, fields: JSON.parse(r.fields) as string[], device_id: r.device_id, at: r.at }));
    const documents = await statesOf(context.db, chittyId, [...new Set(changes.map((c) => c.server_id))]);
    return { changes, documents, next_cursor: String(page.at(-1)?.seq ?? cursor), has_more: rows.length > input.limit };
  }),

  force: os.sync.force.handler(async ({ input, context }) => {
    const { principal } = authzOf(context);
    if (input.device_id && !(await findLiveDevice(context.db, principal.chittyId, input.device_id))) throw deviceNotFound(input.device_id);
    context.audit.target = input.device_id ?? principal.chittyId;
    return { delivered: await publish(context.env, principal.chittyId, { event: { type: 'force_sync', device_id: input.device_id ?? null } }) };
  }),

  session: os.sync.session.handler(async ({ input, context }) => {
    const { principal } = authzOf(context);
    const sessionId = input.session_id ?? principal.sessionId;
    if (!sessionId) throw invalidInput('session_id', 'required when the caller is not signed in with a session');
    const session = await findSession(context.db, sessionId);
    if (!session || session.chitty_id !== principal.chittyId || session.revoked_at) throw new ORPCError('NOT_FOUND', { status: 404, message: `No live session ${sessionId}` });
    for (const d of input.devices) if (!(await findLiveDevice(context.db, principal.chittyId, d))) throw deviceNotFound(d);
    const row = { session_id: sessionId, chitty_id: principal.chittyId, servers: JSON.stringify([...new Set(input.servers)]), devices: JSON.stringify([...new Set(input.devices)]), updated_at: nowIso() };
    await context.db
      .insertInto('sync_sessions')
      .values(row)
      .onConflict((oc) => oc.column('session_id').doUpdateSet({ servers: row.servers, devices: row.devices, updated_at: row.updated_at }))
      .execute();
    context.audit.target = sessionId;
    return { ...row, servers: JSON.parse(row.servers) as string[], devices: JSON.parse(row.devices) as string[] };
  }),

  sessions: os.sync.sessions.handler(async ({ context }) => {
    const { principal } = authzOf(context);
    const rows = await context.db
      .selectFrom('sync_sessions')
      .innerJoin('sessions', 'sessions.id', 'sync_sessions.session_id')
      .selectAll('sync_sessions')
      .where('sync_sessions.chitty_id', '=', principal.chittyId)
      .where('sessions.revoked_at', 'is', null)
      .where('sessions.expires_at', '>', nowIso())
      .orderBy('sync_sessions.session_id')
      .execute();
    return { items: rows.map((r) => ({ ...r, servers: JSON.parse(r.servers) as string[], devices: JSON.parse(r.devices) as string[] })) };
  }),

  createToken: os.sync.createToken.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const { principal } = authz;
    if (!(await findServer(context.db, input.server_id))) throw new ORPCError('NOT_FOUND', { status: 404, message: `No MCP server ${input.server_id}` });
    if (input.device_id && !(await findLiveDevice(context.db, principal.chittyId, input.device_id))) throw deviceNotFound(input.device_id);
    const scopes = syncTokenScopes(input.server_id);
    // No escalation: the creating credential must itself be able to read and write that state.
    if (!scopesCovered(principal.scopes, scopes)) throw new ORPCError('FORBIDDEN', { status: 403, message: 'The requested scopes exceed those of your credential', data: { permission: scopes.join(' ') } });
    for (const s of scopes) await authz.require(s);
    const lifetime = input.expires_in === undefined ? null : durationSeconds(input.expires_in);
    if (lifetime !== null && lifetime > MAX_SYNC_TOKEN_LIFETIME_S) throw invalidInput('expires_in', 'at most 366 days');
    const secret = `${API_KEY_PREFIX}${randomSecret(SYNC_TOKEN_SECRET_LENGTH)}`;
    const row: ApiKeysTable = {
      id: newId('key'),
      chitty_id: principal.chittyId,
      name: input.name ?? `Sync: ${input.server_id}`,
      prefix: secret.slice(0, API_KEY_PREFIX.length + 6),
      secret_hash: await sha256Hex(secret),
      scopes: JSON.stringify(scopes),
      created_by: principal.chittyId,
      created_at: nowIso(),
      expires_at: lifetime === null ? null : isoIn(lifetime),
      last_used_at: null,
      revoked_at: null,
      device_id: input.device_id ?? null,
    };
    await insertApiKey(context.db, row);
    context.audit.target = row.id;
    context.audit.detail = { server_id: input.server_id, device_id: row.device_id };
    return { key_id: row.id, api_key: secret, server_id: input.server_id, scopes, device_id: row.device_id ?? null, expires_at: row.expires_at };
  }),
};

async function latestCursor(db: DB, chittyId: string, serverId: string, revision: number): Promise<string> {
  const row = await db.selectFrom('sync_changes').select('seq').where('chitty_id', '=', chittyId).where('server_id', '=', serverId).where('revision', '=', revision).executeTakeFirst();
  return String(row?.seq ?? 0);
}
