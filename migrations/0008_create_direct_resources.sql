-- Direct resources: MCP servers registered in the portal that ChittyAuth protects directly, as their
-- authorization server (issue 20). Tokens for them carry aud = one of their canonical resource URLs.
-- docs/storage.md documents every table.

CREATE TABLE mcp_server_direct (
  server_id               TEXT PRIMARY KEY REFERENCES mcp_servers (id) ON DELETE CASCADE,
  introspection_client_id TEXT,                    -- the resource server's own OAuth client (RFC 7662), or NULL
  created_at              TEXT NOT NULL,
  updated_at              TEXT NOT NULL
);

CREATE TABLE mcp_server_resources (
  resource   TEXT PRIMARY KEY,                     -- canonical (RFC 8707 / RFC 9728): lowercase scheme+host, no fragment, no query, no trailing slash
  server_id  TEXT NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
  created_at TEXT NOT NULL
);
CREATE INDEX mcp_server_resources_by_server ON mcp_server_resources (server_id);

CREATE TABLE mcp_server_scopes (
  server_id   TEXT NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
  scope       TEXT NOT NULL,                       -- an RFC 6749 §3.3 scope-token the server defines
  description TEXT,
  action      TEXT NOT NULL,                       -- the portal action a user needs for it: connect | call | admin
  is_default  INTEGER NOT NULL,                    -- granted when a client asks for no scope
  PRIMARY KEY (server_id, scope)
);
