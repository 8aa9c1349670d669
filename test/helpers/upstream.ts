/**
 * A real upstream MCP server with its own OAuth 2.1 authorization server, on loopback, for the gateway's
 * end-to-end tests. Built from the MCP SDK's own pieces: `mcpAuthRouter` (metadata, /authorize, /token,
 * /register, /revoke), `requireBearerAuth` in front of `/mcp`, and behind it one of: a stateless v1-SDK
 * `McpServer` over `StreamableHTTPServerTransport` (MCP 2025-11-25, the default); the v2 SDK's
 * `createMcpHandler` with `legacy: 'reject'` (serves only 2026-07-28); or another MCP server on loopback it
 * relays to (e.g. server-everything, which has no OAuth of its own). The OAuthServerProvider below is the only hand-written part: in-memory
 * clients, codes and opaque tokens, and an /authorize that shows a consent page a browser submits.
 *
 * Every request's Authorization header is logged, and every token grant, so tests can prove what the
 * upstream received (and that it never received a ChittyAuth token). Tests can shorten token lifetimes,
 * expire access tokens and revoke everything.
 */
import { createMcpHandler, McpServer as V2McpServer } from '@modelcontextprotocol/server';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { mcpAuthRouter } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidGrantError, InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type { AuthorizationParams, OAuthServerProvider } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import type { OAuthRegisteredClientsStore } from '@modelcontextprotocol/sdk/server/auth/clients.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { OAuthClientInformationFull, OAuthTokenRevocationRequest, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import express, { type Request as ExpressRequest, type Response as ExpressResponse } from 'express';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { z } from 'zod';

export interface LoggedRequest {
  method: string;
  path: string;
  authorization: string | null;
  /** The HTTP status the upstream answered with. */
  status?: number;
  /** The JSON-RPC method of an MCP POST. */
  rpc?: string;
}

export interface Grant {
  grant_type: 'authorization_code' | 'refresh_token';
  client_id: string;
  /** The code or refresh token presented. */
  presented: string;
  outcome: 'issued' | 'refused';
}

interface AccessToken {
  clientId: string;
  scopes: string[];
  expiresAt: number;
  resource?: URL;
}

const secret = () => randomBytes(24).toString('hex');
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

class MemoryProvider implements OAuthServerProvider {
  readonly clients = new Map<string, OAuthClientInformationFull>();
  readonly pending = new Map<string, { client: OAuthClientInformationFull; params: AuthorizationParams }>();
  readonly codes = new Map<string, { clientId: string; params: AuthorizationParams }>();
  readonly accessTokens = new Map<string, AccessToken>();
  readonly refreshTokens = new Map<string, { clientId: string; scopes: string[]; resource?: URL }>();
  readonly grants: Grant[] = [];
  /** Every access and refresh token this server ever issued. */
  readonly issued = new Set<string>();
  accessTtlSeconds = 3600;

  constructor(private readonly issuer: () => string) {}

  get clientsStore(): OAuthRegisteredClientsStore {
    return {
      getClient: (id) => this.clients.get(id),
      registerClient: (client) => {
        const full = { ...client, client_id: secret(), client_id_issued_at: Math.floor(Date.now() / 1000) } as OAuthClientInformationFull;
        this.clients.set(full.client_id, full);
        return full;
      },
    };
  }

  /** The consent page: a form the user submits to /consent (what a browser would see and do). */
  async authorize(client: OAuthClientInformationFull, params: AuthorizationParams, res: ExpressResponse) {
    const id = secret();
    this.pending.set(id, { client, params });
    res
      .status(200)
      .type('html')
      .send(
        `<!doctype html><title>Upstream consent</title><h1>Allow ${esc(client.client_name ?? client.client_id)}?</h1>` +
          `<form method="post" action="/consent"><input type="hidden" name="request" value="${id}"><button name="action" value="approve">Allow</button><button name="action" value="deny">Deny</button></form>`,
      );
  }

  /** The consent form's answer: back to the client with a code (or access_denied), state and iss (RFC 9207). */
  consent(request: string, action: string): string {
    const pending = this.pending.get(request);
    if (!pending) throw new Error('unknown consent request');
    this.pending.delete(request);
    const target = new URL(pending.params.redirectUri);
    if (action === 'approve') {
      const code = secret();
      this.codes.set(code, { clientId: pending.client.client_id, params: pending.params });
      target.searchParams.set('code', code);
    } else target.searchParams.set('error', 'access_denied');
    if (pending.params.state) target.searchParams.set('state', pending.params.state);
    target.searchParams.set('iss', this.issuer());
    return target.toString();
  }

  async challengeForAuthorizationCode(_client: OAuthClientInformationFull, code: string) {
    const found = this.codes.get(code);
    if (!found) throw new InvalidGrantError('unknown authorization code');
    return found.params.codeChallenge;
  }

