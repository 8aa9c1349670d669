import * as v from 'valibot';
import { base, CONFLICT, NOT_FOUND } from './base';
import { boundedJsonObject, DurationSchema, idSchema, NameSchema, NullableTimestampSchema, TimestampSchema } from './schemas';

/**
 * Cross-device sync (seed 000's cross-session continuity): a user's devices, the state each MCP server keeps for
 * the user, which follows them from device to device, and the sessions that span servers and devices.
 */

export const DEVICE_TYPES = ['claude_desktop', 'web', 'mobile', 'cli', 'other'] as const;

const DeviceIdSchema = idSchema('dev');
const SyncServerIdSchema = v.pipe(v.string(), v.maxLength(64), v.regex(/^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$/, 'Invalid server_id: 3 to 64 characters a-z, 0-9 and -'));

export const DeviceSchema = v.object({
  device_id: v.string(),
  chitty_id: v.string(),
  name: v.string(),
  type: v.picklist(DEVICE_TYPES),
  created_at: TimestampSchema,
  updated_at: TimestampSchema,
  current: v.pipe(v.boolean(), v.description('The calling credential was issued to this device')),
});

/** The most a state document may hold, serialized. */
export const MAX_DOCUMENT_BYTES = 64 * 1024;
export const MAX_DOCUMENT_FIELDS = 256;

const DocumentSchema = v.pipe(
  boundedJsonObject('document', { maxKeyLength: 128, maxFields: MAX_DOCUMENT_FIELDS, maxBytes: MAX_DOCUMENT_BYTES }),
  v.description('The state, a JSON object. Merging works on its top-level fields.'),
);

export const StateSchema = v.object({
  server_id: v.string(),
  revision: v.pipe(v.number(), v.description('0 when nothing was pushed yet')),
  document: v.record(v.string(), v.unknown()),
  updated_at: NullableTimestampSchema,
  updated_by_device: v.nullable(v.string()),
});

const ConflictSchema = v.object({
  field: v.string(),
  base: v.optional(v.unknown()),
  current: v.optional(v.unknown()),
  pushed: v.optional(v.unknown()),
});

const Sync = ['Sync'];

export const registerDevice = base
  .route({
    method: 'POST',
    path: '/devices',
    successStatus: 201,
    tags: Sync,
    summary: 'Register a device',
    description:
      'Registers a device of the signed-in ChittyID. Called with a sign-in token, the calling session is bound to the new device (unless bind_session is false), so removing the device ends it.',
  })
  .meta({ tool: 'register_device', permission: 'sync:devices:write', audit: true })
  .input(v.strictObject({ name: NameSchema, type: v.picklist(DEVICE_TYPES, `Invalid type: one of ${DEVICE_TYPES.join(', ')}`), bind_session: v.optional(v.boolean(), true) }))
  .output(DeviceSchema);

export const listDevices = base
  .route({ method: 'GET', path: '/devices', tags: Sync, summary: 'List devices', description: 'The devices of the signed-in ChittyID.' })
  .meta({ tool: 'list_devices', permission: 'sync:devices:read', readOnly: true })
  .input(v.strictObject({}))
  .output(v.object({ items: v.array(DeviceSchema) }));

export const renameDevice = base
  .route({ method: 'PATCH', path: '/devices/{device_id}', tags: Sync, summary: 'Rename a device' })
  .meta({ tool: 'rename_device', permission: 'sync:devices:write', audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ device_id: DeviceIdSchema, name: NameSchema }))
  .output(DeviceSchema);

export const removeDevice = base
  .route({
    method: 'DELETE',
    path: '/devices/{device_id}',
    tags: Sync,
    summary: 'Remove a device',
    description:
      'Removes a device: every session and API key issued to it, and every OAuth grant approved through one of its sessions (MCP clients authorized on it must sign in again), is revoked at once, and its open sync streams are told and closed.',
  })
  .meta({ tool: 'remove_device', permission: 'sync:devices:write', audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ device_id: DeviceIdSchema }))
  .output(v.object({ device_id: v.string(), sessions_ended: v.number(), api_keys_revoked: v.number(), grants_revoked: v.number() }));

export const getState = base
  .route({ method: 'GET', path: '/sync/state/{server_id}', tags: Sync, summary: 'Get the state of a server', description: 'The current state document the caller keeps for an MCP server (revision 0 and {} when none). Needs sync:state:read:{server_id}.' })
  .meta({ tool: 'get_sync_state', permission: null, readOnly: true })
  .input(v.strictObject({ server_id: SyncServerIdSchema }))
  .output(StateSchema);

