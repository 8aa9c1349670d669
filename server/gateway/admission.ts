import { insertAuditEvent } from '../audit/audit.store';
import { authenticate, type Principal } from '../auth/authenticate';
import { decrypt } from '../crypto/encryption';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { challengeResponse, originAllowed } from '../oauth/challenge';
import { principalGrants } from '../auth/authorizer';
import { actionAllowed, callerFrom, toolAllowed, type AccessMap, type Caller, type ToolRule } from '../portal/access';
import { secretAad } from '../portal/health';
import { findEnabledCached, serverPolicy, type ServerRow } from '../portal/servers.store';
import { rateLimited } from './gateway.proxy';
import { gatewayLimiter, rateLimitsOf } from './rate-limit';
import type { ToolFilter } from './sse';
import { connectUrl, upstreamAccessToken } from './upstream-oauth';

/**
 * Admission to a gateway route for the transports beside Streamable HTTP (legacy SSE, the WebSocket tunnel):
 * the same checks, in the same order, as /gw/{server}/mcp (gateway.proxy.ts): Origin, the bearer token for
 * this route's resource (RFC 8707 audience), the portal's `view` and `connect` rules and the user's own switch.
 */
export interface AdmissionRoute {
  serverId: string;
  /** The resource identifier tokens must be issued for (RFC 8707). */
  resource: string;
  /** Where that resource's protected resource metadata is (RFC 9728). */
  metadata: string;
}

export interface Admitted {
  principal: Principal;
  row: ServerRow;
  access: AccessMap;
  caller: Caller;
  rules: ToolRule[];
  /** The tools/list filter: the tools this user may call. */
  toolFilter: ToolFilter;
  /** Why a tools/call of `tool` is refused, or null when it may go to the upstream. */
  refusal(tool: string): string | null;
  /** Appends a gateway.call audit event for this user and server. */
  audit(outcome: 'success' | 'denied' | 'failure', detail: Record<string, unknown>): Promise<void>;
}

export const jsonError = (status: number, error: string, message: string) =>
  new Response(JSON.stringify({ error, message }), { status, headers: { 'content-type': 'application/json' } });

export async function admit(
  request: Request,
  env: Env,
  db: DB,
  route: AdmissionRoute,
  authorization: string | null,
  waitUntil: (p: Promise<unknown>) => void,
): Promise<{ ok: true; admitted: Admitted } | { ok: false; response: Response }> {
  const refuse = (response: Response) => ({ ok: false as const, response });
  const { serverId, resource, metadata } = route;
  // MCP transports: servers MUST validate Origin (DNS rebinding); for WebSockets this also stops cross-site
  // WebSocket hijacking, since browsers send Origin on the upgrade.
  if (!originAllowed(env, request.headers.get('origin'))) return refuse(jsonError(403, 'forbidden_origin', 'Requests from this Origin are not allowed (DNS rebinding protection)'));
  if (new URL(request.url).searchParams.has('access_token')) {
    // RFC 6750 §2.3 is not offered (OAuth 2.1 §5.1.3 / MCP: tokens MUST NOT be in the query string).
    return refuse(challengeResponse(env, 400, { error: 'invalid_request', description: 'tokens in the query string are refused', metadata }, 'Send the token in the Authorization header'));
  }
  const auth = await authenticate(env, db, authorization, resource, waitUntil);
  if (!auth.ok) {
    if (auth.reason === 'missing') return refuse(challengeResponse(env, 401, { metadata }, 'Authentication required: send Authorization: Bearer <token for this route>'));
    return refuse(challengeResponse(env, 401, { error: 'invalid_token', description: `the access token is ${auth.reason.replace('_', ' ')}`, metadata }, `Invalid token: ${auth.reason}`));
  }
  const principal = auth.principal;
  // The same isolate caches as /gw/{server}/mcp (db/cache.ts): no D1 read for the policy on most requests.
  const policy = await serverPolicy(db, serverId);
  const caller = callerFrom(principal.chittyId, await principalGrants(db, principal), principal.scopes);
  if (!policy || !actionAllowed(policy.access, policy.row, caller, 'view')) return refuse(jsonError(404, 'not_found', `No MCP server ${serverId}`));
  const { row, access, rules } = policy;
  if (!actionAllowed(access, row, caller, 'connect')) return refuse(jsonError(403, 'forbidden', `You may not connect to ${serverId}`));
  if (!(await findEnabledCached(db, principal.chittyId, serverId))) return refuse(jsonError(403, 'forbidden', `${serverId} is turned off for you; turn it on in the portal`));
  // The same per-user and per-server rate limits: each legacy POST, stream and tunnel opening counts as a request.
  const limited = gatewayLimiter.take(serverId, principal.chittyId, rateLimitsOf(row));
  if (!limited.ok) {
    if (limited.first) waitUntil(insertAuditEvent(db, { actor: principal.chittyId, action: 'gateway.call', target: serverId, door: 'mcp', outcome: 'denied', detail: { method: request.method, reason: 'rate_limited', limit: limited.limit } }));
    return refuse(rateLimited(limited, serverId, null));
  }

  const mayCall = actionAllowed(access, row, caller, 'call');
  const toolFilter: ToolFilter = (name) => mayCall && toolAllowed(rules, serverId, name, caller).allowed;
  return {
    ok: true,
    admitted: {
      principal,
      row,
      access,
      caller,
      rules,
      toolFilter,
      refusal: (tool) => (toolFilter(tool) ? null : `Tool ${tool} is not allowed for you on ${serverId}`),
      audit: (outcome, detail) => insertAuditEvent(db, { actor: principal.chittyId, action: 'gateway.call', target: serverId, door: 'mcp', outcome, detail }),
    },
  };
}

/**
 * The upstream's credential for this user (never the client's token): the registry's static header, or the
 * user's own OAuth connection. `null` when an OAuth upstream has no usable connection for the user.
 */
export async function upstreamCredentials(env: Env, db: DB, row: ServerRow, chittyId: string): Promise<Headers | null> {
  const headers = new Headers();
  const config = JSON.parse(row.auth_config) as { header_name?: string };
  if (row.auth_type === 'header' && config.header_name && row.auth_secret_encrypted) {
    headers.set(config.header_name, await decrypt(env.ENCRYPTION_KEY, row.auth_secret_encrypted, secretAad(row.id)));
  }
  if (row.auth_type === 'oauth') {
    const token = await upstreamAccessToken(env, db, row.id, chittyId);
    if (!token) return null;
    headers.set('authorization', `Bearer ${token}`);
  }
  return headers;
}

export const needsConnectionMessage = (env: Env, row: ServerRow) =>
  `Authorization needed: open ${connectUrl(env, row.id)} in a browser to connect ${row.name} to your ChittyAuth account, then retry`;

/** JSON-RPC 2.0 error object for one request id. */
export const rpcErrorMessage = (id: unknown, code: number, message: string, data?: Record<string, unknown>) => ({
  jsonrpc: '2.0' as const,
  id: id ?? null,
  error: { code, message, ...(data ? { data } : {}) },
});

/** The gateway's JSON-RPC error codes (implementation-defined server errors, JSON-RPC 2.0 §5.1). */
export const RPC_DENIED = -32003;
export const RPC_NEEDS_CONNECTION = -32001;
