import { insertAuditEvent } from '../audit/audit.store';
import type { DB, OAuthGrantsTable } from '../db/schema';
import type { Env } from '../env';
import { listGrantsCached } from '../permissions/permissions.store';
import { callerFrom } from '../portal/access';
import { admitToDirect, canonicalResource, requestedDirectScope, type Admission, type DirectServer } from '../portal/direct';
import { findDirectByResource } from '../portal/direct.store';
import { findEnabledCached, serverPolicy } from '../portal/servers.store';
import type { Client } from './clients';
import { OAuthError } from './errors';
import { revokeGrant } from './grants';
import { checkResource, checkScope, knownResources } from './params';

/**
 * The resource of an authorization or token request (RFC 8707): one of ChittyAuth's own (params.ts:
 * its API, its MCP endpoint, the gateway routes), or a direct resource, an MCP server registered in the
 * portal that ChittyAuth is the authorization server of (servers.setDirect).
 */
export type ResolvedResource = { resource: string; direct: DirectServer | null };

export async function resolveResource(env: Env, db: DB, raw: string | null): Promise<ResolvedResource> {
  try {
    return { resource: checkResource(env, raw), direct: null };
  } catch (error) {
    if (!(error instanceof OAuthError) || !raw) throw error;
    const canonical = canonicalResource(raw);
    if (!canonical.ok) throw error;
    const direct = await findDirectByResource(db, canonical.resource);
    if (!direct) {
      throw new OAuthError('invalid_target', `unknown resource ${raw}; this server issues tokens for ${knownResources(env).join(' and ')}, its gateway routes, and the MCP servers registered in its portal as direct resources`);
    }
    return { resource: canonical.resource, direct };
  }
}

/** The scope a client asks for: ChittyAuth's own scopes for its resources, the server's for a direct one. */
export function requestedScope(raw: string | null, client: Client, resolved: ResolvedResource): string {
  if (!resolved.direct) return checkScope(raw, client);
  const checked = requestedDirectScope(raw, resolved.direct, client.scope);
  if (!checked.ok) throw new OAuthError(checked.error, checked.description);
  return checked.scope;
}

/**
 * The portal's decision for one identity on a direct server, from the same isolate caches as the gateway
 * (db/cache.ts: this isolate's writes show at once, others' within CACHE_TTL_MS). The identity's own grants
 * and roles count, not a credential's scopes: this is about the person, whatever signed them in.
 */
export async function admitDirect(db: DB, direct: DirectServer, chittyId: string, scope: string): Promise<Admission> {
  const [policy, grants, enabled] = await Promise.all([serverPolicy(db, direct.server.id), listGrantsCached(db, chittyId), findEnabledCached(db, chittyId, direct.server.id)]);
  if (!policy) return { ok: false, reason: `${direct.server.name} is no longer registered` };
  return admitToDirect(policy.access, direct, callerFrom(chittyId, grants, ['*']), enabled, scope);
}

/**
 * At refresh: a grant for a direct resource stands only while the server still protects that resource and the
 * user may still connect; the scope shrinks to what the policy allows now. Otherwise the grant is revoked
 * (its refresh token already rotated) and the client must send the user through /oauth/authorize again.
 */
export async function reviewDirectGrant(db: DB, grant: Pick<OAuthGrantsTable, 'id' | 'chitty_id' | 'client_id' | 'resource'>, scope: string): Promise<string> {
  const direct = await findDirectByResource(db, grant.resource);
  if (!direct) return scope; // one of ChittyAuth's own resources
  const decision = await admitDirect(db, direct, grant.chitty_id ?? grant.client_id, scope);
  if (decision.ok) return decision.scope;
  await revokeGrant(db, grant.id, 'access_policy');
  await insertAuditEvent(db, { actor: grant.chitty_id ?? grant.client_id, action: 'oauth.token', target: grant.id, door: 'oauth', outcome: 'denied', detail: { resource: grant.resource, reason: 'access_policy', grant_revoked: true } });
  throw new OAuthError('invalid_grant', decision.reason);
}

/** client_credentials for a direct resource: the client's own identity must pass the portal's policy. */
export async function admitClientIdentity(db: DB, resolved: ResolvedResource, chittyId: string, scope: string): Promise<string> {
  if (!resolved.direct) return scope;
  const decision = await admitDirect(db, resolved.direct, chittyId, scope);
  if (!decision.ok) throw new OAuthError('unauthorized_client', decision.reason);
  return decision.scope;
}

/**
 * RFC 7662 §2.1/§4: who may introspect an access token, and whether it is still good beyond its signature and
 * grant. The client it was issued to may; so may the resource server of a direct resource, with the client it
 * named in servers.setDirect. A direct resource's token stays active only while the portal's policy still lets
 * its subject connect (so a resource server that introspects sees access removed within CACHE_TTL_MS).
 */
export async function introspectionAllows(db: DB, clientId: string, claims: { client_id?: unknown; aud?: unknown; sub?: unknown; scope?: unknown }): Promise<boolean> {
  const aud = typeof claims.aud === 'string' ? claims.aud : null;
  const direct = aud ? await findDirectByResource(db, aud) : null;
  const mayAsk = claims.client_id === clientId || (direct !== null && direct.introspectionClientId === clientId);
  if (!mayAsk) return false;
  if (!direct) return true;
  if (typeof claims.sub !== 'string') return false;
  return (await admitDirect(db, direct, claims.sub, typeof claims.scope === 'string' ? claims.scope : '')).ok;
}
