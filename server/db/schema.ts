import { Kysely, type CompiledQuery, type Generated } from 'kysely';
import { D1Dialect } from 'kysely-d1';
import { invalidateOnWrite } from './cache';

/** Row types of migrations/*.sql. docs/storage.md explains each table. */
export interface IdentitiesTable {
  chitty_id: string;
  type: string;
  display_name: string | null;
  status: 'active' | 'disabled';
  authority: string;
  created_at: string;
  updated_at: string;
}

export interface AccountsTable {
  chitty_id: string;
  username: string;
  password_hash: string;
  failed_attempts: number;
  locked_until: string | null;
  created_at: string;
  updated_at: string;
}

export interface ApiKeysTable {
  id: string;
  chitty_id: string;
  name: string;
  prefix: string;
  secret_hash: string;
  scopes: string;
  created_by: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  device_id?: string | null;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: string;
  private_jwk_encrypted: string;
  status: 'active' | 'retired';
  created_at: string;
  retired_at: string | null;
  verify_until: string | null;
}

export interface GrantsTable {
  id: string;
  chitty_id: string;
  role: string | null;
  permission: string | null;
  granted_by: string;
  created_at: string;
  expires_at: string | null;
}

export interface SessionsTable {
  id: string;
  chitty_id: string;
  device_name: string | null;
  user_agent: string | null;
  ip: string | null;
  client: string | null;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  revoked_at: string | null;
  device_id?: string | null;
}

export interface AuditEventsTable {
  seq: number;
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  door: string;
  outcome: string;
  detail: string;
  prev_hash: string;
  hash: string;
}

export type DeviceType = 'claude_desktop' | 'web' | 'mobile' | 'cli' | 'other';

export interface DevicesTable {
  id: string;
  chitty_id: string;
  name: string;
  type: DeviceType;
  created_at: string;
  updated_at: string;
  removed_at: string | null;
}

export interface SyncDocumentsTable {
  chitty_id: string;
  server_id: string;
  revision: number;
  document: string;
  updated_at: string;
  updated_by_device: string | null;
}

export interface SyncRevisionsTable {
  chitty_id: string;
  server_id: string;
  revision: number;
  document: string;
}

export interface SyncChangesTable {
  seq: Generated<number>;
  chitty_id: string;
  server_id: string;
  revision: number;
  fields: string;
  device_id: string | null;
  at: string;
}

export interface SyncSessionsTable {
  session_id: string;
  chitty_id: string;
  servers: string;
  devices: string;
  updated_at: string;
}

export interface SyncDatabase {
  devices: DevicesTable;
  sync_documents: SyncDocumentsTable;
  sync_revisions: SyncRevisionsTable;
  sync_changes: SyncChangesTable;
  sync_sessions: SyncSessionsTable;
}

export interface Database extends OAuthDatabase, PortalDatabase, GatewayDatabase, SyncDatabase {
  identities: IdentitiesTable;
  accounts: AccountsTable;
  api_keys: ApiKeysTable;
  signing_keys: SigningKeysTable;
  grants: GrantsTable;
  sessions: SessionsTable;
  audit_events: AuditEventsTable;
}

export type DB = Kysely<Database>;

const instances = new WeakMap<D1Database, DB>();
const bindings = new WeakMap<DB, D1Database>();

/** One Kysely instance per D1 binding (per isolate). Writes through it keep the isolate caches (db/cache.ts) fresh. */
export function getDb(d1: D1Database): DB {
  let db = instances.get(d1);
  if (!db) {
    db = new Kysely<Database>({ dialect: new D1Dialect({ database: d1 }), plugins: [invalidateOnWrite] });
    instances.set(d1, db);
    bindings.set(db, d1);
  }
  return db;
}

/** The D1 binding behind a Kysely instance from getDb, for what Kysely cannot say (D1 batches). */
export const d1Of = (db: DB): D1Database | undefined => bindings.get(db);

/** Runs read queries in one D1 round trip (a batch: one snapshot) and returns each one's rows, in order. */
export async function readTogether(db: DB, queries: CompiledQuery[]): Promise<unknown[][]> {
  const d1 = d1Of(db);
  if (!d1) return Promise.all(queries.map(async (q) => (await db.executeQuery(q)).rows as unknown[]));
  const results = await d1.batch(queries.map((q) => d1.prepare(q.sql).bind(...q.parameters)));
  return results.map((r) => r.results ?? []);
}

/** SQLite constraint failures surface as errors whose message names the constraint. */
export const isUniqueViolation = (error: unknown): boolean =>
  error instanceof Error && /UNIQUE constraint failed|PRIMARY KEY/i.test(`${error.message} ${String((error as { cause?: unknown }).cause ?? '')}`);

