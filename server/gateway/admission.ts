import { insertAuditEvent } from '../audit/audit.store';
import { authenticate, type Principal } from '../auth/authenticate';
import { principalGrants } from '../auth/authorizer';
import { decrypt } from '../crypto/encryption';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { challengeResponse, originAllowed } from '../oauth/challenge';
import { actionAllowed, callerFrom, toolAllowed, type AccessMap, type Caller, type ToolRule } from '../portal/access';
import { secretAad } from '../portal/health';
import { findEnabledCached, serverPolicy, type ServerRow } from '../portal/servers.store';
import { gatewayLimiter, rateLimitsOf, type Decision } from './rate-limit';
import type { ToolFilter } from './sse';
import { connectUrl, upstreamAccessToken } from './upstream-oauth';

/**
 * Admission to a gateway route, the one path for every transport (Streamable HTTP /gw/{server}/mcp, legacy
 * SSE, the WebSocket tunnel): Origin, the bearer token for this route's resource (RFC 8707 audience), the
 * portal's `view` and `connect` rules, the user's own switch, and the per-user and per-server rate limits.
 * What it admits carries the policy (tools/list filter, tools/call refusal), the rate limiter for each later
 * message of a tunnel, and the audit path.
 */
export interface GatewayRoute {
  serverId: string;
  /** The resource identifier tokens must be issued for (RFC 8707): the path route, or the encoded host's /mcp or /sse. */
  resource: string;
  /** Where that resource's protected resource metadata is (RFC 9728). */
  metadata: string;
}

export type RateRefusal = Extract<Decision, { ok: false }>;

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
  /**
   * Counts one client message (or request; `cost` messages for a batch) against the route's per-user and per-server limits; the refusal,
   * or null when it may proceed. The first refusal of a run is audited; the rest of a flood is not (it would
   * be a D1 write per message).
   */
  take(detail: { method: string } & Record<string, unknown>, cost?: number): RateRefusal | null;
  /**
   * Appends a gateway.call audit event for this user and server. Routine events are written after the
   * response (deferred: they may share a D1 transaction); denials are written before it.
   */
  audit(outcome: 'success' | 'denied' | 'failure', detail: Record<string, unknown>): Promise<void>;
}

export const jsonError = (status: number, error: string, message: string) =>
  new Response(JSON.stringify({ error, message }), { status, headers: { 'content-type': 'application/json' } });

/**
 * `countRequest: false` leaves the rate limit to the caller (`admitted.take`), for a transport that reads the
 * request's JSON-RPC message first so a refusal can answer its id. Otherwise this request counts here.
 */
export async function admit(
  request: Request,
  env: Env,
  db: DB,
  route: GatewayRoute,
  authorization: string | null,
  waitUntil: (p: Promise<unknown>) => void,
  options: { countRequest?: boolean } = {},
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
  // Each route is its own protected resource: only tokens issued for it (RFC 8707), and API keys.
  const auth = await authenticate(env, db, authorization, resource, waitUntil);
  if (!auth.ok) {
    if (auth.reason === 'missing') return refuse(challengeResponse(env, 401, { metadata }, 'Authentication required: send Authorization: Bearer <token for this route>'));
    return refuse(challengeResponse(env, 401, { error: 'invalid_token', description: `the access token is ${auth.reason.replace('_', ' ')}`, metadata }, `Invalid token: ${auth.reason}`));
  }
  const principal = auth.principal;
  // The server, its policy and the caller's grants come from the isolate caches (db/cache.ts): no D1 read
  // on most requests with an OAuth access token.
  const policy = await serverPolicy(db, serverId);
  const caller = callerFrom(principal.chittyId, await principalGrants(db, principal), principal.scopes);
  if (!policy || !actionAllowed(policy.access, policy.row, caller, 'view')) return refuse(jsonError(404, 'not_found', `No MCP server ${serverId}`));
  const { row, access, rules } = policy;
  if (!actionAllowed(access, row, caller, 'connect')) return refuse(jsonError(403, 'forbidden', `You may not connect to ${serverId}`));
  if (!(await findEnabledCached(db, principal.chittyId, serverId))) return refuse(jsonError(403, 'forbidden', `${serverId} is turned off for you; turn it on in the portal`));

  const audit: Admitted['audit'] = (outcome, detail) =>
    insertAuditEvent(db, { actor: principal.chittyId, action: 'gateway.call', target: serverId, door: 'mcp', outcome, detail }, { deferred: outcome !== 'denied' });
  const limits = rateLimitsOf(row);
  const take: Admitted['take'] = (detail, cost = 1) => {
    const limited = gatewayLimiter.take(serverId, principal.chittyId, limits, cost);
    if (limited.ok) return null;
    if (limited.first) waitUntil(insertAuditEvent(db, { actor: principal.chittyId, action: 'gateway.call', target: serverId, door: 'mcp', outcome: 'denied', detail: { ...detail, reason: 'rate_limited', limit: limited.limit } }));
    return limited;
  };
  // Each Streamable HTTP request, legacy POST, stream and tunnel opening counts; inside a tunnel, each message.
  if (options.countRequest !== false) {
    const limited = take({ method: request.method });
    if (limited) return refuse(rateLimited(limited, serverId, null));
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
      take,
      audit,
    },
  };
}