  private issue(clientId: string, scopes: string[], resource?: URL): OAuthTokens {
    const access = secret();
    const refresh = secret();
    this.accessTokens.set(access, { clientId, scopes, resource, expiresAt: Date.now() + this.accessTtlSeconds * 1000 });
    this.refreshTokens.set(refresh, { clientId, scopes, resource });
    this.issued.add(access).add(refresh);
    return { access_token: access, token_type: 'Bearer', expires_in: this.accessTtlSeconds, refresh_token: refresh, scope: scopes.join(' ') };
  }

  async exchangeAuthorizationCode(client: OAuthClientInformationFull, code: string, _verifier?: string, redirectUri?: string, resource?: URL) {
    const found = this.codes.get(code);
    this.codes.delete(code);
    const ok = found && found.clientId === client.client_id && (!redirectUri || redirectUri === found.params.redirectUri);
    this.grants.push({ grant_type: 'authorization_code', client_id: client.client_id, presented: code, outcome: ok ? 'issued' : 'refused' });
    if (!ok) throw new InvalidGrantError('invalid authorization code');
    return this.issue(client.client_id, found.params.scopes ?? [], resource ?? found.params.resource);
  }

  async exchangeRefreshToken(client: OAuthClientInformationFull, refreshToken: string, _scopes?: string[], resource?: URL) {
    const found = this.refreshTokens.get(refreshToken);
    const ok = found && found.clientId === client.client_id;
    this.grants.push({ grant_type: 'refresh_token', client_id: client.client_id, presented: refreshToken, outcome: ok ? 'issued' : 'refused' });
    if (!ok) throw new InvalidGrantError('invalid refresh token');
    // Rotation (OAuth 2.1 §4.3.1): the old refresh token is spent.
    this.refreshTokens.delete(refreshToken);
    return this.issue(client.client_id, found.scopes, resource ?? found.resource);
  }

  async verifyAccessToken(token: string): Promise<AuthInfo> {
    const found = this.accessTokens.get(token);
    if (!found || found.expiresAt <= Date.now()) throw new InvalidTokenError('invalid or expired access token');
    return { token, clientId: found.clientId, scopes: found.scopes, expiresAt: Math.floor(found.expiresAt / 1000), resource: found.resource };
  }

  async revokeToken(_client: OAuthClientInformationFull, request: OAuthTokenRevocationRequest) {
    this.accessTokens.delete(request.token);
    this.refreshTokens.delete(request.token);
  }
}

export interface Upstream {
  /** http://127.0.0.1:<port> */
  origin: string;
  /** The MCP endpoint, <origin>/mcp. */
  mcpUrl: string;
  /** Every request, with its Authorization header. */
  log: LoggedRequest[];
  /** Every grant at /token. */
  grants: Grant[];
  /** Every token the upstream issued. */
  issued: Set<string>;
  /** Lifetime of access tokens issued from now on. */
  setAccessTtl(seconds: number): void;
  /** Makes every access token issued so far expired (refresh tokens stay valid). */
  expireAccessTokens(): void;
  /** Revokes every access and refresh token (as if the user revoked the app at the upstream). */
  revokeAll(): void;
  close(): Promise<void>;
}

function mcpServer() {
  const server = new McpServer({ name: 'e2e-upstream', version: '1.0.0' });
  server.registerTool('echo', { description: 'Echoes the message', inputSchema: { message: z.string() } }, async ({ message }) => ({ content: [{ type: 'text', text: `upstream says: ${message}` }] }));
  server.registerTool('add', { description: 'Adds two numbers', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }));
  server.registerTool('whoami', { description: 'The OAuth client the upstream sees' }, async (extra) => ({ content: [{ type: 'text', text: `client ${extra.authInfo?.clientId ?? 'none'}` }] }));
  server.registerTool('delete_everything', { description: 'A dangerous tool a policy denies' }, async () => ({ content: [{ type: 'text', text: 'deleted' }] }));
  server.registerTool('countdown', { description: 'Reports progress three times, 400 ms apart, then answers', inputSchema: { steps: z.number().int().min(1).max(10) } }, async ({ steps }, extra) => {
    for (let i = 1; i <= steps; i++) {
      await new Promise((r) => setTimeout(r, 400));
      await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: extra._meta?.progressToken ?? 'countdown', progress: i, total: steps } });
    }
    await new Promise((r) => setTimeout(r, 400));
    return { content: [{ type: 'text', text: 'liftoff' }] };
  });
  return server;
}