export interface OAuthClientsTable {
  client_id: string;
  kind: 'preregistered' | 'dynamic' | 'metadata_document';
  client_secret_hash: string | null;
  client_name: string;
  redirect_uris: string;
  grant_types: string;
  token_endpoint_auth_method: 'none' | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  scope: string | null;
  client_uri: string | null;
  logo_uri: string | null;
  chitty_id: string | null;
  created_by: string | null;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  /** JSON JWK Set (public keys), for private_key_jwt. */
  jwks: string | null;
  jwks_uri: string | null;
  token_endpoint_auth_signing_alg: string | null;
}

export interface OAuthTrustedIdpsTable {
  id: string;
  issuer: string;
  jwks: string | null;
  jwks_uri: string | null;
  client_ids: string;
  account_claim: 'email' | 'sub' | 'preferred_username';
  scope: string | null;
  created_by: string;
  created_at: string;
}

export interface OAuthIdJagJtisTable {
  issuer: string;
  jti: string;
  expires_at: string;
}

export interface OAuthClientAssertionsTable {
  client_id: string;
  jti: string;
  expires_at: string;
}

export interface OAuthGrantsTable {
  id: string;
  client_id: string;
  chitty_id: string | null;
  scope: string;
  resource: string;
  refresh_hash: string | null;
  previous_refresh_hash: string | null;
  next_refresh_encrypted: string | null;
  rotated_at: string | null;
  created_at: string;
  last_used_at: string | null;
  expires_at: string;
  revoked_at: string | null;
  revoked_reason: string | null;
  /** The sign-in session that approved the grant at /oauth/authorize; null when none did (client_credentials, ID-JAG). */
  session_id: string | null;
}

export interface OAuthCodesTable {
  code_hash: string;
  grant_id: string;
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface OAuthConsentsTable {
  chitty_id: string;
  client_id: string;
  resource: string;
  scope: string;
  created_at: string;
}

export interface RateLimitsTable {
  key: string;
  count: number;
  window_ends: string;
}

export interface OAuthDatabase {
  oauth_clients: OAuthClientsTable;
  oauth_grants: OAuthGrantsTable;
  oauth_codes: OAuthCodesTable;
  oauth_consents: OAuthConsentsTable;
  oauth_client_assertions: OAuthClientAssertionsTable;
  oauth_trusted_idps: OAuthTrustedIdpsTable;
  oauth_id_jag_jtis: OAuthIdJagJtisTable;
  rate_limits: RateLimitsTable;
}

export interface McpServersTable {
  id: string;
  name: string;
  description: string | null;
  version: string | null;
  mcp_url: string;
  health_url: string | null;
  oauth_callback_url: string | null;
  transport: 'streamable-http' | 'sse';
  auth_type: 'none' | 'header' | 'oauth';
  auth_config: string;
  auth_secret_encrypted: string | null;
  tags: string;
  owner: string;
  status: 'unknown' | 'ready' | 'unauthorized' | 'error' | 'unreachable';
  status_detail: string | null;
  latency_ms: number | null;
  protocol_version: string | null;
  capabilities: string | null;
  tools: string | null;
  checked_at: string | null;
  /** Gateway rate limits (migration 0005); NULL: the default. */
  rate_limit_user: number | null;
  rate_limit_user_window_s: number | null;
  rate_limit_server: number | null;
  rate_limit_server_window_s: number | null;
  created_at: string;
  updated_at: string;
}

export interface PortalDatabase {
  mcp_servers: McpServersTable;
  mcp_server_access: { server_id: string; action: string; role: string };
  mcp_tool_policies: { id: string; server_id: string; tool: string; subject_type: string; subject: string; effect: string; created_at: string };
  mcp_server_preferences: { chitty_id: string; server_id: string; enabled: number; updated_at: string };
  /** Direct resources (migration 0008): servers ChittyAuth is the authorization server of. */
  mcp_server_direct: { server_id: string; introspection_client_id: string | null; created_at: string; updated_at: string };
  mcp_server_resources: { resource: string; server_id: string; created_at: string };
  mcp_server_scopes: { server_id: string; scope: string; description: string | null; action: 'connect' | 'call' | 'admin'; is_default: number };
}

export interface GatewayDatabase {
  gateway_upstream_clients: {
    server_id: string;
    issuer: string;
    authorization_endpoint: string;
    token_endpoint: string;
    revocation_endpoint: string | null;
    iss_supported: number;
    resource: string;
    scope: string | null;
    client_id: string;
    client_secret_encrypted: string | null;
    auth_method: 'none' | 'client_secret_basic' | 'client_secret_post';
    created_at: string;
  };
  gateway_auth_states: { state_hash: string; chitty_id: string; server_id: string; code_verifier_encrypted: string; created_at: string; expires_at: string; used_at: string | null };
  gateway_connections: {
    chitty_id: string;
    server_id: string;
    status: 'connected' | 'needs_reconnect';
    access_token_encrypted: string | null;
    refresh_token_encrypted: string | null;
    expires_at: string | null;
    scope: string | null;
    refreshing_until: string | null;
    created_at: string;
    updated_at: string;
  };
}
