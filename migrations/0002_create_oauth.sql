-- OAuth 2.1 authorization server. docs/storage.md documents every table.

CREATE TABLE oauth_clients (
  client_id                  TEXT PRIMARY KEY,     -- cli_… (registered) or the https URL of a Client ID Metadata Document
  kind                       TEXT NOT NULL,        -- preregistered | dynamic | metadata_document
  client_secret_hash         TEXT,                 -- SHA-256, NULL for public clients
  client_name                TEXT NOT NULL,
  redirect_uris              TEXT NOT NULL,        -- JSON array, matched exactly (loopback: any port)
  grant_types                TEXT NOT NULL,        -- JSON array
  token_endpoint_auth_method TEXT NOT NULL,        -- none | client_secret_basic | client_secret_post
  scope                      TEXT,                 -- space-separated scopes the client may request; NULL = any supported
  client_uri                 TEXT,
  logo_uri                   TEXT,
  chitty_id                  TEXT,                 -- the client's own identity (type APP), for client_credentials
  created_by                 TEXT,                 -- ChittyID of the admin who pre-registered it
  created_at                 TEXT NOT NULL,
  updated_at                 TEXT NOT NULL,
  expires_at                 TEXT,                 -- dynamic registrations that are never used expire
  last_used_at               TEXT
);

CREATE TABLE oauth_grants (
  id                      TEXT PRIMARY KEY,        -- gnt_…: one user's authorization of one client for one resource
  client_id               TEXT NOT NULL,
  chitty_id               TEXT,                    -- NULL for client_credentials
  scope                   TEXT NOT NULL,
  resource                TEXT NOT NULL,
  refresh_hash            TEXT UNIQUE,             -- SHA-256 of the current refresh token
  previous_refresh_hash   TEXT,                    -- the token it replaced, accepted only during the grace period
  next_refresh_encrypted  TEXT,                    -- the current token, AES-GCM, returned to a retry of the previous one within the grace period
  rotated_at              TEXT,
  created_at              TEXT NOT NULL,
  last_used_at            TEXT,
  expires_at              TEXT NOT NULL,
  revoked_at              TEXT,
  revoked_reason          TEXT
);
CREATE INDEX oauth_grants_by_subject ON oauth_grants (chitty_id, id);
CREATE INDEX oauth_grants_by_previous ON oauth_grants (previous_refresh_hash);

CREATE TABLE oauth_codes (
  code_hash      TEXT PRIMARY KEY,                 -- SHA-256 of the authorization code
  grant_id       TEXT NOT NULL,
  client_id      TEXT NOT NULL,
  redirect_uri   TEXT NOT NULL,
  code_challenge TEXT NOT NULL,                    -- S256 only
  created_at     TEXT NOT NULL,
  expires_at     TEXT NOT NULL,
  used_at        TEXT
);

CREATE TABLE oauth_consents (
  chitty_id  TEXT NOT NULL,
  client_id  TEXT NOT NULL,
  resource   TEXT NOT NULL,
  scope      TEXT NOT NULL,                        -- space-separated, what the user approved
  created_at TEXT NOT NULL,
  PRIMARY KEY (chitty_id, client_id, resource)
);

CREATE TABLE rate_limits (
  key          TEXT PRIMARY KEY,                   -- e.g. register:<ip>:<window>
  count        INTEGER NOT NULL,
  window_ends  TEXT NOT NULL
);