/** What a refused message is told: which limit, and when to retry (delay-seconds, RFC 9110 §10.2.3). */
export function rateLimitError(d: RateRefusal, serverId: string) {
  const retryAfter = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
  const which = d.limit === 'per_user' ? `your limit of ${d.requests} requests per ${d.windowSeconds} s to ${serverId}` : `the limit of ${d.requests} requests per ${d.windowSeconds} s for all users of ${serverId}`;
  return { retryAfter, message: `Rate limit exceeded: ${which}; retry after ${retryAfter} s`, data: { limit: d.limit, requests: d.requests, window_seconds: d.windowSeconds, retry_after: retryAfter } };
}

/**
 * RFC 6585 §4: 429 Too Many Requests, with Retry-After. An MCP request gets the reason as a JSON-RPC error too,
 * so clients that only read the body learn which limit and when.
 */
export function rateLimited(d: RateRefusal, serverId: string, message: { id?: unknown } | null): Response {
  const { retryAfter, message: text, data } = rateLimitError(d, serverId);
  const body = message && 'id' in message ? rpcErrorMessage(message.id, RATE_LIMITED, text, data) : { error: 'rate_limited', message: text, ...data };
  return new Response(JSON.stringify(body), { status: 429, headers: { 'content-type': 'application/json', 'retry-after': String(retryAfter) } });
}

/** A tunnel's refused message: the same JSON-RPC error on the socket or stream, which stays open. */
export const rateLimitedMessage = (d: RateRefusal, serverId: string, id: unknown) => {
  const { message, data } = rateLimitError(d, serverId);
  return rpcErrorMessage(id, RATE_LIMITED, message, data);
};

/**
 * The upstream's credential for this user (never the client's token): the registry's static header, or the
 * user's own OAuth connection. `null` when an OAuth upstream has no usable connection for the user.
 */
export async function upstreamCredentials(env: Env, db: DB, row: ServerRow, chittyId: string): Promise<Headers | null> {
  const headers = new Headers();
  await setStaticCredential(env, row, headers);
  if (row.auth_type === 'oauth') {
    const token = await upstreamAccessToken(env, db, row.id, chittyId);
    if (!token) return null;
    headers.set('authorization', `Bearer ${token}`);
  }
  return headers;
}

/** The registry's static header credential of an upstream (auth type `header`), decrypted into `headers`. */
export async function setStaticCredential(env: Env, row: ServerRow, headers: Headers): Promise<void> {
  const config = JSON.parse(row.auth_config) as { header_name?: string };
  if (row.auth_type === 'header' && config.header_name && row.auth_secret_encrypted) {
    headers.set(config.header_name, await decrypt(env.ENCRYPTION_KEY, row.auth_secret_encrypted, secretAad(row.id)));
  }
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
/** A call refused by a rate limit. */
export const RATE_LIMITED = -32029;
