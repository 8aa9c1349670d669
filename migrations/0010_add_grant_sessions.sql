-- Issue 20: an OAuth grant approved in the browser remembers the sign-in session that approved it, so removing
-- the device that session belongs to also revokes the grant (and the MCP client's tokens with it).
-- NULL for grants no session approved (client_credentials, ID-JAG) and for grants made before this migration.
-- docs/storage.md documents every table.

ALTER TABLE oauth_grants ADD COLUMN session_id TEXT;   -- sessions.id of the approving session, or NULL
CREATE INDEX oauth_grants_by_session ON oauth_grants (session_id) WHERE session_id IS NOT NULL;
