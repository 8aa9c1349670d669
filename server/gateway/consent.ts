import type { DB } from '../db/schema';
import type { Env } from '../env';
import { listGrantsCached } from '../permissions/permissions.store';
import { actionAllowed, callerFrom, toolAllowed, type Caller } from '../portal/access';
import { findEnabledCached, serverPolicy, type ServerPolicy } from '../portal/servers.store';
import { hostRoute } from './gateway.proxy';
import { domainOfHost } from './hostname';
import { connectUrl, findConnection } from './upstream-oauth';

/**
 * What a person grants when they consent to a gateway route (`ISSUER/gw/{id}/mcp`, `/sse`, or a hostname route):
 * the upstream MCP server, the tools they will be able to call through it under the portal's current policy,
 * and how the gateway reaches the upstream. Read from the same isolate caches and policy functions as the
 * gateway itself (portal/access.ts), so the page shows what the gateway will then enforce.
 */
export interface RouteTool {
  name: string;
  title: string | null;
  description: string | null;
}

export type GatewayTools =
  /** The tools the upstream listed at its last successful health check, split by the policy. */
  | { known: true; callable: RouteTool[]; refused: (RouteTool & { reason: string })[] }
  /** Never listed (an OAuth upstream the portal cannot check alone, or never reachable); `refusedByName`: tools the policy names and refuses. */
  | { known: false; status: string; checkedAt: string | null; refusedByName: { name: string; reason: string }[] };

export type GatewayConsent =
  /** No server at this route that the person may see (the gateway would answer 404). */
  | { found: false; resource: string }
  | {
      found: true;
      resource: string;
      server: { id: string; name: string; description: string | null; url: string; authType: string };
      /** Why the application's calls will be refused whatever the tool, or null. */
      blocked: string | null;
      tools: GatewayTools;
      /** How the gateway signs in to the upstream for this person. */
      upstreamAuth: { kind: 'registry' } | { kind: 'oauth'; connected: boolean; connectUrl: string };
    };

/** The server id a gateway resource names; undefined: not a gateway route; null: a hostname route no registered server is on. */
export async function gatewayRouteServer(env: Env, db: DB, resource: string): Promise<string | null | undefined> {
  if (resource.startsWith(`${env.ISSUER}/gw/`)) {
    return /^\/gw\/([a-z0-9][a-z0-9-]{1,62}[a-z0-9])\/(mcp|sse)$/.exec(resource.slice(env.ISSUER.length))?.[1];
  }
  let url: URL;
  try {
    url = new URL(resource);
  } catch {
    return undefined;
  }
  const domain = domainOfHost(url.host, env.GATEWAY_DOMAIN);
  if (!domain) return undefined;
  return (await hostRoute(db, url.origin, domain))?.serverId ?? null;
}

/** The consent picture of a resource for one person and the scopes asked for; null when it is not a gateway route. */
export async function gatewayConsentFor(env: Env, db: DB, resource: string, chittyId: string, scopes: readonly string[]): Promise<GatewayConsent | null> {
  const serverId = await gatewayRouteServer(env, db, resource);
  if (serverId === undefined) return null;
  const policy = serverId ? await serverPolicy(db, serverId) : null;
  const grants = await listGrantsCached(db, chittyId);
  // Whether the server is named at all follows the person's own rights (what the portal shows them); what the
  // application may do follows the scopes it asked for, as the gateway will check them on every call.
  if (!policy || !actionAllowed(policy.access, policy.row, callerFrom(chittyId, grants, ['*']), 'view')) return { found: false, resource };
  const app = callerFrom(chittyId, grants, scopes);
  const { row } = policy;
  return {
    found: true,
    resource,
    server: { id: row.id, name: row.name, description: row.description, url: row.mcp_url, authType: row.auth_type },
    blocked: await blockedReason(db, policy, app),
    tools: routeTools(policy, app),
    upstreamAuth: row.auth_type === 'oauth' ? { kind: 'oauth', connected: (await findConnection(db, chittyId, row.id))?.status === 'connected', connectUrl: connectUrl(env, row.id) } : { kind: 'registry' },
  };
}

/** The connect page's picture: the person's own rights (a portal session, every scope). */
export async function gatewayToolsForPerson(db: DB, serverId: string, chittyId: string): Promise<{ tools: GatewayTools; blocked: string | null } | null> {
  const policy = await serverPolicy(db, serverId);
  if (!policy) return null;
  const person = callerFrom(chittyId, await listGrantsCached(db, chittyId), ['*']);
  return { tools: routeTools(policy, person), blocked: await blockedReason(db, policy, person) };
}

/** The gateway's admission steps before any tool (gateway.proxy.ts: view, connect, the person's switch, call). */
async function blockedReason(db: DB, { row, access }: ServerPolicy, caller: Caller): Promise<string | null> {
  if (!actionAllowed(access, row, caller, 'view') || !actionAllowed(access, row, caller, 'connect')) {
    return `Under the portal's current policy, these permissions do not let the application connect to ${row.name}: its calls will be refused.`;
  }
  if (!(await findEnabledCached(db, caller.chittyId, row.id))) return `You turned ${row.name} off for yourself in the portal: calls will be refused until you turn it on.`;
  if (!actionAllowed(access, row, caller, 'call')) return `Under the portal's current policy, these permissions do not let the application call the tools of ${row.name}.`;
  return null;
}

function routeTools({ row, access, rules }: ServerPolicy, caller: Caller): GatewayTools {
  const mayCall = actionAllowed(access, row, caller, 'call');
  const decide = (name: string) => (mayCall ? toolAllowed(rules, row.id, name, caller) : { allowed: false, reason: 'calling tools is not allowed' });
  if (row.tools === null) {
    const named = [...new Set(rules.map((r) => r.tool).filter((t) => t !== '*'))];
    const refusedByName = named.map((name) => ({ name, ...decide(name) })).filter((d) => !d.allowed).map(({ name, reason }) => ({ name, reason }));
    return { known: false, status: row.status, checkedAt: row.checked_at, refusedByName };
  }
  const listed = JSON.parse(row.tools) as RouteTool[];
  const decided = listed.map((t) => ({ ...t, ...decide(t.name) }));
  return {
    known: true,
    callable: decided.filter((t) => t.allowed).map(({ name, title, description }) => ({ name, title, description })),
    refused: decided.filter((t) => !t.allowed).map(({ name, title, description, reason }) => ({ name, title, description, reason })),
  };
}

/**
 * The route's scopes in words. A token for a gateway route is accepted only there (RFC 8707 audience), so
 * ChittyAuth's own powers (API keys, grants, sync) do not come with it; what the scopes mean on the route is
 * whether the gateway lets the application connect and call, as portal/access.ts decides.
 */
export function gatewayScopeDescription(scope: string, serverName: string): string {
  if (scope === 'mcp:write') return `connect to ${serverName} through the gateway and call, as you, the tools listed as callable`;
  if (scope === 'mcp:read') return `see ${serverName} through the gateway, read-only: alone, not enough to connect or call tools (except on a server you registered)`;
  return `nothing on this route: the token is accepted only by this gateway route, where ${scope} has no use`;
}

/**
 * RFC 9728 §2 `resource_name` of a gateway route, "intended for display to the end user": the MCP server it
 * fronts, so a client's own consent screen names the server rather than ChittyAuth.
 */
export async function gatewayResourceName(db: DB, serverId: string): Promise<string> {
  return (await serverPolicy(db, serverId))?.row.name ?? `ChittyAuth gateway route ${serverId} (no MCP server registered)`;
}
