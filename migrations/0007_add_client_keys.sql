-- private_key_jwt client authentication (RFC 7523 §2.2, OpenID Connect Core §9). docs/storage.md documents every table.

-- A registered client's public keys: an inline JWK Set, or the https URL it is published at (never both, RFC 7591 §2).
ALTER TABLE oauth_clients ADD COLUMN jwks TEXT;                              -- JSON {"keys":[...]}, public keys only
ALTER TABLE oauth_clients ADD COLUMN jwks_uri TEXT;                          -- https URL of the client's JWK Set
ALTER TABLE oauth_clients ADD COLUMN token_endpoint_auth_signing_alg TEXT;   -- RS256 | PS256 | ES256 | EdDSA; NULL = any of them

-- RFC 7523 §3 (7): a client assertion's jti is used once. Kept until the assertion would have expired.
CREATE TABLE oauth_client_assertions (
  client_id   TEXT NOT NULL,
  jti         TEXT NOT NULL,
  expires_at  TEXT NOT NULL,                                                 -- the assertion's exp; cleanup.ts deletes the row after it
  PRIMARY KEY (client_id, jti)
);
CREATE INDEX oauth_client_assertions_by_expiry ON oauth_client_assertions (expires_at);
