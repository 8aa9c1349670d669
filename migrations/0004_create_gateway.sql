-- Gateway: the gateway as an OAuth client of upstream MCP servers. docs/storage.md documents every table.

CREATE TABLE gateway_upstream_clients (
  server_id               TEXT PRIMARY KEY REFERENCES mcp_servers (id) ON DELETE CASCADE,
  issuer                  TEXT NOT NULL,
  authorization_endpoint  TEXT NOT NULL,
  token_endpoint          TEXT NOT NULL,
  revocation_endpoint     TEXT,
  iss_supported           INTEGER NOT NULL,        -- the AS sends iss on authorization responses (RFC 9207)
  resource                TEXT NOT NULL,           -- the upstream's resource identifier (RFC 8707)
  scope                   TEXT,
  client_id               TEXT NOT NULL,
  client_secret_encrypted TEXT,                    -- AES-256-GCM; NULL for a public client
  auth_method             TEXT NOT NULL,           -- none | client_secret_basic | client_secret_post
  created_at              TEXT NOT NULL
);

CREATE TABLE gateway_auth_states (
  state_hash              TEXT PRIMARY KEY,        -- SHA-256 of the state parameter
  chitty_id               TEXT NOT NULL,           -- bound to the user who started the connection
  server_id               TEXT NOT NULL,
  code_verifier_encrypted TEXT NOT NULL,
  created_at              TEXT NOT NULL,
  expires_at              TEXT NOT NULL,
  used_at                 TEXT
);

CREATE TABLE gateway_connections (
  chitty_id               TEXT NOT NULL,
  server_id               TEXT NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
  status                  TEXT NOT NULL,           -- connected | needs_reconnect
  access_token_encrypted  TEXT,
  refresh_token_encrypted TEXT,
  expires_at              TEXT,
  scope                   TEXT,
  refreshing_until        TEXT,                    -- one refresh at a time per connection
  created_at              TEXT NOT NULL,
  updated_at              TEXT NOT NULL,
  PRIMARY KEY (chitty_id, server_id)
);