/** The same tools on the v2 SDK, served only as MCP 2026-07-28 (a 2025 client's initialize is refused -32022). */
const modernHandler = createMcpHandler(
  () => {
    const server = new V2McpServer({ name: 'e2e-modern-upstream', version: '1.0.0' });
    server.registerTool('echo', { description: 'Echoes the message', inputSchema: z.object({ message: z.string() }) }, async ({ message }) => ({ content: [{ type: 'text', text: `upstream says: ${message}` }] }));
    server.registerTool('delete_everything', { description: 'A dangerous tool a policy denies' }, async () => ({ content: [{ type: 'text', text: 'deleted' }] }));
    server.registerTool('fail', { description: 'Always fails' }, async () => ({ isError: true, content: [{ type: 'text', text: 'upstream tool failed' }] }));
    server.registerTool('countdown', { description: 'Reports progress, 100 ms apart, then answers', inputSchema: z.object({ steps: z.number().int().min(1).max(10) }) }, async ({ steps }, ctx) => {
      const token = ctx.mcpReq._meta?.progressToken;
      for (let i = 1; i <= steps; i++) {
        await new Promise((r) => setTimeout(r, 100));
        if (token !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps } });
      }
      return { content: [{ type: 'text', text: 'liftoff' }] };
    });
    return server;
  },
  { legacy: 'reject' },
);

/** Hands an Express request to a fetch-shaped handler and streams its answer back. */
async function serveFetch(req: ExpressRequest, res: ExpressResponse, handler: (request: Request) => Promise<Response>) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string' && name !== 'host' && name !== 'content-length') headers.set(name, value);
  const body = req.method === 'POST' ? JSON.stringify(req.body) : undefined;
  const answer = await handler(new Request(`http://127.0.0.1${req.originalUrl}`, { method: req.method, headers, body }));
  res.status(answer.status);
  for (const name of ['content-type', 'mcp-session-id', 'mcp-protocol-version', 'cache-control', 'allow']) {
    const value = answer.headers.get(name);
    if (value) res.setHeader(name, value);
  }
  res.flushHeaders();
  if (!answer.body) return void res.end();
  // A relayed server that goes away mid-stream (stopped at the end of a test) ends this answer too.
  const stream = Readable.fromWeb(answer.body as never);
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}

export interface UpstreamOptions {
  /** What answers at /mcp behind the upstream's OAuth: see the file's comment. */
  serve?: 'v1' | 'v2-modern' | { relayTo: string };
  resourceName?: string;
}

export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  const serve = options.serve ?? 'v1';
  let origin = '';
  const provider = new MemoryProvider(() => `${origin}/`);
  const log: LoggedRequest[] = [];
  const app = express();
  app.use((req, res, next) => {
    const entry: LoggedRequest = { method: req.method, path: req.path, authorization: req.headers.authorization ?? null };
    log.push(entry);
    // Recorded when the head is written, so it is known before the client reads any of the body.
    const writeHead = res.writeHead;
    res.writeHead = function (this: typeof res, ...args: Parameters<typeof writeHead>) {
      entry.status = typeof args[0] === 'number' ? args[0] : res.statusCode;
      return writeHead.apply(this, args);
    } as typeof writeHead;
    next();
  });

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const mcpUrl = `${origin}/mcp`;

  const noRateLimit = { rateLimit: false as const };
  app.use(
    mcpAuthRouter({
      provider,
      issuerUrl: new URL(`${origin}/`),
      resourceServerUrl: new URL(mcpUrl),
      scopesSupported: ['mcp:tools'],
      resourceName: options.resourceName ?? 'e2e upstream',
      authorizationOptions: noRateLimit,
      tokenOptions: noRateLimit,
      clientRegistrationOptions: noRateLimit,
      revocationOptions: noRateLimit,
    }),
  );
  app.post('/consent', express.urlencoded({ extended: false }), (req, res) => {
    try {
      res.redirect(302, provider.consent(String(req.body.request), String(req.body.action)));
    } catch (error) {
      res.status(400).type('text').send(String(error));
    }
  });
  app.all(
    '/mcp',
    requireBearerAuth({ verifier: provider, resourceMetadataUrl: `${origin}/.well-known/oauth-protected-resource/mcp` }),
    express.json(),
    async (req, res) => {
      log.findLast((r) => r.path === '/mcp' && r.rpc === undefined)!.rpc = typeof req.body?.method === 'string' ? req.body.method : undefined;
      if (serve === 'v2-modern') return serveFetch(req, res, (request) => modernHandler.fetch(request));
      if (typeof serve === 'object') {
        // The relayed server sees neither the upstream's token nor its host.
        return serveFetch(req, res, async (request) => {
          request.headers.delete('authorization');
          return fetch(serve.relayTo, { method: request.method, headers: request.headers, body: request.body, duplex: 'half', signal: AbortSignal.timeout(60_000) } as RequestInit);
        });
      }
      if (req.method !== 'POST') {
        res.status(405).set('allow', 'POST').end();
        return;
      }
      const server = mcpServer();
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    },
  );

  return {
    origin,
    mcpUrl,
    log,
    grants: provider.grants,
    issued: provider.issued,
    setAccessTtl: (s) => void (provider.accessTtlSeconds = s),
    expireAccessTokens: () => {
      for (const t of provider.accessTokens.values()) t.expiresAt = 0;
    },
    revokeAll: () => {
      provider.accessTokens.clear();
      provider.refreshTokens.clear();
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
