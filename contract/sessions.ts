import * as v from 'valibot';
import { base, NOT_FOUND } from './base';
import { ChittyIdSchema, idSchema, NullableTimestampSchema, TimestampSchema } from './schemas';

export const SessionSchema = v.object({
  session_id: v.string(),
  chitty_id: v.string(),
  device_name: v.nullable(v.string()),
  device_id: v.pipe(v.nullable(v.string()), v.description('The registered device the session was issued to (sync), if any')),
  user_agent: v.nullable(v.string()),
  ip: v.nullable(v.string()),
  client: v.nullable(v.string()),
  created_at: TimestampSchema,
  last_seen_at: TimestampSchema,
  expires_at: TimestampSchema,
  revoked_at: NullableTimestampSchema,
  current: v.pipe(v.boolean(), v.description('This is the session of the calling credential')),
});

export const listSessions = base
  .route({
    method: 'GET',
    path: '/sessions',
    tags: ['Sessions'],
    summary: 'List sessions',
    description: 'The sign-in sessions of a ChittyID (default: the caller) with device and client and when each was last seen.',
  })
  .meta({ tool: 'list_sessions', permission: 'sessions:read', readOnly: true })
  .input(v.strictObject({ chitty_id: v.optional(ChittyIdSchema), include_ended: v.optional(v.boolean(), false) }))
  .output(v.object({ items: v.array(SessionSchema) }));

export const revokeSession = base
  .route({ method: 'DELETE', path: '/sessions/{session_id}', tags: ['Sessions'], summary: 'End a session', description: 'Ends a session at once; its token stops working on every door.' })
  .meta({ tool: 'revoke_session', permission: 'sessions:revoke', audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ session_id: idSchema('ses') }))
  .output(SessionSchema);

export const sessions = {
  list: listSessions,
  revoke: revokeSession,
};
