import { TokenVerifier, type AuthInfo, type Failure, type Principal, type ResourceServerOptions } from './verify.js';

/** What a protected handler is given besides the request. */
export interface Auth {
  principal: Principal;
  /** Pass to the MCP SDK: `transport.handleRequest(request, { authInfo })` (v1) or `handler.fetch(request, { authInfo })` (v2). */
  authInfo: AuthInfo;
}

/** Per route: more scopes than the server-wide ones. */
export interface RouteOptions {
  scopes?: string[];
}

/** The structural shape of a Node `IncomingMessage` (and Express's `Request`) that the middleware reads and extends. */
export interface NodeRequest {
  method?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
  auth?: AuthInfo;
  principal?: Principal;
}

/** The structural shape of a Node `ServerResponse` (and Express's `Response`) that the middleware writes. */
export interface NodeResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

/** The structural shape of a Hono `Context` that the middleware uses. */
export interface HonoLikeContext {
  req: { raw: Request };
  set(key: 'auth', value: Auth): void;
}

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };

export class ResourceServer extends TokenVerifier {
  /** Path of the RFC 9728 metadata, e.g. `/.well-known/oauth-protected-resource/mcp`. */
  readonly metadataPath: string;

  constructor(options: ResourceServerOptions) {
    super(options);
    this.metadataPath = new URL(this.metadataUrl).pathname;
  }

  /** Whether a request is for this resource's metadata: the path-specific URL, or the root one (RFC 9728 §3.1, as MCP clients probe both). */
  isMetadataRequest(method: string | undefined, path: string): boolean {
    return (method ?? 'GET').toUpperCase() === 'GET' && (path === this.metadataPath || path === '/.well-known/oauth-protected-resource');
  }

  /** The metadata as a Response; any origin may read it (browser-based MCP clients discover with fetch). */
  metadataResponse(): Response {
    return new Response(JSON.stringify(this.metadata()), { headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' } });
  }

  /** A failure as the RFC 6750 §3 answer: status, WWW-Authenticate (readable by browser clients) and a JSON body. */
  failureHeaders(failure: Failure): Record<string, string> {
    return { ...JSON_HEADERS, 'www-authenticate': this.challenge(failure), 'access-control-expose-headers': 'WWW-Authenticate' };
  }

  failureResponse(failure: Failure): Response {
    return new Response(JSON.stringify({ error: failure.error ?? 'unauthorized', error_description: failure.description }), { status: failure.status, headers: this.failureHeaders(failure) });
  }

  /** Authenticates a fetch `Request`: the Auth, or the Response to send back. Tokens in the query string are refused (OAuth 2.1 §5.1.3). */
  async authenticate(request: Request, o: RouteOptions = {}): Promise<{ ok: true; auth: Auth } | { ok: false; response: Response }> {
    if (new URL(request.url).searchParams.has('access_token')) {
      return { ok: false, response: this.failureResponse({ ok: false, status: 400, error: 'invalid_request', description: 'tokens in the query string are refused; use the Authorization header' }) };
    }
    const r = await this.verify(request.headers.get('authorization'), o.scopes);
    return r.ok ? { ok: true, auth: { principal: r.principal, authInfo: r.authInfo } } : { ok: false, response: this.failureResponse(r) };
  }

  /**
   * Wraps a fetch handler (Workers `fetch(request, env, ctx)`, Deno, Bun, Hono's `app.fetch`): serves the metadata,
   * answers unauthenticated requests with a challenge, and calls `handler(request, auth, ...rest)` for the others.
   * Every other request needs a token, CORS preflights included: answer those before calling the wrapped function.
   */
  protect<A extends unknown[]>(handler: (request: Request, auth: Auth, ...rest: A) => Response | Promise<Response>, o: RouteOptions = {}) {
    return async (request: Request, ...rest: A): Promise<Response> => {
      const url = new URL(request.url);
      if (this.isMetadataRequest(request.method, url.pathname)) return this.metadataResponse();
      const r = await this.authenticate(request, o);
      return r.ok ? handler(request, r.auth, ...rest) : r.response;
    };
  }

  /** Hono middleware: `app.use('*', rs.hono())`; the handlers read `c.get('auth')`. CORS preflights pass through. */
  hono(o: RouteOptions = {}) {
    return async (c: HonoLikeContext, next: () => Promise<void>): Promise<Response | void> => {
      const request = c.req.raw;
      if (this.isMetadataRequest(request.method, new URL(request.url).pathname)) return this.metadataResponse();
      if (request.method === 'OPTIONS') return next();
      const r = await this.authenticate(request, o);
      if (!r.ok) return r.response;
      c.set('auth', r.auth);
      await next();
    };
  }

  /**
   * Node middleware, for Express (`app.use(rs.express())`) and plain `node:http` (`mw(req, res, () => handle(req, res))`).
   * Sets `req.auth` (the MCP SDK v1's `StreamableHTTPServerTransport` reads it and hands it to tools as
   * `extra.authInfo`) and `req.principal`.
   */
  express(o: RouteOptions = {}) {
    return (req: NodeRequest, res: NodeResponse, next: (error?: unknown) => void): void => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const send = (status: number, headers: Record<string, string>, body: string) => {
        res.statusCode = status;
        for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
        res.end(body);
      };
      if (this.isMetadataRequest(req.method, path)) {
        send(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' }, JSON.stringify(this.metadata()));
        return;
      }
      if (req.method === 'OPTIONS') return next();
      const header = req.headers.authorization;
      const failure = (f: Failure) => send(f.status, this.failureHeaders(f), JSON.stringify({ error: f.error ?? 'unauthorized', error_description: f.description }));
      if (new URL(req.url ?? '/', 'http://localhost').searchParams.has('access_token')) {
        return failure({ ok: false, status: 400, error: 'invalid_request', description: 'tokens in the query string are refused; use the Authorization header' });
      }
      this.verify(Array.isArray(header) ? header[0] : header, o.scopes).then(
        (r) => {
          if (!r.ok) return failure(r);
          req.auth = r.authInfo;
          req.principal = r.principal;
          next();
        },
        (error) => next(error),
      );
    };
  }
}

/** A resource server for one MCP server: `createResourceServer({ issuer, resource, scopes })`. */
export const createResourceServer = (options: ResourceServerOptions) => new ResourceServer(options);
