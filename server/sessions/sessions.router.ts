import { ORPCError } from '@orpc/server';
import type { SessionsTable } from '../db/schema';
import { endSockets } from '../auth/live-sockets';
import { nowIso } from '../lib/time';
import { authzOf, os } from '../orpc';
import { publish } from '../sync/hub';
import { findSession, listSessions, updateSessionRevoked } from './sessions.store';

const toSession = (row: SessionsTable, currentId: string | null) => ({
  session_id: row.id,
  chitty_id: row.chitty_id,
  device_name: row.device_name,
  device_id: row.device_id ?? null,
  user_agent: row.user_agent,
  ip: row.ip,
  client: row.client,
  created_at: row.created_at,
  last_seen_at: row.last_seen_at,
  expires_at: row.expires_at,
  revoked_at: row.revoked_at,
  current: row.id === currentId,
});

export const sessions = {
  list: os.sessions.list.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const subject = await authz.subject(input.chitty_id);
    const rows = await listSessions(context.db, subject, input.include_ended, nowIso());
    return { items: rows.map((r) => toSession(r, authz.principal.sessionId)) };
  }),

  revoke: os.sessions.revoke.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const row = await findSession(context.db, input.session_id);
    const notFound = new ORPCError('NOT_FOUND', { status: 404, message: `No session ${input.session_id}` });
    if (!row) throw notFound;
    context.audit.target = row.id;
    if (row.chitty_id !== authz.principal.chittyId && !(await authz.can('sessions:revoke:any'))) throw notFound;
    await updateSessionRevoked(context.db, row.id, nowIso());
    // Remote termination reaches the user's devices live; streams opened with this session close.
    await publish(context.env, row.chitty_id, { event: { type: 'session_terminated', session_id: row.id, device_id: row.device_id ?? null }, close: { session_ids: [row.id] } });
    context.audit.detail = { sockets_closed: await endSockets(context.env, row.chitty_id, { credentials: [row.id], reason: 'credential revoked' }) };
    return toSession((await findSession(context.db, row.id))!, authz.principal.sessionId);
  }),
};
