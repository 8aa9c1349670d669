// The benchmark's peer: an OAuth-protected MCP server built the most common way on Workers, with
// @cloudflare/workers-oauth-provider (`OAuthProvider`: authorization server and resource in one Worker,
// tokens in KV). Its /mcp serves the same cheap `echo` tool as bench/upstream, with the same MCP SDK
// (stateless Streamable HTTP, JSON responses); GET /mcp/me answers an authenticated request with no MCP at all.
// /authorize approves at once for a fixed user (the benchmark drives no login page here).
import { OAuthProvider } from '@cloudflare/workers-oauth-provider';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { echoServer } from '../echo.mjs';

const apiHandler = {
  async fetch(request, _env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === '/mcp/me') return Response.json({ user: ctx.props.userId, scope: ctx.auth?.scope ?? null });
    if (request.method !== 'POST') return new Response(null, { status: 405, headers: { allow: 'POST' } });
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    await echoServer('bench-peer').connect(transport);
    return transport.handleRequest(request);
  },
};

const defaultHandler = {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === '/health') return new Response('ok');
    if (pathname === '/authorize') {
      const authRequest = await env.OAUTH_PROVIDER.parseAuthRequest(request);
      const { redirectTo } = await env.OAUTH_PROVIDER.completeAuthorization({
        request: authRequest,
        userId: 'bench-user',
        metadata: {},
        scope: authRequest.scope,
        props: { userId: 'bench-user' },
      });
      return Response.redirect(redirectTo, 302);
    }
    return new Response('not found', { status: 404 });
  },
};

// The resource is this server's own URL, known from ISSUER (bench/run.ts passes it with --var).
let provider;
export default {
  fetch(request, env, ctx) {
    provider ??= new OAuthProvider({
      apiRoute: '/mcp',
      apiHandler,
      defaultHandler,
      authorizeEndpoint: '/authorize',
      tokenEndpoint: '/token',
      clientRegistrationEndpoint: '/register',
      scopesSupported: ['mcp:read', 'mcp:write'],
      resourceMetadata: { resource: `${env.ISSUER}/mcp`, authorization_servers: [env.ISSUER] },
    });
    return provider.fetch(request, env, ctx);
  },
};
