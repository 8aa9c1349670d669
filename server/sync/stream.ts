import { authenticate } from '../auth/authenticate';
import { Authorizer } from '../auth/authorizer';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { openStream } from './hub';
import { deviceOfCredential, findLiveDevice } from './sync.store';

const problem = (status: number, code: string, message: string, data?: Record<string, unknown>, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ code, status, message, ...(data ? { data } : {}) }), { status, headers: { 'content-type': 'application/json', ...headers } });

/**
 * `GET /v1/sync/stream[?device_id=dev_…]`: server-sent events for one of the caller's devices (by default the
 * device its credential was issued to): `ready`, then `state_changed`, `force_sync`, `device_removed` and
 * `session_terminated` as they happen, and a keep-alive comment every SYNC_HEARTBEAT_MS. The stream of a
 * removed device, or one opened with a session that ends, is closed after its event.
 */
export async function handleSyncStream(request: Request, env: Env, db: DB, waitUntil: (p: Promise<unknown>) => void): Promise<Response> {
  if (request.method !== 'GET') return problem(405, 'METHOD_NOT_SUPPORTED', 'GET /v1/sync/stream', undefined, { allow: 'GET' });
  const auth = await authenticate(env, db, request.headers.get('authorization'), env.ISSUER, waitUntil);
  if (!auth.ok) {
    return problem(401, 'UNAUTHORIZED', 'Authentication is required: send Authorization: Bearer <API key or token>', { reason: auth.reason }, { 'www-authenticate': 'Bearer' });
  }
  const authz = new Authorizer(db, auth.principal, 'sync:devices:read');
  if (!(await authz.can('sync:devices:read'))) return problem(403, 'FORBIDDEN', 'The caller lacks the permission this procedure requires', { permission: 'sync:devices:read' });
  const named = new URL(request.url).searchParams.get('device_id');
  let deviceId: string | null;
  if (named !== null) {
    if (!(await findLiveDevice(db, auth.principal.chittyId, named))) {
      return problem(400, 'BAD_REQUEST', 'Invalid input: device_id: no such device of yours', { issues: [{ path: 'device_id', message: 'no such device of yours' }] });
    }
    deviceId = named;
  } else {
    deviceId = await deviceOfCredential(db, auth.principal.credential, auth.principal.credentialId);
  }
  return openStream(env, auth.principal.chittyId, { deviceId, sessionId: auth.principal.sessionId, signal: request.signal });
}
