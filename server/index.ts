import { handleMcp, VERSION } from './adapters/mcp';
import { handleMcpWebSocket } from './adapters/mcp-websocket';
import { allowedRequestHeaders } from './adapters/mcp-wire';
import { handleRest } from './adapters/rest';
import { handleRpc } from './adapters/rpc';
import type { Door } from './audit/audit.store';
import { cleanupExpired } from './cleanup';
import type { RequestContext } from './context';
import { getDb, type DB } from './db/schema';
import { docsInit, docsPage } from './docs/docs.page';
import type { Env } from './env';
import { handleCallback, handleConnect } from './gateway/connect.page';
import { gatewayResourceName } from './gateway/consent';
import { gatewayClientMetadata } from './gateway/upstream-oauth';
import { handleGateway, hostRoute, pathRoute, type GatewayRoute } from './gateway/gateway.proxy';
import { handleLegacyMessage, handleLegacySse, legacyHostRoute, legacyPathRoute, type LegacyRoute } from './gateway/legacy-sse';
import { handleWebSocket } from './gateway/websocket';
import { gatewayHostKind, gatewayOrigin, MAX_ENCODED_DOMAIN, type HostKind } from './gateway/hostname';
import { handleAuthorize } from './oauth/authorize';
import { oauthErrorResponse, OAuthError } from './oauth/errors';
import { authorizationServerMetadata, mcpResource, protectedResourceMetadata } from './oauth/metadata';
import { handleRegister } from './oauth/register';
import { handleIntrospect, handleRevoke } from './oauth/revoke';
import { gatewayResource, legacyGatewayResource } from './oauth/params';
import { handleToken } from './oauth/token';
import { publicJwks } from './jwt/keys';
import { recheckServers } from './portal/health';
import { handlePortal, portalCredential } from './portal/portal.handler';
import { readLimitedBytes } from './lib/urls';
import { handleSyncStream } from './sync/stream';

export { SyncHub } from './sync/hub';
export { McpSockets } from './adapters/mcp-sockets';

/** Requests larger than this are refused before anything parses them. */
const MAX_BODY_BYTES = 1 << 20;

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

