-- MCP portal: the registry of MCP servers and who may use them. docs/storage.md documents every table.

CREATE TABLE mcp_servers (
  id                    TEXT PRIMARY KEY,          -- chosen at registration, e.g. chittymcp-universal
  name                  TEXT NOT NULL,
  description           TEXT,
  version               TEXT,
  mcp_url               TEXT NOT NULL,
  health_url            TEXT,
  oauth_callback_url    TEXT,
  transport             TEXT NOT NULL,             -- streamable-http | sse
  auth_type             TEXT NOT NULL,             -- none | header | oauth | oauth_client
  auth_config           TEXT NOT NULL,             -- JSON, nothing secret (header name, scopes, client_id, issuer)
  auth_secret_encrypted TEXT,                      -- AES-256-GCM: the header value or the client secret
  tags                  TEXT NOT NULL,             -- JSON array
  owner                 TEXT NOT NULL,             -- ChittyID that registered it
  status                TEXT NOT NULL,             -- unknown | ready | unauthorized | error | unreachable
  status_detail         TEXT,
  latency_ms            INTEGER,
  protocol_version      TEXT,
  capabilities          TEXT,                      -- JSON, from initialize
  tools                 TEXT,                      -- JSON, the last tools/list
  checked_at            TEXT,
  created_at            TEXT NOT NULL,
  updated_at            TEXT NOT NULL
);

CREATE TABLE mcp_server_access (
  server_id TEXT NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
  action    TEXT NOT NULL,                          -- view | connect | call | admin
  role      TEXT NOT NULL,
  PRIMARY KEY (server_id, action, role)
);

CREATE TABLE mcp_tool_policies (
  id           TEXT PRIMARY KEY,                    -- tpl_…
  server_id    TEXT NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
  tool         TEXT NOT NULL,
  subject_type TEXT NOT NULL,                       -- role | chitty_id
  subject      TEXT NOT NULL,
  effect       TEXT NOT NULL,                       -- allow | deny
  created_at   TEXT NOT NULL
);
CREATE INDEX mcp_tool_policies_by_server ON mcp_tool_policies (server_id, tool);

CREATE TABLE mcp_server_preferences (
  chitty_id  TEXT NOT NULL,
  server_id  TEXT NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
  enabled    INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (chitty_id, server_id)
);
