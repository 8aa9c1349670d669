import { checkResourceAllowed } from '@modelcontextprotocol/client';
import { base64url } from 'jose';
import { decrypt, encrypt } from '../crypto/encryption';
import { sha256Hex } from '../crypto/hash';
import type { DB, GatewayDatabase } from '../db/schema';
import type { Env } from '../env';
import { guardedFetch } from '../lib/outbound';
import { wellKnownUrl } from '../lib/urls';
import { isoIn, nowIso } from '../lib/time';
import { secretAad } from '../portal/health';
import type { ServerRow } from '../portal/servers.store';

/**
 * The gateway as an OAuth 2.1 client of an upstream MCP server, per user (seed 003): discovery through the
 * upstream's protected resource metadata and its AS metadata, a client registered once per server (the
 * registry's pre-registered client, or dynamic registration), PKCE S256, the `resource` parameter, and a
 * `state` that is single-use and bound to the user who started. Tokens are stored encrypted and refreshed
 * shortly before expiry, one refresh at a time per connection.
 */
type UpstreamClient = GatewayDatabase['gateway_upstream_clients'];

const TIMEOUT_MS = 10_000;
const MAX_BYTES = 64 * 1024;
const STATE_TTL_S = 600;
/** Refresh when the access token has less than this left. */
const REFRESH_MARGIN_MS = 60_000;
const REFRESH_LOCK_S = 30;

export class UpstreamAuthError extends Error {}

export const callbackUrl = (env: Env) => `${env.ISSUER}/gw/callback`;
/** The gateway's own Client ID Metadata Document: its client_id at upstreams that accept such documents. */
export const gatewayClientId = (env: Env) => `${env.ISSUER}/gw/client.json`;

/** draft-ietf-oauth-client-id-metadata-document §4.1: the document, whose client_id is its own URL. */
export const gatewayClientMetadata = (env: Env) => ({
  client_id: gatewayClientId(env),
  client_name: 'ChittyAuth gateway',
  client_uri: env.ISSUER,
  application_type: 'web',
  redirect_uris: [callbackUrl(env)],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
});
export const connectUrl = (env: Env, serverId: string) => `${env.ISSUER}/gw/${serverId}/connect`;

const clientSecretAad = (serverId: string) => `gateway-client-secret:${serverId}`;
const tokenAad = (serverId: string, chittyId: string, kind: 'access' | 'refresh') => `gateway-${kind}:${serverId}:${chittyId}`;

async function getJson(env: Env, url: string): Promise<Record<string, unknown> | null> {
  try {
    const res = await guardedFetch(env, { timeoutMs: TIMEOUT_MS, maxBytes: MAX_BYTES })(url, { headers: { accept: 'application/json' } });
    return res.ok ? ((await res.json()) as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}


/** `name="value"` from a WWW-Authenticate Bearer challenge (RFC 6750 §3). */
const challengeParam = (header: string | null, name: string) => (header ? (new RegExp(`\\b${name}="([^"]*)"`).exec(header)?.[1] ?? null) : null);

/**
 * What an unauthenticated request to the server says (MCP authorization, "Protected Resource Metadata
 * Discovery"): the 401's WWW-Authenticate names the metadata URL (RFC 9728 §5.1) and may name the scope to ask.
 */
async function challengeOf(env: Env, mcpUrl: string): Promise<{ metadata: string | null; scope: string | null }> {
  try {
    // A 2026-07-28 server/discover: a protected server of either era answers it 401 before looking at the
    // method (a 2026-only server refuses a 2025 initialize with 400 before it would challenge).
    const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'chittyauth-gateway', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
    const res = await guardedFetch(env, { timeoutMs: TIMEOUT_MS, maxBytes: MAX_BYTES })(mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'server/discover' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'server/discover', params: { _meta: meta } }),
    });
    await res.body?.cancel();
    const header = res.status === 401 ? res.headers.get('www-authenticate') : null;
    return { metadata: challengeParam(header, 'resource_metadata'), scope: challengeParam(header, 'scope') };
  } catch {
    return { metadata: null, scope: null };
  }
}

/**
 * Discovers the upstream's authorization server and registers the gateway as its client, once per server.
 * `rediscover` (each time a user connects): discovery runs again, and a server that moved to another
 * authorization server gets a new registration there (SEP-2352: a registration belongs to the authorization
 * server that issued it, and is never sent to another).
 */
