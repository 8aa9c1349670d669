import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

/**
 * The resource-server side of ChittyAuth: what an MCP server (or any HTTP API) that ChittyAuth protects
 * directly needs. It verifies access tokens offline against ChittyAuth's JWKS (RFC 9068 §4), optionally asks
 * ChittyAuth whether they are still active (RFC 7662) and answers what the MCP authorization spec expects:
 * RFC 9728 metadata and RFC 6750 challenges. Web-standard only (fetch, Request, Response, WebCrypto).
 */

export interface ResourceServerOptions {
  /** ChittyAuth's issuer URL, e.g. https://auth.example.com (the `iss` of its tokens). */
  issuer: string;
  /** This server's resource identifier, exactly as registered in the portal (servers.setDirect), e.g. https://mcp.example.com/mcp. */
  resource: string;
  /** Scopes every request must carry (each route may ask for more). Default: none. */
  scopes?: string[];
  /** Scopes advertised in the metadata and in challenges. Default: `scopes`. */
  scopesSupported?: string[];
  /** A human-readable name for the metadata (RFC 9728 §2 resource_name). */
  resourceName?: string;
  /** Where ChittyAuth's signing keys are. Default: `{issuer}/.well-known/jwks.json`. */
  jwksUri?: string;
  /** The key set to verify with instead of fetching one (tests, or keys pinned by hand). */
  keys?: JWTVerifyGetKey;
  /** Seconds of clock skew tolerated on exp/iat/nbf. Default 5. */
  clockToleranceSeconds?: number;
  /**
   * Online check for immediate revocation (RFC 7662): every token that passes the offline check is also sent to
   * ChittyAuth's introspection endpoint with this server's own client credentials (the client named as
   * `introspection_client_id` in servers.setDirect). Answers are cached for `cacheSeconds` (default 10), so a
   * revocation reaches this server within that time instead of within the token's lifetime.
   */
  introspection?: { clientId: string; clientSecret: string; endpoint?: string; cacheSeconds?: number };
  /** A fetch of your own (service bindings, tests). */
  fetch?: typeof fetch;
}

/** Who is calling, from a verified token. */
export interface Principal {
  /** The token's subject: the user's ChittyID (or a client's own, for client_credentials). */
  sub: string;
  chittyId: string;
  scopes: string[];
  /** The OAuth client the token was issued to (RFC 9068 client_id). */
  clientId: string;
  /** The authorization (ChittyAuth grant) the token belongs to: one sign-in of one user in one client. Revoking it ends every token of it. */
  sessionId: string | null;
  /** Token id (jti) and expiry (seconds since epoch). */
  tokenId: string;
  expiresAt: number;
  /** Every claim, for anything else. */
  claims: JWTPayload;
}

/** The MCP SDK's AuthInfo (v1 `@modelcontextprotocol/sdk` and v2 `@modelcontextprotocol/server` alike). */
export interface AuthInfo {
  token: string;
  clientId: string;
  scopes: string[];
  expiresAt?: number;
  resource?: URL;
  extra?: Record<string, unknown>;
}

export type Failure = {
  ok: false;
  /** 400 invalid_request, 401 (no token, or invalid_token), 403 insufficient_scope, 503 when ChittyAuth cannot be reached. */
  status: 400 | 401 | 403 | 503;
  error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'temporarily_unavailable';
  description: string;
  /** The scope to name in the challenge (RFC 6750 §3). */
  scope?: string;
};
export type Verified = { ok: true; principal: Principal; authInfo: AuthInfo };

/** Only ES256 is ever accepted: ChittyAuth signs with it, and pinning it closes algorithm confusion (RFC 8725 §3.1). */
export const ALGORITHMS = ['ES256'];
const DEFAULT_INTROSPECTION_CACHE_S = 10;
const CACHE_MAX = 10_000;

/** RFC 9728 §3.1: `/.well-known/oauth-protected-resource` inserted between the origin and the resource's path. */
export function metadataUrlOf(resource: string): string {
  const url = new URL(resource);
  return `${url.origin}/.well-known/oauth-protected-resource${url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')}`;
}

