import { ORPCError } from '@orpc/server';
import { endSockets } from '../auth/live-sockets';
import type { DevicesTable } from '../db/schema';
import { newId } from '../lib/ids';
import { nowIso } from '../lib/time';
import { authzOf, os } from '../orpc';
import { publish } from './hub';
import { bindSessionToDevice, deviceOfCredential, findLiveDevice, insertDevice, listLiveDevices, removeDeviceAndCredentials, renameDeviceRow } from './sync.store';

const toDevice = (row: DevicesTable, current: string | null) => ({
  device_id: row.id,
  chitty_id: row.chitty_id,
  name: row.name,
  type: row.type,
  created_at: row.created_at,
  updated_at: row.updated_at,
  current: row.id === current,
});

const notFound = (id: string) => new ORPCError('NOT_FOUND', { status: 404, message: `No device ${id}` });

/** Devices belong to the signed-in ChittyID; another user's device is indistinguishable from a missing one. */
export const devices = {
  register: os.devices.register.handler(async ({ input, context }) => {
    const { principal } = authzOf(context);
    const now = nowIso();
    const row: DevicesTable = { id: newId('dev'), chitty_id: principal.chittyId, name: input.name, type: input.type, created_at: now, updated_at: now, removed_at: null };
    await insertDevice(context.db, row);
    const bound = input.bind_session && principal.credential === 'session' && principal.sessionId !== null;
    if (bound) await bindSessionToDevice(context.db, principal.sessionId!, row.id);
    context.audit.target = row.id;
    context.audit.detail = { type: row.type, session_bound: bound };
    return toDevice(row, bound ? row.id : null);
  }),

  list: os.devices.list.handler(async ({ context }) => {
    const { principal } = authzOf(context);
    const current = await deviceOfCredential(context.db, principal.credential, principal.credentialId);
    return { items: (await listLiveDevices(context.db, principal.chittyId)).map((d) => toDevice(d, current)) };
  }),

  rename: os.devices.rename.handler(async ({ input, context }) => {
    const { principal } = authzOf(context);
    context.audit.target = input.device_id;
    if (!(await findLiveDevice(context.db, principal.chittyId, input.device_id))) throw notFound(input.device_id);
    await renameDeviceRow(context.db, input.device_id, input.name);
    const current = await deviceOfCredential(context.db, principal.credential, principal.credentialId);
    return toDevice((await findLiveDevice(context.db, principal.chittyId, input.device_id))!, current);
  }),

  remove: os.devices.remove.handler(async ({ input, context }) => {
    const { principal } = authzOf(context);
    context.audit.target = input.device_id;
    if (!(await findLiveDevice(context.db, principal.chittyId, input.device_id))) throw notFound(input.device_id);
    const ended = await removeDeviceAndCredentials(context.db, principal.chittyId, input.device_id);
    // Its open streams are told, then closed; the other devices learn it was removed; its MCP sockets close, and
    // so do those of the MCP clients authorized through its sessions (their grants were revoked with it).
    await publish(context.env, principal.chittyId, { event: { type: 'device_removed', device_id: input.device_id }, close: { device_id: input.device_id, session_ids: ended.sessions } });
    const socketsClosed = await endSockets(context.env, principal.chittyId, { credentials: [...ended.sessions, ...ended.apiKeyIds, ...ended.grantIds], reason: 'credential revoked' });
    context.audit.detail = { sessions_ended: ended.sessions.length, api_keys_revoked: ended.apiKeys, grants_revoked: ended.grantIds, sockets_closed: socketsClosed };
    return { device_id: input.device_id, sessions_ended: ended.sessions.length, api_keys_revoked: ended.apiKeys, grants_revoked: ended.grantIds.length };
  }),
};
