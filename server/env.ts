/** Bindings, vars and secrets of the Worker. See README "Configuration". */
export interface Env {
  DB: D1Database;
  ASSETS?: Fetcher;
  /** 'development' relaxes cookie and URL rules for plain-http loopback; anything else is production. */
  ENVIRONMENT?: string;
  /** The issuer and base URL, e.g. https://auth.example.com (no trailing slash). */
  ISSUER: string;
  /** Secret: key material for AES-256-GCM encryption at rest (any high-entropy string, 32+ bytes). */
  ENCRYPTION_KEY: string;
  /** Secret: one-time token that allows creating the first admin (accounts.bootstrap). */
  SETUP_TOKEN?: string;
  /** Session lifetime in seconds (default 3600). */
  SESSION_TIMEOUT?: string;
  /** When set, ChittyIDs are minted and validated by this external authority; local minting is off. */
  CHITTYID_ENDPOINT?: string;
  /** Secret: bearer credential for the external ChittyID authority, if it requires one. */
  CHITTYID_API_KEY?: string;
  /** Cloudflare Access team domain, e.g. https://myteam.cloudflareaccess.com (portal sign-in). */
  CF_ACCESS_TEAM_DOMAIN?: string;
  /** Cloudflare Access application audience (AUD) tag. */
  CF_ACCESS_AUD?: string;
  /** Parent domain of the gateway's hostname routes: {base32(upstream domain)}-enc.{GATEWAY_DOMAIN}. */
  GATEWAY_DOMAIN?: string;
  /** Durable Object namespace of the per-user sync hubs (live updates for GET /v1/sync/stream). */
  SYNC_HUB: DurableObjectNamespace;
  /** Milliseconds between keep-alive comments on a sync stream (default 25000). */
  SYNC_HEARTBEAT_MS?: string;
  /** Durable Object namespace of the per-user hubs of MCP WebSocket connections (GET /mcp with Upgrade: websocket). */
  MCP_SOCKETS: DurableObjectNamespace;
  /** Seconds between heartbeat pings on WebSocket connections: the gateway's tunnels and /mcp (default 30). */
  GATEWAY_WS_HEARTBEAT_SECONDS?: string;
  /** Extra browser origins allowed to call /mcp (space or comma separated). */
  ALLOWED_ORIGINS?: string;
}