/**
 * The resource in the canonical form ChittyAuth stores and puts in `aud`: lowercase scheme and host, no default
 * port, no trailing slash; a fragment, query or user info is refused (RFC 8707 §2).
 */
export function canonicalResource(raw: string): string {
  const url = new URL(raw);
  if (raw.includes('#') || url.search || url.username || url.password) throw new TypeError('resource must be an absolute URL without fragment, query or user info (RFC 8707 §2)');
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

/** RFC 6750 §2.1: the bearer token of an Authorization header; undefined when absent, null when malformed. */
export function bearerToken(authorization: string | null | undefined): string | null | undefined {
  if (!authorization) return undefined;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization.trim());
  return m ? m[1]! : null;
}

const fail = (status: Failure['status'], error: Failure['error'], description: string, scope?: string): Failure => ({ ok: false, status, error, description, ...(scope ? { scope } : {}) });

class KeysUnavailable extends Error {}

export class TokenVerifier {
  readonly issuer: string;
  readonly resource: string;
  readonly metadataUrl: string;
  readonly scopes: string[];
  readonly scopesSupported: string[];
  #keys: JWTVerifyGetKey;
  #introspected = new Map<string, { active: boolean; until: number }>();

  constructor(readonly options: ResourceServerOptions) {
    this.issuer = options.issuer.replace(/\/$/, '');
    this.resource = canonicalResource(options.resource);
    this.metadataUrl = metadataUrlOf(this.resource);
    this.scopes = options.scopes ?? [];
    this.scopesSupported = options.scopesSupported ?? this.scopes;
    const fetchImpl = options.fetch;
    const keys =
      options.keys ??
      createRemoteJWKSet(new URL(options.jwksUri ?? `${this.issuer}/.well-known/jwks.json`), fetchImpl ? { [customFetch]: (url: string, init: RequestInit) => fetchImpl(url, init) } : {});
    // A key set that cannot be fetched is ChittyAuth's outage, not a bad token: told apart so it is a 503.
    this.#keys = async (header, token) => {
      try {
        return await keys(header, token);
      } catch (error) {
        if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys || error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) throw error;
        throw new KeysUnavailable();
      }
    };
  }

  /** RFC 9728 §2: the protected resource metadata document, pointing at ChittyAuth. */
  metadata() {
    return {
      resource: this.resource,
      authorization_servers: [this.issuer],
      ...(this.scopesSupported.length ? { scopes_supported: this.scopesSupported } : {}),
      bearer_methods_supported: ['header'],
      ...(this.options.resourceName ? { resource_name: this.options.resourceName } : {}),
    };
  }

  /** RFC 6750 §3 / RFC 9728 §5.1: the WWW-Authenticate value for a failure. */
  challenge(failure?: Pick<Failure, 'error' | 'description' | 'scope'>): string {
    const scope = failure?.scope ?? (this.scopes.length ? this.scopes : this.scopesSupported).join(' ');
    const parts = [`resource_metadata="${this.metadataUrl}"`];
    if (scope) parts.push(`scope="${scope}"`);
    if (failure?.error && failure.error !== 'temporarily_unavailable') {
      parts.push(`error="${failure.error}"`);
      if (failure.description) parts.push(`error_description="${failure.description.replace(/["\\]/g, '')}"`);
    }
    return `Bearer ${parts.join(', ')}`;
  }

  /**
   * Verifies the Authorization header of a request. Offline: signature by a ChittyAuth key (found by `kid`,
   * refetched when a new one appears), `alg` ES256, `typ` at+jwt, `iss`, `aud` = this resource, `exp`; then
   * the required scopes; then, when configured, introspection.
   */
  async verify(authorization: string | null | undefined, required: string[] = []): Promise<Verified | Failure> {
    const token = bearerToken(authorization);
    if (token === undefined) return fail(401, undefined, 'Authentication required: send Authorization: Bearer <access token>');
    if (token === null) return fail(400, 'invalid_request', 'the Authorization header is not a Bearer token');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        algorithms: ALGORITHMS,
        issuer: this.issuer,
        // RFC 9068 §4: the resource server MUST check that aud names it; RFC 8707 keeps tokens to their resource.
        audience: this.resource,
        // RFC 9068 §4: MUST check typ is at+jwt (application/at+jwt), so ID tokens or other JWTs are refused.
        typ: 'at+jwt',
        requiredClaims: ['exp', 'iat', 'sub', 'jti', 'client_id'],
        clockTolerance: this.options.clockToleranceSeconds ?? 5,
      }));
    } catch (error) {
      return this.#classify(error);
    }
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
    const needed = [...new Set([...this.scopes, ...required])];
    const missing = needed.filter((s) => !scopes.includes(s));
    // RFC 6750 §3.1: insufficient_scope is a 403 naming the scope needed.
    if (missing.length) return fail(403, 'insufficient_scope', `the token lacks the scope ${missing.join(' ')}`, needed.join(' '));
    if (typeof payload.client_id !== 'string' || typeof payload.sub !== 'string' || typeof payload.jti !== 'string') return fail(401, 'invalid_token', 'the access token is malformed');
    if (this.options.introspection) {
      const active = await this.#active(token, payload.exp!);
      if (active === null) return fail(503, 'temporarily_unavailable', 'the authorization server cannot be reached to check the token');
      if (!active) return fail(401, 'invalid_token', 'the access token was revoked');
    }
    const sessionId = typeof payload.sid === 'string' ? payload.sid : typeof payload.gid === 'string' ? payload.gid : null;
    const principal: Principal = { sub: payload.sub, chittyId: payload.sub, scopes, clientId: payload.client_id, sessionId, tokenId: payload.jti, expiresAt: payload.exp!, claims: payload };
    const authInfo: AuthInfo = { token, clientId: principal.clientId, scopes, expiresAt: principal.expiresAt, resource: new URL(this.resource), extra: { sub: principal.sub, chittyId: principal.chittyId, sessionId, principal } };
    return { ok: true, principal, authInfo };
  }

  #classify(error: unknown): Failure {
    if (error instanceof errors.JWTExpired) return fail(401, 'invalid_token', 'the access token has expired');
    if (error instanceof errors.JWTClaimValidationFailed) return fail(401, 'invalid_token', `the access token is not for this server (${error.claim} check failed)`);
    if (error instanceof errors.JWKSNoMatchingKey) return fail(401, 'invalid_token', 'the access token is signed with an unknown key');
    if (error instanceof errors.JOSEAlgNotAllowed) return fail(401, 'invalid_token', 'the access token uses an algorithm that is not accepted');
    if (error instanceof KeysUnavailable) return fail(503, 'temporarily_unavailable', 'the authorization server’s keys cannot be fetched');
    return fail(401, 'invalid_token', 'the access token is invalid');
  }

  /** RFC 7662 §2: true/false from ChittyAuth, cached briefly; null when it cannot be asked (fail closed). */
  async #active(token: string, exp: number): Promise<boolean | null> {
    const cached = this.#introspected.get(token);
    if (cached && cached.until > Date.now()) return cached.active;
    const o = this.options.introspection!;
    let active: boolean;
    try {
      const res = await (this.options.fetch ?? fetch)(o.endpoint ?? `${this.issuer}/oauth/introspect`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
          authorization: `Basic ${btoa(`${encodeURIComponent(o.clientId)}:${encodeURIComponent(o.clientSecret)}`)}`,
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      });
      if (res.status !== 200) return null;
      const body = (await res.json()) as { active?: unknown; aud?: unknown };
      // RFC 7662 §2.2: only active: true is active; also insist it is for this resource.
      const aud = Array.isArray(body.aud) ? body.aud : [body.aud];
      active = body.active === true && aud.includes(this.resource);
    } catch {
      return null;
    }
    const ttl = Math.min((o.cacheSeconds ?? DEFAULT_INTROSPECTION_CACHE_S) * 1000, exp * 1000 - Date.now());
    if (this.#introspected.size >= CACHE_MAX) this.#introspected.clear();
    if (ttl > 0) this.#introspected.set(token, { active, until: Date.now() + ttl });
    return active;
  }
}