const PUBLIC_JSON = { 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' };

const OAUTH_ENDPOINTS: Record<string, (request: Request, env: Env, db: DB) => Promise<Response>> = {
  '/oauth/authorize': handleAuthorize,
  '/oauth/token': handleToken,
  '/oauth/register': handleRegister,
  '/oauth/revoke': handleRevoke,
  '/oauth/introspect': handleIntrospect,
};

/**
 * The authorization server's endpoints: hand-written handlers (their wire format is fixed by RFCs)
 * over the same services as the contract. The JSON endpoints allow any origin (no cookies are used
 * there), so browser-based MCP clients can reach them; /oauth/authorize is a page and gets no CORS.
 */
async function handleOAuth(request: Request, env: Env, pathname: string): Promise<Response> {
  const handler = OAUTH_ENDPOINTS[pathname];
  if (!handler) return notFound(pathname);
  const cors: Record<string, string> = pathname === '/oauth/authorize' ? {} : { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'WWW-Authenticate' };
  if (request.method === 'OPTIONS' && pathname !== '/oauth/authorize') {
    return new Response(null, { status: 204, headers: { ...cors, 'access-control-allow-methods': 'POST', 'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '86400' } });
  }
  let response: Response;
  try {
    response = await handler(request, env, getDb(env.DB));
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    response = oauthErrorResponse(error);
  }
  for (const [k, v] of Object.entries(cors)) response.headers.set(k, v);
  return response;
}

function requestContext(request: Request, env: Env, ctx: ExecutionContext, door: Door, audience: string): RequestContext {
  return {
    env,
    db: getDb(env.DB),
    door,
    audience,
    authorization: request.headers.get('authorization'),
    ip: request.headers.get('cf-connecting-ip'),
    userAgent: request.headers.get('user-agent'),
    accessAssertion: request.headers.get('cf-access-jwt-assertion'),
    waitUntil: (p) => ctx.waitUntil(p.catch((e) => console.error('background task failed', e))),
  };
}

/**
 * Sets response headers in place; a response whose headers are immutable (one from fetch(), an asset) is
 * copied first. Every response is fresh per request, so nothing shared is touched.
 */
function withHeaders(response: Response, edit: (headers: Headers) => void): Response {
  try {
    edit(response.headers);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    edit(copy.headers);
    return copy;
  }
}

/** API responses may carry secrets (API keys, tokens): never cached, never sniffed. */
function secure(response: Response): Response {
  if (response.webSocket) return response; // a 101 switching protocols carries no body to protect
  return withHeaders(response, (h) => {
    if (!h.has('cache-control')) h.set('cache-control', 'no-store');
    h.set('x-content-type-options', 'nosniff');
    h.set('referrer-policy', 'no-referrer');
  });
}

async function route(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  const { pathname } = url;

  const tooLarge = () => json({ error: 'payload_too_large', message: `Request bodies are limited to ${MAX_BODY_BYTES} bytes` }, 413);
  const length = request.headers.get('content-length');
  if (Number(length ?? 0) > MAX_BODY_BYTES) return tooLarge();
  if (length === null && request.body) {
    // A chunked body declares no length: read it under the same cap before anything parses it.
    try {
      request = new Request(request, { body: await readLimitedBytes(new Response(request.body), MAX_BODY_BYTES) });
    } catch {
      return tooLarge();
    }
  }

  // Hostname routes of the gateway: this host names an upstream domain; nothing else is served here.
  const gatewayHostname = gatewayHostKind(url.host, env.GATEWAY_DOMAIN, env.ISSUER);
  if (gatewayHostname) return hostnameGateway(request, env, ctx, url, gatewayHostname);

  if (pathname === '/health') {
    try {
      await env.DB.prepare('SELECT 1').first();
      return json({ status: 'ok', version: VERSION, database: 'ok', time: new Date().toISOString() });
    } catch {
      return json({ status: 'error', version: VERSION, database: 'unreachable', time: new Date().toISOString() }, 503);
    }
  }
  if (pathname === '/.well-known/oauth-authorization-server' || pathname === '/.well-known/openid-configuration') {
    return json(authorizationServerMetadata(env), 200, PUBLIC_JSON);
  }
  // RFC 9728 §3.1: the metadata of the resource at /mcp lives at the well-known URI with /mcp appended; the root serves it too.
  if (pathname === '/.well-known/oauth-protected-resource/mcp' || pathname === '/.well-known/oauth-protected-resource') {
    return json(protectedResourceMetadata(env, mcpResource(env)), 200, PUBLIC_JSON);
  }
  const gatewayMetadata = /^\/\.well-known\/oauth-protected-resource\/gw\/([a-z0-9][a-z0-9-]{1,62}[a-z0-9])\/(mcp|sse)$/.exec(pathname);
  if (gatewayMetadata) {
    const resource = gatewayMetadata[2] === 'sse' ? legacyGatewayResource(env, gatewayMetadata[1]!) : gatewayResource(env, gatewayMetadata[1]!);
    return json(protectedResourceMetadata(env, resource, await gatewayResourceName(getDb(env.DB), gatewayMetadata[1]!)), 200, PUBLIC_JSON);
  }
  if (pathname.startsWith('/oauth/')) return handleOAuth(request, env, pathname);
  if (pathname === '/.well-known/jwks.json') {
    return json(await publicJwks(env, getDb(env.DB)), 200, { 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' });
  }
  if (pathname === '/openapi.json') return openapiDocument(env, url);
  if (pathname === '/encode') {
    const domain = (url.searchParams.get('domain') ?? '').toLowerCase();
    if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+(:\d{1,5})?$/.test(domain) || domain.length > MAX_ENCODED_DOMAIN) return json({ error: 'invalid_request', message: `domain must be a DNS name (with :port when not the default) of at most ${MAX_ENCODED_DOMAIN} characters` }, 400);
    if (!env.GATEWAY_DOMAIN) return json({ error: 'not_configured', message: 'GATEWAY_DOMAIN is not set' }, 503);
    const origin = gatewayOrigin(env.ISSUER, domain, env.GATEWAY_DOMAIN);
    return json({ domain, host: new URL(origin).hostname, url: `${origin}/mcp` });
  }
  if (pathname === '/docs' || pathname === '/docs/') return docsPage();
  if (pathname === '/docs/init.js') return docsInit();

  if (pathname === '/v1/sync/stream') return handleSyncStream(request, env, getDb(env.DB), (p) => ctx.waitUntil(p.catch((e) => console.error('background task failed', e))));
  if (pathname.startsWith('/v1/')) {
    return (await handleRest(request, requestContext(request, env, ctx, 'rest', env.ISSUER))) ?? notFound(pathname);
  }
  if (pathname.startsWith('/rpc/')) {
    const context = requestContext(request, env, ctx, 'rpc', env.ISSUER);
    if (!context.authorization) {
      // The dashboard calls /rpc with its session cookie, and proves it is the dashboard with x-csrf-token.
      const fromCookie = await portalCredential(request, env);
      if (fromCookie === 'forbidden') return json({ code: 'FORBIDDEN', status: 403, message: 'Cookie-authenticated calls need a valid x-csrf-token header' }, 403);
      context.authorization = fromCookie;
    }
    return (await handleRpc(request, context)) ?? notFound(pathname);
  }
  if (pathname === '/portal' || pathname === '/portal/' || pathname === '/portal/login' || pathname === '/portal/logout') {
    const page = await handlePortal(request, env, getDb(env.DB));
    if (page) return page;
  }
  if (pathname === '/gw/callback') return handleCallback(request, env, getDb(env.DB));
  if (pathname === '/gw/client.json') return json(gatewayClientMetadata(env), 200, PUBLIC_JSON);
  const connect = /^\/gw\/([a-z0-9][a-z0-9-]{1,62}[a-z0-9])\/connect$/.exec(pathname);
  if (connect) return handleConnect(request, env, getDb(env.DB), connect[1]!);
  const gateway = /^\/gw\/([a-z0-9][a-z0-9-]{1,62}[a-z0-9])\/mcp$/.exec(pathname);
  if (gateway) {
    if (request.method === 'OPTIONS') return mcpPreflight(request);
    const response = await handleGateway(request, env, getDb(env.DB), pathRoute(env, gateway[1]!), backgroundOf(ctx));
    return withCors(response, request);
  }
  const otherTransport = /^\/gw\/([a-z0-9][a-z0-9-]{1,62}[a-z0-9])\/(sse|message|ws)$/.exec(pathname);
  if (otherTransport) {
    if (request.method === 'OPTIONS') return mcpPreflight(request);
    return gatewayTransport(request, env, ctx, otherTransport[2]!, legacyPathRoute(env, otherTransport[1]!), pathRoute(env, otherTransport[1]!));
  }
  if (pathname === '/mcp') {
    if (request.method === 'OPTIONS') return mcpPreflight(request);
    const context = requestContext(request, env, ctx, 'mcp', mcpResource(env));
    if (request.headers.get('upgrade')?.toLowerCase() === 'websocket') {
      // MCP over WebSocket: a 101 goes back as the hub made it; a refusal is an HTTP answer like the HTTP door's.
      const response = await handleMcpWebSocket(request, context);
      return response.webSocket ? response : withCors(response, request);
    }
    return withCors(await handleMcp(request, context), request);
  }

  if (env.ASSETS && (request.method === 'GET' || request.method === 'HEAD')) {
    const asset = await env.ASSETS.fetch(request);
    if (asset.status !== 404) return asset;
  }
  if (pathname === '/') return Response.redirect(`${url.origin}/docs`, 302);
  return notFound(pathname);
}

const backgroundOf = (ctx: ExecutionContext) => (p: Promise<unknown>) => ctx.waitUntil(p.catch((e) => console.error('gateway background task failed', e)));

/**
 * A host the gateway answers for (hostname.ts gatewayHostKind). Only a registered upstream's encoded host is
 * served; any other name under GATEWAY_DOMAIN, or an encoded name on another domain, gets a 404 that says why,
 * never ChittyAuth's own endpoints under a name that is not the issuer's.
 */
async function hostnameGateway(request: Request, env: Env, ctx: ExecutionContext, url: URL, host: NonNullable<HostKind>): Promise<Response> {
  if (host.kind === 'not_encoded') {
    return json({ error: 'not_found', message: `${host.host} is not a gateway hostname route: under ${env.GATEWAY_DOMAIN} the gateway serves only {base32(upstream domain)}-enc.${env.GATEWAY_DOMAIN} (GET /encode?domain=... gives the name); ChittyAuth itself is at ${env.ISSUER}` }, 404);
  }
  if (host.kind === 'other_domain') {
    const configured = env.GATEWAY_DOMAIN ? `this gateway's hostname routes are under ${env.GATEWAY_DOMAIN}` : 'hostname routes are not configured here (GATEWAY_DOMAIN is not set)';
    return json({ error: 'not_found', message: `${host.host} names the upstream ${host.domain} as a gateway hostname route, but ${configured}` }, 404);
  }
  const { domain } = host;
  const db = getDb(env.DB);
  const route = await hostRoute(db, url.origin, domain);
  if (!route) return json({ error: 'not_found', message: `No MCP server on ${domain} is registered in the portal, so ${url.host} (the gateway's hostname route for ${domain}) serves nothing; register one whose MCP URL is on ${domain}` }, 404);
  if (url.pathname === '/.well-known/oauth-protected-resource/mcp' || url.pathname === '/.well-known/oauth-protected-resource') {
    return json(protectedResourceMetadata(env, route.resource, await gatewayResourceName(db, route.serverId)), 200, PUBLIC_JSON);
  }
  const legacy = legacyHostRoute(url.origin, route.serverId);
  if (url.pathname === '/.well-known/oauth-protected-resource/sse') return json(protectedResourceMetadata(env, legacy.resource, await gatewayResourceName(db, route.serverId)), 200, PUBLIC_JSON);
  if (url.pathname === '/sse' || url.pathname === '/message' || url.pathname === '/ws') {
    if (request.method === 'OPTIONS') return mcpPreflight(request);
    return gatewayTransport(request, env, ctx, url.pathname.slice(1), legacy, route);
  }
  if (url.pathname !== '/mcp') return notFound(url.pathname);
  if (request.method === 'OPTIONS') return mcpPreflight(request);
  return withCors(await handleGateway(request, env, db, route, backgroundOf(ctx)), request);
}

/** The gateway's other transports: legacy HTTP+SSE (its own resource) and the WebSocket tunnel into the /mcp resource. */
async function gatewayTransport(request: Request, env: Env, ctx: ExecutionContext, kind: string, legacy: LegacyRoute, mcp: GatewayRoute): Promise<Response> {
  const db = getDb(env.DB);
  if (kind === 'ws') return handleWebSocket(request, env, db, mcp, backgroundOf(ctx));
  const handler = kind === 'sse' ? handleLegacySse : handleLegacyMessage;
  return withCors(await handler(request, env, db, legacy, backgroundOf(ctx)), request);
}

/** MCP responses readable by browser clients; the request's Origin was already checked by the endpoint. */
function withCors(response: Response, request: Request): Response {
  const origin = request.headers.get('origin') ?? '*';
  return withHeaders(response, (h) => {
    h.set('access-control-allow-origin', origin);
    h.set('access-control-expose-headers', 'WWW-Authenticate, Mcp-Session-Id');
    h.set('vary', 'Origin');
  });
}

/** Browser MCP clients (e.g. MCP Inspector) preflight; origins are checked on the request itself. */
const mcpPreflight = (request: Request) =>
  new Response(null, {
    status: 204,
    headers: {
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'POST, GET, DELETE',
      'access-control-allow-headers': allowedRequestHeaders(request.headers.get('access-control-request-headers')),
      'access-control-max-age': '86400',
    },
  });

/**
 * The generated OpenAPI document, from the static assets (scripts/assets.mjs puts it there; the Worker script
 * does not carry its ~240 KB), pointing at the origin it was fetched from. Built once per isolate and origin.
 */
const openapiBodies = new Map<string, string>();
async function openapiDocument(env: Env, url: URL): Promise<Response> {
  let body = openapiBodies.get(url.origin);
  if (body === undefined) {
    const asset = env.ASSETS ? await env.ASSETS.fetch(new URL('/api/openapi.json', url.origin)) : null;
    if (!asset?.ok) return json({ error: 'not_built', message: 'The OpenAPI document is not among the static assets: run npm run assets' }, 503);
    body = JSON.stringify({ ...(await asset.json<Record<string, unknown>>()), servers: [{ url: url.origin }] });
    if (openapiBodies.size < 8) openapiBodies.set(url.origin, body);
  }
  return new Response(body, { headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=60', 'access-control-allow-origin': '*' } });
}

const notFound = (pathname: string) => json({ error: 'not_found', message: `No route for ${pathname}; see /docs` }, 404);

export default {
  async fetch(request, env, ctx): Promise<Response> {
    try {
      return secure(await route(request, env, ctx));
    } catch (error) {
      console.error('unhandled error', error);
      return secure(json({ error: 'internal_error', message: 'Internal server error' }, 500));
    }
  },

  async scheduled(_controller, env, ctx): Promise<void> {
    const db = getDb(env.DB);
    ctx.waitUntil(
      cleanupExpired(db).then(
        (n) => console.log('cleanup', n),
        (e) => console.error('cleanup failed', e),
      ),
    );
    ctx.waitUntil(
      recheckServers(env, db).then(
        (n) => console.log('health checks', n),
        (e) => console.error('health checks failed', e),
      ),
    );
  },
} satisfies ExportedHandler<Env>;
