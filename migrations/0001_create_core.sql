-- ChittyAuth core schema. Every table is documented in docs/storage.md.
-- Times are ISO-8601 UTC strings (they sort lexicographically); secrets are never stored in plaintext.

CREATE TABLE identities (
  chitty_id    TEXT PRIMARY KEY,              -- CHITTY-{TYPE}-{ID}-{CHECK}
  type         TEXT NOT NULL,
  display_name TEXT,
  status       TEXT NOT NULL DEFAULT 'active', -- active | disabled
  authority    TEXT NOT NULL,                  -- 'local' or the external authority's origin
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL
);

CREATE TABLE accounts (
  chitty_id       TEXT PRIMARY KEY REFERENCES identities (chitty_id),
  username        TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash   TEXT NOT NULL,                -- pbkdf2-sha256$iterations$salt$hash
  failed_attempts INTEGER NOT NULL DEFAULT 0,
  locked_until    TEXT,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL
);

CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,                -- key_...
  chitty_id    TEXT NOT NULL REFERENCES identities (chitty_id),
  name         TEXT NOT NULL,
  prefix       TEXT NOT NULL,                   -- first characters of the secret, for recognition
  secret_hash  TEXT NOT NULL UNIQUE,            -- SHA-256 of the secret, hex
  scopes       TEXT NOT NULL,                   -- JSON array
  created_by   TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  expires_at   TEXT,
  last_used_at TEXT,
  revoked_at   TEXT
);
CREATE INDEX api_keys_by_owner ON api_keys (chitty_id, id);

CREATE TABLE signing_keys (
  kid                   TEXT PRIMARY KEY,
  alg                   TEXT NOT NULL,
  public_jwk            TEXT NOT NULL,          -- JSON
  private_jwk_encrypted TEXT NOT NULL,          -- AES-256-GCM, see server/crypto/encryption.ts
  status                TEXT NOT NULL,          -- active | retired
  created_at            TEXT NOT NULL,
  retired_at            TEXT,
  verify_until          TEXT                    -- published in the JWKS until then
);

CREATE TABLE grants (
  id         TEXT PRIMARY KEY,                  -- grt_...
  chitty_id  TEXT NOT NULL REFERENCES identities (chitty_id),
  role       TEXT,
  permission TEXT,
  granted_by TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT,
  CHECK ((role IS NULL) <> (permission IS NULL))
);
CREATE INDEX grants_by_subject ON grants (chitty_id);

CREATE TABLE sessions (
  id           TEXT PRIMARY KEY,                -- ses_...
  chitty_id    TEXT NOT NULL REFERENCES identities (chitty_id),
  device_name  TEXT,
  user_agent   TEXT,
  ip           TEXT,
  client       TEXT,
  created_at   TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  expires_at   TEXT NOT NULL,
  revoked_at   TEXT
);
CREATE INDEX sessions_by_subject ON sessions (chitty_id, id);

CREATE TABLE audit_events (
  seq       INTEGER PRIMARY KEY,                -- assigned by the writer: last + 1 (a gap means a deleted row)
  id        TEXT NOT NULL UNIQUE,
  at        TEXT NOT NULL,
  actor     TEXT NOT NULL,
  action    TEXT NOT NULL,
  target    TEXT,
  door      TEXT NOT NULL,
  outcome   TEXT NOT NULL,
  detail    TEXT NOT NULL,                      -- JSON, never secrets
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
);
CREATE INDEX audit_events_by_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_by_action ON audit_events (action, seq);