export async function upstreamClient(env: Env, db: DB, row: ServerRow, options: { rediscover?: boolean } = {}): Promise<UpstreamClient> {
  const known = await db.selectFrom('gateway_upstream_clients').selectAll().where('server_id', '=', row.id).executeTakeFirst();
  if (known && !options.rediscover) return known;

  // The metadata URL the server's own challenge names comes first, then the well-known URIs (path, then root).
  const challenge = await challengeOf(env, row.mcp_url);
  const fromChallenge = challenge.metadata && new URL(challenge.metadata).origin === new URL(row.mcp_url).origin ? await getJson(env, challenge.metadata) : null;
  const prm = fromChallenge ?? (await getJson(env, wellKnownUrl(row.mcp_url, 'oauth-protected-resource'))) ?? (await getJson(env, `${new URL(row.mcp_url).origin}/.well-known/oauth-protected-resource`));
  // RFC 9728 §3.3: the metadata must be about the server being connected to; metadata naming another resource
  // is refused (a server could otherwise send the user's authorization to someone else's audience).
  if (typeof prm?.resource === 'string' && !checkResourceAllowed({ requestedResource: row.mcp_url, configuredResource: prm.resource })) {
    throw new UpstreamAuthError(`the protected resource metadata of ${row.id} names ${prm.resource} as its resource, not ${row.mcp_url} (RFC 9728 §3.3)`);
  }
  const issuer = Array.isArray(prm?.authorization_servers) ? prm.authorization_servers[0] : null;
  if (typeof issuer !== 'string') throw new UpstreamAuthError(`${row.id} publishes no protected resource metadata naming an authorization server`);
  if (known && known.issuer === issuer) return known;
  if (known) await db.deleteFrom('gateway_upstream_clients').where('server_id', '=', row.id).execute();
  // RFC 8414 §3.1 (the well-known segment before the issuer's path), then OpenID Connect Discovery both ways
  // (inserted, and appended to the issuer's path as OIDC Discovery 1.0 §4 has it): MCP "Authorization Server Metadata Discovery".
  const appended = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const as =
    (await getJson(env, wellKnownUrl(issuer, 'oauth-authorization-server'))) ??
    (await getJson(env, wellKnownUrl(issuer, 'openid-configuration'))) ??
    (new URL(issuer).pathname !== '/' ? await getJson(env, appended) : null);
  // RFC 8414 §3.3: the metadata must be about the issuer it was fetched for.
  if (!as || as.issuer !== issuer || typeof as.authorization_endpoint !== 'string' || typeof as.token_endpoint !== 'string') {
    throw new UpstreamAuthError(`the authorization server of ${row.id} has no usable metadata`);
  }
  if (!(Array.isArray(as.code_challenge_methods_supported) && as.code_challenge_methods_supported.includes('S256'))) {
    throw new UpstreamAuthError(`the authorization server of ${row.id} does not support PKCE S256`);
  }
  const config = JSON.parse(row.auth_config) as { client_id?: string | null; scopes?: string[] | null };
  let clientId = config.client_id ?? null;
  let secretEncrypted: string | null = null;
  let method: UpstreamClient['auth_method'] = 'none';
  if (clientId) {
    if (row.auth_secret_encrypted) {
      secretEncrypted = await encrypt(env.ENCRYPTION_KEY, await decrypt(env.ENCRYPTION_KEY, row.auth_secret_encrypted, secretAad(row.id)), clientSecretAad(row.id));
      method = 'client_secret_basic';
    }
  } else if (as.client_id_metadata_document_supported === true) {
    // The upstream fetches who the gateway is from its document: nothing to register, nothing to store.
    clientId = gatewayClientId(env);
  } else {
    if (typeof as.registration_endpoint !== 'string') throw new UpstreamAuthError(`${row.id} needs a pre-registered OAuth client (its authorization server offers neither Client ID Metadata Documents nor registration)`);
    const res = await guardedFetch(env, { timeoutMs: TIMEOUT_MS, maxBytes: MAX_BYTES })(as.registration_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      // application_type: MCP 2025-11-25 (SEP-837) requires it; the gateway's callback is an https web redirect.
      body: JSON.stringify({ client_name: 'ChittyAuth gateway', application_type: 'web', redirect_uris: [callbackUrl(env)], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' }),
    });
    const reg = (await res.json().catch(() => null)) as { client_id?: string; client_secret?: string; token_endpoint_auth_method?: string } | null;
    if (res.status !== 201 && res.status !== 200) throw new UpstreamAuthError(`dynamic registration at ${row.id}'s authorization server failed (${res.status})`);
    if (!reg?.client_id) throw new UpstreamAuthError(`dynamic registration at ${row.id}'s authorization server returned no client_id`);
    clientId = reg.client_id;
    // RFC 7591 §3.2.1: the server may register a confidential client whatever was asked; use the method it chose.
    if (typeof reg.client_secret === 'string' && reg.client_secret) {
      secretEncrypted = await encrypt(env.ENCRYPTION_KEY, reg.client_secret, clientSecretAad(row.id));
      method = reg.token_endpoint_auth_method === 'client_secret_post' ? 'client_secret_post' : 'client_secret_basic';
    }
  }
  // The scope to ask: the admin's, else the one the server's challenge names, else all it supports (MCP "Scope Selection Strategy").
  const scopes = config.scopes ?? (challenge.scope ? challenge.scope.split(' ').filter(Boolean) : null) ?? (Array.isArray(prm?.scopes_supported) ? (prm.scopes_supported as string[]) : null);
  const client: UpstreamClient = {
    server_id: row.id,
    issuer,
    authorization_endpoint: as.authorization_endpoint,
    token_endpoint: as.token_endpoint,
    revocation_endpoint: typeof as.revocation_endpoint === 'string' ? as.revocation_endpoint : null,
    iss_supported: as.authorization_response_iss_parameter_supported === true ? 1 : 0,
    resource: typeof prm?.resource === 'string' ? prm.resource : row.mcp_url,
    scope: scopes?.join(' ') ?? null,
    client_id: clientId,
    client_secret_encrypted: secretEncrypted,
    auth_method: method,
    created_at: nowIso(),
  };
  await db.insertInto('gateway_upstream_clients').values(client).onConflict((oc) => oc.column('server_id').doNothing()).execute();
  return client;
}

/** The upstream authorization URL for this user; the state and PKCE verifier are kept, bound to the user. */
export async function startConnection(env: Env, db: DB, row: ServerRow, chittyId: string): Promise<string> {
  const client = await upstreamClient(env, db, row, { rediscover: true });
  const state = base64url.encode(crypto.getRandomValues(new Uint8Array(24)));
  const verifier = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  await db
    .insertInto('gateway_auth_states')
    .values({ state_hash: await sha256Hex(state), chitty_id: chittyId, server_id: row.id, code_verifier_encrypted: await encrypt(env.ENCRYPTION_KEY, verifier, `gateway-state:${row.id}:${chittyId}`), created_at: nowIso(), expires_at: isoIn(STATE_TTL_S), used_at: null })
    .execute();
  const url = new URL(client.authorization_endpoint);
  const params = { response_type: 'code', client_id: client.client_id, redirect_uri: callbackUrl(env), state, code_challenge: challenge, code_challenge_method: 'S256', resource: client.resource, ...(client.scope ? { scope: client.scope } : {}) };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

async function tokenRequest(env: Env, client: UpstreamClient, form: Record<string, string>) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const body = new URLSearchParams({ ...form, resource: client.resource });
  if (client.auth_method === 'none') body.set('client_id', client.client_id);
  else {
    const secret = await decrypt(env.ENCRYPTION_KEY, client.client_secret_encrypted!, clientSecretAad(client.server_id));
    if (client.auth_method === 'client_secret_basic') headers.authorization = `Basic ${btoa(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(secret)}`)}`;
    else {
      body.set('client_id', client.client_id);
      body.set('client_secret', secret);
    }
  }
  const res = await guardedFetch(env, { timeoutMs: TIMEOUT_MS, maxBytes: MAX_BYTES })(client.token_endpoint, { method: 'POST', headers, body: body.toString() });
  const json = (await res.json().catch(() => null)) as { access_token?: string; refresh_token?: string; expires_in?: number; scope?: string; error?: string } | null;
  if (!res.ok || !json?.access_token) throw new UpstreamAuthError(`the upstream token endpoint refused (${json?.error ?? res.status})`);
  return json;
}

async function storeTokens(env: Env, db: DB, serverId: string, chittyId: string, t: { access_token?: string; refresh_token?: string; expires_in?: number; scope?: string }, previousRefresh: string | null) {
  forgetToken(chittyId, serverId);
  const now = nowIso();
  const values = {
    status: 'connected' as const,
    access_token_encrypted: await encrypt(env.ENCRYPTION_KEY, t.access_token!, tokenAad(serverId, chittyId, 'access')),
    refresh_token_encrypted: t.refresh_token || previousRefresh ? await encrypt(env.ENCRYPTION_KEY, (t.refresh_token ?? previousRefresh)!, tokenAad(serverId, chittyId, 'refresh')) : null,
    expires_at: typeof t.expires_in === 'number' ? isoIn(t.expires_in) : null,
    scope: t.scope ?? null,
    refreshing_until: null,
    updated_at: now,
  };
  await db
    .insertInto('gateway_connections')
    .values({ chitty_id: chittyId, server_id: serverId, created_at: now, ...values })
    .onConflict((oc) => oc.columns(['chitty_id', 'server_id']).doUpdateSet(values))
    .execute();
}

/**
 * The upstream's answer at /gw/callback. The state must be one we issued, unused, unexpired and the
 * current user's (RFC 9700 §4.7); `iss` must be the upstream's issuer (RFC 9207).
 */
export async function finishConnection(env: Env, db: DB, chittyId: string, params: URLSearchParams): Promise<string> {
  const state = params.get('state');
  if (!state) throw new UpstreamAuthError('the callback has no state');
  const hash = await sha256Hex(state);
  const row = await db.selectFrom('gateway_auth_states').selectAll().where('state_hash', '=', hash).executeTakeFirst();
  if (!row || row.chitty_id !== chittyId) throw new UpstreamAuthError('this connection was not started by you (unknown state)');
  const claimed = await db.updateTable('gateway_auth_states').set({ used_at: nowIso() }).where('state_hash', '=', hash).where('used_at', 'is', null).executeTakeFirst();
  if (Number(claimed.numUpdatedRows) !== 1) throw new UpstreamAuthError('this authorization response was already used');
  if (row.expires_at < nowIso()) throw new UpstreamAuthError('the connection attempt expired; start again');
  const client = await db.selectFrom('gateway_upstream_clients').selectAll().where('server_id', '=', row.server_id).executeTakeFirstOrThrow();
  const iss = params.get('iss');
  if ((iss !== null || client.iss_supported) && iss !== client.issuer) throw new UpstreamAuthError('the response did not come from the upstream’s authorization server (iss)');
  const error = params.get('error');
  if (error) throw new UpstreamAuthError(`the upstream refused: ${error}`);
  const code = params.get('code');
  if (!code) throw new UpstreamAuthError('the callback has no code');
  const verifier = await decrypt(env.ENCRYPTION_KEY, row.code_verifier_encrypted, `gateway-state:${row.server_id}:${chittyId}`);
  const tokens = await tokenRequest(env, client, { grant_type: 'authorization_code', code, redirect_uri: callbackUrl(env), code_verifier: verifier });
  await storeTokens(env, db, row.server_id, chittyId, tokens, null);
  return row.server_id;
}

/**
 * Current access tokens, decrypted, kept in the isolate's memory for a few seconds so that a call does not
 * read D1 for them; never past the point where they would be refreshed. Changes made in this isolate (new
 * tokens, reconnect needed, disconnect) drop the entry; a token ended elsewhere comes back as a 401 from
 * the upstream, and that path always reads D1.
 */
const TOKEN_CACHE_MS = 10_000;
const tokenCache = new Map<string, { token: string; until: number }>();
const tokenKey = (chittyId: string, serverId: string) => `${chittyId}\u0000${serverId}`;
const forgetToken = (chittyId: string, serverId: string) => tokenCache.delete(tokenKey(chittyId, serverId));

export const findConnection = (db: DB, chittyId: string, serverId: string) =>
  db.selectFrom('gateway_connections').selectAll().where('chitty_id', '=', chittyId).where('server_id', '=', serverId).executeTakeFirst();

/**
 * Step-up (MCP authorization, "Scope Challenge Handling"): the upstream answered 403 insufficient_scope naming
 * the scopes the call needs. They join the scopes the gateway asks this server for, so the user's next connect
 * (they are asked to connect again) requests them.
 */
export async function stepUpScope(db: DB, serverId: string, challenge: string | null): Promise<string[]> {
  const needed = (challengeParam(challenge, 'scope') ?? '').split(' ').filter(Boolean);
  const client = await db.selectFrom('gateway_upstream_clients').select('scope').where('server_id', '=', serverId).executeTakeFirst();
  if (!client || needed.length === 0) return needed;
  const scope = [...new Set([...(client.scope ?? '').split(' ').filter(Boolean), ...needed])].join(' ');
  await db.updateTable('gateway_upstream_clients').set({ scope }).where('server_id', '=', serverId).execute();
  return needed;
}

export async function markNeedsReconnect(db: DB, chittyId: string, serverId: string) {
  forgetToken(chittyId, serverId);
  await db.updateTable('gateway_connections').set({ status: 'needs_reconnect', refreshing_until: null, updated_at: nowIso() }).where('chitty_id', '=', chittyId).where('server_id', '=', serverId).execute();
}

/**
 * A current upstream access token for the user, refreshed when about to expire; null means: (re)connect.
 * `rejected`: a token the upstream just refused (401) although it had not expired by our clock; it is
 * refreshed unless another request already replaced it.
 */
export async function upstreamAccessToken(env: Env, db: DB, serverId: string, chittyId: string, rejected?: string): Promise<string | null> {
  const cached = tokenCache.get(tokenKey(chittyId, serverId));
  if (cached && cached.until > Date.now() && cached.token !== rejected) return cached.token;
  for (let attempt = 0; attempt < 20; attempt++) {
    const c = await findConnection(db, chittyId, serverId);
    if (!c || c.status !== 'connected' || !c.access_token_encrypted) return null;
    const current = await decrypt(env.ENCRYPTION_KEY, c.access_token_encrypted, tokenAad(serverId, chittyId, 'access'));
    const refused = rejected !== undefined && current === rejected;
    const fresh = !refused && (!c.expires_at || Date.parse(c.expires_at) - Date.now() > REFRESH_MARGIN_MS);
    if (fresh) {
      const until = Math.min(Date.now() + TOKEN_CACHE_MS, c.expires_at ? Date.parse(c.expires_at) - REFRESH_MARGIN_MS : Number.POSITIVE_INFINITY);
      if (tokenCache.size >= 10_000) tokenCache.clear();
      tokenCache.set(tokenKey(chittyId, serverId), { token: current, until });
      return current;
    }
    if (!c.refresh_token_encrypted) return !refused && Date.parse(c.expires_at!) > Date.now() ? current : null;
    // One refresh at a time: whoever sets the lock refreshes, the others wait for its result.
    const lock = await db
      .updateTable('gateway_connections')
      .set({ refreshing_until: isoIn(REFRESH_LOCK_S) })
      .where('chitty_id', '=', chittyId)
      .where('server_id', '=', serverId)
      .where((eb) => eb.or([eb('refreshing_until', 'is', null), eb('refreshing_until', '<', nowIso())]))
      .executeTakeFirst();
    if (Number(lock.numUpdatedRows) === 1) {
      const refresh = await decrypt(env.ENCRYPTION_KEY, c.refresh_token_encrypted, tokenAad(serverId, chittyId, 'refresh'));
      try {
        const client = await db.selectFrom('gateway_upstream_clients').selectAll().where('server_id', '=', serverId).executeTakeFirstOrThrow();
        const tokens = await tokenRequest(env, client, { grant_type: 'refresh_token', refresh_token: refresh });
        await storeTokens(env, db, serverId, chittyId, tokens, refresh);
        return tokens.access_token!;
      } catch {
        await markNeedsReconnect(db, chittyId, serverId);
        return null;
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

/** Forget a connection, revoking its tokens at the upstream where it offers revocation (RFC 7009). */
export async function disconnect(env: Env, db: DB, chittyId: string, serverId: string): Promise<{ revoked_upstream: boolean }> {
  const c = await findConnection(db, chittyId, serverId);
  if (!c) return { revoked_upstream: false };
  const client = await db.selectFrom('gateway_upstream_clients').selectAll().where('server_id', '=', serverId).executeTakeFirst();
  let revoked = false;
  if (client?.revocation_endpoint) {
    for (const [enc, kind] of [[c.refresh_token_encrypted, 'refresh'], [c.access_token_encrypted, 'access']] as const) {
      if (!enc) continue;
      try {
        const token = await decrypt(env.ENCRYPTION_KEY, enc, tokenAad(serverId, chittyId, kind));
        const res = await guardedFetch(env, { timeoutMs: TIMEOUT_MS, maxBytes: MAX_BYTES })(client.revocation_endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token, client_id: client.client_id }).toString(),
        });
        revoked ||= res.ok;
      } catch {
        /* the connection is forgotten here either way */
      }
    }
  }
  await db.deleteFrom('gateway_connections').where('chitty_id', '=', chittyId).where('server_id', '=', serverId).execute();
  forgetToken(chittyId, serverId);
  return { revoked_upstream: revoked };
}