export const pushState = base
  .route({
    method: 'PUT',
    path: '/sync/state/{server_id}',
    tags: Sync,
    summary: 'Push the state of a server',
    description:
      'Pushes a new state document made from base_revision. If the document is still at base_revision, it becomes the next revision. If not, the fields changed on only one side are merged; fields changed on both sides (to different values) are a 409 conflict carrying, per field, the base, current and pushed values and the current revision, and nothing is written. Needs sync:state:write:{server_id} (a sync token for that server, or a user sign-in).',
  })
  .meta({ tool: 'sync_push', permission: null, audit: true })
  .errors({
    CONFLICT: {
      ...CONFLICT,
      message: 'The state changed since base_revision, and some fields were changed on both sides',
      data: v.object({ revision: v.number(), conflicts: v.array(ConflictSchema) }),
    },
    BASE_UNAVAILABLE: { status: 409, message: 'base_revision is unknown or too old to merge against: pull and push again', data: v.object({ revision: v.number() }) },
  })
  .input(
    v.strictObject({
      server_id: SyncServerIdSchema,
      base_revision: v.pipe(v.number(), v.integer('Invalid base_revision: a whole number'), v.minValue(0, 'Invalid base_revision: at least 0'), v.maxValue(Number.MAX_SAFE_INTEGER)),
      document: DocumentSchema,
      device_id: v.optional(DeviceIdSchema),
    }),
  )
  .output(v.object({ ...StateSchema.entries, merged: v.pipe(v.array(v.string()), v.description('Fields taken from the server side because they changed there since base_revision')) }));

export const pullChanges = base
  .route({
    method: 'GET',
    path: '/sync/changes',
    tags: Sync,
    summary: 'Pull changes since a cursor',
    description: 'Every change to the caller’s state since cursor, across the servers the caller may read, oldest first, with the current document of each server that changed. Start with no cursor; keep next_cursor.',
  })
  .meta({ tool: 'sync_pull', permission: null, readOnly: true })
  .input(v.strictObject({ cursor: v.optional(v.pipe(v.string(), v.maxLength(20), v.regex(/^[0-9]+$/, 'Invalid cursor'))), limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(500)), 200) }))
  .output(
    v.object({
      changes: v.array(v.object({ cursor: v.string(), server_id: v.string(), revision: v.number(), fields: v.array(v.string()), device_id: v.nullable(v.string()), at: TimestampSchema })),
      documents: v.array(StateSchema),
      next_cursor: v.string(),
      has_more: v.boolean(),
    }),
  );

export const forceSync = base
  .route({ method: 'POST', path: '/sync/force', tags: Sync, summary: 'Ask devices to sync now', description: 'Sends a force_sync event to the open sync streams of the caller’s devices (one device, or all).' })
  .meta({ tool: 'force_sync', permission: 'sync:devices:write', audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ device_id: v.optional(DeviceIdSchema) }))
  .output(v.object({ delivered: v.pipe(v.number(), v.description('Streams the event was written to')) }));

export const SyncSessionSchema = v.object({ session_id: v.string(), chitty_id: v.string(), servers: v.array(v.string()), devices: v.array(v.string()), updated_at: TimestampSchema });

export const syncSession = base
  .route({ method: 'POST', path: '/sync/sessions', tags: Sync, summary: 'Record what a session spans', description: 'Records which MCP servers and devices a session of the caller spans (default: the calling session). Replaces what was recorded.' })
  .meta({ tool: 'sync_session', permission: 'sync:sessions:write', audit: true })
  .errors({ NOT_FOUND })
  .input(
    v.strictObject({
      session_id: v.optional(idSchema('ses')),
      servers: v.pipe(v.array(SyncServerIdSchema), v.maxLength(50, 'Invalid servers: at most 50')),
      devices: v.optional(v.pipe(v.array(DeviceIdSchema), v.maxLength(20, 'Invalid devices: at most 20')), []),
    }),
  )
  .output(SyncSessionSchema);

export const listSyncSessions = base
  .route({ method: 'GET', path: '/sync/sessions', tags: Sync, summary: 'List what sessions span', description: 'The servers and devices recorded for the caller’s live sessions.' })
  .meta({ tool: 'list_sync_sessions', permission: 'sync:sessions:read', readOnly: true })
  .input(v.strictObject({}))
  .output(v.object({ items: v.array(SyncSessionSchema) }));

export const createSyncToken = base
  .route({
    method: 'POST',
    path: '/sync/tokens',
    successStatus: 201,
    tags: Sync,
    summary: 'Create a sync token for one server',
    description:
      'An API key with the cross_sync scope narrowed to one MCP server (scopes sync:state:read:{server_id} and sync:state:write:{server_id}), for that server to push and pull the caller’s state, and nothing else. Shown once. With device_id it is issued to that device and revoked with it.',
  })
  .meta({ tool: 'create_sync_token', permission: 'sync:tokens:create', audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ server_id: SyncServerIdSchema, device_id: v.optional(DeviceIdSchema), name: v.optional(NameSchema), expires_in: v.optional(DurationSchema) }))
  .output(v.object({ key_id: v.string(), api_key: v.string(), server_id: v.string(), scopes: v.array(v.string()), device_id: v.nullable(v.string()), expires_at: NullableTimestampSchema }));

export const devices = {
  register: registerDevice,
  list: listDevices,
  rename: renameDevice,
  remove: removeDevice,
};

export const sync = {
  get: getState,
  push: pushState,
  pull: pullChanges,
  force: forceSync,
  session: syncSession,
  sessions: listSyncSessions,
  createToken: createSyncToken,
};
