-- Cross-device sync (issue 6): a user's devices, the credentials issued to them, per-server state documents
-- with their recent revisions and a change log, and which servers and devices each session spans.

CREATE TABLE devices (
  id TEXT PRIMARY KEY,                       -- dev_…
  chitty_id TEXT NOT NULL REFERENCES identities (chitty_id),
  name TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('claude_desktop', 'web', 'mobile', 'cli', 'other')),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  removed_at TEXT                            -- set once; a removed device is never used again
);
CREATE INDEX devices_owner ON devices (chitty_id, removed_at);

-- The device a credential was issued to (NULL: none). Removing the device revokes them.
ALTER TABLE sessions ADD COLUMN device_id TEXT REFERENCES devices (id);
ALTER TABLE api_keys ADD COLUMN device_id TEXT REFERENCES devices (id);
CREATE INDEX sessions_device ON sessions (device_id) WHERE device_id IS NOT NULL;
CREATE INDEX api_keys_device ON api_keys (device_id) WHERE device_id IS NOT NULL;

-- The current state document of a (ChittyID, MCP server): a JSON object and its revision (1, 2, …).
CREATE TABLE sync_documents (
  chitty_id TEXT NOT NULL REFERENCES identities (chitty_id),
  server_id TEXT NOT NULL,
  revision INTEGER NOT NULL,
  document TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  updated_by_device TEXT,
  PRIMARY KEY (chitty_id, server_id)
);

-- Recent revisions of each document (the newest 100), the bases a push can be merged against.
CREATE TABLE sync_revisions (
  chitty_id TEXT NOT NULL,
  server_id TEXT NOT NULL,
  revision INTEGER NOT NULL,
  document TEXT NOT NULL,
  PRIMARY KEY (chitty_id, server_id, revision)
);

-- Every change, in order per user: what a device that comes online pulls since its cursor (seq).
CREATE TABLE sync_changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  chitty_id TEXT NOT NULL,
  server_id TEXT NOT NULL,
  revision INTEGER NOT NULL,
  fields TEXT NOT NULL,                      -- JSON array of the top-level fields this revision changed
  device_id TEXT,
  at TEXT NOT NULL
);
CREATE INDEX sync_changes_owner ON sync_changes (chitty_id, seq);

-- sync_session: the MCP servers and devices a session spans.
CREATE TABLE sync_sessions (
  session_id TEXT PRIMARY KEY REFERENCES sessions (id),
  chitty_id TEXT NOT NULL,
  servers TEXT NOT NULL,                     -- JSON array of server ids
  devices TEXT NOT NULL,                     -- JSON array of device ids
  updated_at TEXT NOT NULL
);
CREATE INDEX sync_sessions_owner ON sync_sessions (chitty_id);
