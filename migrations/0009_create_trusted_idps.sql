-- Enterprise-managed authorization (MCP ext-auth, draft-ietf-oauth-identity-assertion-authz-grant): identity
-- providers an admin trusts to issue ID-JAGs for this authorization server. docs/storage.md documents every table.

CREATE TABLE oauth_trusted_idps (
  id            TEXT PRIMARY KEY,              -- idp_…
  issuer        TEXT NOT NULL UNIQUE,          -- the IdP's issuer identifier, compared exactly with an ID-JAG's iss
  jwks          TEXT,                          -- JSON JWK Set (public keys), or
  jwks_uri      TEXT,                          -- the https URL of the IdP's JWK Set (exactly one of the two)
  client_ids    TEXT NOT NULL,                 -- JSON array: the clients that may present this IdP's ID-JAGs
  account_claim TEXT NOT NULL,                 -- email | sub | preferred_username: the claim matched with accounts.username
  scope         TEXT,                          -- space-separated ceiling on what its ID-JAGs can grant; NULL = any supported
  created_by    TEXT NOT NULL,
  created_at    TEXT NOT NULL
);

-- RFC 7521 §5.2 / RFC 7519 §4.1.7: an ID-JAG's jti is used once, per issuer. Kept until the ID-JAG would have expired.
CREATE TABLE oauth_id_jag_jtis (
  issuer      TEXT NOT NULL,
  jti         TEXT NOT NULL,
  expires_at  TEXT NOT NULL,
  PRIMARY KEY (issuer, jti)
);
CREATE INDEX oauth_id_jag_jtis_by_expiry ON oauth_id_jag_jtis (expires_at);
