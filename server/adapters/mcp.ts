import { call, ORPCError, type AnyProcedure } from '@orpc/server';
import {
  createMcpHandler,
  isLegacyRequest,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  WebStandardStreamableHTTPServerTransport,
  type AuthInfo,
  type CallToolResult,
  type McpHttpHandler,
} from '@modelcontextprotocol/server';
import { contract } from '../../contract';
import { buildToolManifest } from '../../contract/mcp-tools';
import { authenticate } from '../auth/authenticate';
import { challengeResponse, originAllowed, scopeFor, unauthorizedChallenge } from '../oauth/challenge';
import { auditScopeRefusal, auditUnauthenticated } from './mcp-denials';
import { scopesAllow } from '../permissions/policy';
import { Authorizer } from '../auth/authorizer';
import type { RequestContext } from '../context';
import { router } from '../router';
import { shapeError } from './errors';
import { installMcpFastFail } from './mcp-fast-fail';
import { MAX_TOOL_RESULT_BYTES, refuseMessage, SERVED_VERSIONS } from './mcp-wire';

installMcpFastFail();

/**
 * `/mcp`: MCP Streamable HTTP, stateless. A generic adapter over the contract: `tools/list` is the tool
 * manifest derived from the contract (filtered to what the caller may call), and `tools/call` runs the
 * same router procedure, through the same guard, as `/v1` and `/rpc`.
 */
let manifest: ReturnType<typeof buildToolManifest> | undefined;
const tools = () => (manifest ??= buildToolManifest(contract));

const procedureAt = (path: string[]) => path.reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], router) as AnyProcedure;

export const VERSION = '0.1.0';

/** The `_meta` key of a failed tool call's error: `{code, status, message, data}` as on `/v1`. */
export const TOOL_ERROR_META = 'cc.chitty/error';

function toolError(error: unknown): CallToolResult {
  try {
    shapeError(error);
  } catch (shaped) {
    error = shaped;
  }
  const e = error instanceof ORPCError ? error : new ORPCError('INTERNAL_SERVER_ERROR', { status: 500, message: 'Internal server error' });
  // A tool error is a result (MCP "Error Handling": isError), readable by every client: the text names the
  // contract's code, status and message. No structuredContent: it must match the tool's outputSchema
  // (MCP 2025-06-18+ "Structured Content"), and clients reject a result whose structuredContent does not,
  // hiding the real error. The same fields, machine-readable, go in the result's _meta.
  return {
    isError: true,
    content: [{ type: 'text', text: `${e.code} (${e.status}): ${e.message}` }],
    _meta: { [TOOL_ERROR_META]: { code: e.code, status: e.status, message: e.message, data: e.data ?? null } },
  };
}

function mcpServer(context: RequestContext, authz: Authorizer): Server {
  const server = new Server(
    { name: 'chittyauth', title: 'ChittyAuth', version: VERSION },
    {
      capabilities: { tools: { listChanged: false } },
      instructions: 'ChittyAuth: identities (ChittyIDs), API keys, JWTs, permissions, sessions and audit. Every tool is also a REST endpoint; see /docs.',
      // tools/list depends on the caller's grants: never shared, never cached (MCP 2026-07-28 "Caching").
      cacheHints: { 'tools/list': { ttlMs: 0, cacheScope: 'private' }, 'server/discover': { ttlMs: 0, cacheScope: 'private' } },
    },
  );

  server.setRequestHandler('tools/list', async () => {
    const visible = [];
    for (const { entry, tool } of tools()) {
      if (entry.meta.public || !entry.meta.permission || (await authz.can(entry.meta.permission))) visible.push(tool);
    }
    return { tools: visible };
  });

  server.setRequestHandler('tools/call', async (request): Promise<CallToolResult> => {
    const found = toolNamed(request.params.name);
    if (!found) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    return runTool(found, request.params.arguments, context);
  });
  return server;
}

const toolNamed = (name: unknown) => tools().find(({ tool }) => tool.name === name);

/** One tools/call: the tool's router procedure, through the same guard as /v1 and /rpc; failures are tool errors. */
async function runTool(found: NonNullable<ReturnType<typeof toolNamed>>, args: Record<string, unknown> | undefined, context: RequestContext): Promise<CallToolResult> {
  try {
    // `path` names the procedure for the guard (the audit event's action), as the REST and RPC routers do.
    const output = await call(procedureAt(found.entry.path), args ?? {}, { context, path: found.entry.path });
    const text = JSON.stringify(output);
    // One request cannot fan out into an unbounded answer: past the ceiling the caller is told to page.
    if (text.length > MAX_TOOL_RESULT_BYTES) {
      return toolError(new ORPCError('PAYLOAD_TOO_LARGE', { status: 413, message: `The result is larger than ${MAX_TOOL_RESULT_BYTES} bytes; ask for less (a smaller limit, a narrower filter)` }));
    }
    return { content: [{ type: 'text', text }], structuredContent: output as Record<string, unknown> };
  } catch (error) {
    return toolError(error);
  }
}

/** Off only in the test that holds the direct path to the SDK's answers (server/adapters/mcp.test.ts). */
let directToolsCall = true;
export const setDirectToolsCall = (on: boolean) => void (directToolsCall = on);
/** How many tools/call the direct path answered (so that test knows which path answered). */
export let directAnswers = 0;

/**
 * The hot path, a 2025 client's `tools/call` answered as JSON, served without building the SDK's per-request
 * Server and transport (a tenth of the request's CPU): only a message the SDK would certainly accept and answer
 * with the tool's result, so the answer is the one the SDK gives (a test compares the two). Anything else (another
 * method, an unknown tool, an unusual header or field) is null and goes to the SDK.
 */
function directRequest(request: Request, body: unknown): { id: string | number; found: NonNullable<ReturnType<typeof toolNamed>>; args?: Record<string, unknown> } | null {
  if (!directToolsCall || typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const m = body as Record<string, unknown>;
  if (m.jsonrpc !== '2.0' || m.method !== 'tools/call' || Object.keys(m).length !== 4) return null;
  if (!(typeof m.id === 'string' || Number.isSafeInteger(m.id))) return null;
  const params = m.params as Record<string, unknown> | undefined;
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return null;
  if (Object.keys(params).some((k) => k !== 'name' && k !== 'arguments')) return null;
  const args = params.arguments;
  if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) return null;
  // The 2025 Streamable HTTP transport's own checks (the SDK answers 406 / 415 / 400 otherwise).
  const accept = request.headers.get('accept') ?? '';
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) return null;
  if (!(request.headers.get('content-type') ?? '').includes('application/json')) return null;
  if (request.headers.has('mcp-session-id')) return null;
  const found = toolNamed(params.name);
  return found ? { id: m.id as string | number, found, args: args as Record<string, unknown> | undefined } : null;
}

/** What both MCP doors (HTTP and the WebSocket upgrade) refuse before looking at a credential: a foreign Origin, a token in the URL. */
export function refuseBeforeAuth(request: Request, env: RequestContext['env']): Response | null {
  if (!originAllowed(env, request.headers.get('origin'))) {
    return new Response(JSON.stringify({ error: 'forbidden_origin', message: 'Requests from this Origin are not allowed (DNS rebinding protection)' }), { status: 403, headers: { 'content-type': 'application/json' } });
  }
  // OAuth 2.1 §5.1.1 forbids access tokens in the query string.
  const url = new URL(request.url);
  if (url.searchParams.has('access_token')) return challengeResponse(env, 400, { error: 'invalid_request', description: 'tokens in the query string are refused' }, 'Send the token in the Authorization header, never in the URL');
  return null;
}

export async function handleMcp(request: Request, context: RequestContext): Promise<Response> {
  const { env } = context;
  const refusedEarly = refuseBeforeAuth(request, env);
  if (refusedEarly) return refusedEarly;
  if (request.method !== 'POST') {
    // Stateless: no server-initiated stream (GET) and no session to delete.
    return new Response(JSON.stringify({ error: 'method_not_allowed', message: 'This MCP endpoint is stateless: POST JSON-RPC messages' }), {
      status: 405,
      headers: { allow: 'POST', 'content-type': 'application/json' },
    });
  }
  // MCP authorization: without a valid token, an HTTP 401 pointing at the protected resource metadata (RFC 9728 §5.1).
  const auth = await authenticate(env, context.db, context.authorization, context.audience, context.waitUntil);
  if (!auth.ok) {
    await auditUnauthenticated(context, await request.text(), auth.reason);
    return unauthorizedChallenge(env, auth.reason);
  }
  const authz = new Authorizer(context.db, auth.principal, null);
  // The body is read once (index.ts has capped its size): parsed here for the scope check and handed to the
  // transport as is; a body that is not JSON goes to the transport unread, which answers with its parse error.
  const text = await request.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const refused = body === undefined ? null : refuseMessage(request, body);
  if (refused) return refused;
  const stepUp = await insufficientScope(body ?? null, authz);
  if (stepUp) {
    await auditScopeRefusal(context, body, auth.principal);
    return challengeResponse(env, 403, { error: 'insufficient_scope', scope: stepUp, description: `this tool needs the ${stepUp} scope` }, `Insufficient scope: request ${stepUp}`);
  }

  const direct = plainlyLegacy(request, body) ? directRequest(request, body) : null;
  if (direct) {
    const result = await runTool(direct.found, direct.args, { ...context, preauthenticated: auth.principal });
    directAnswers++;
    return new Response(JSON.stringify({ result, jsonrpc: '2.0', id: direct.id }), { status: 200, headers: { 'content-type': 'application/json' } });
  }
  const serve = () => mcpServer({ ...context, preauthenticated: auth.principal }, authz);
  // 2025 clients (no per-request _meta envelope) keep the stateless JSON answers they have always had; a body
  // that is not JSON goes there unread, and that transport answers with its parse error.
  if (body === undefined || plainlyLegacy(request, body) || (await isLegacyRequest(request, body))) {
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    await serve().connect(transport);
    return body === undefined ? transport.handleRequest(new Request(request, { body: text })) : transport.handleRequest(request, { parsedBody: body });
  }
  // MCP 2026-07-28: the SDK's per-request entry validates the envelope, the version (-32022) and the
  // Mcp-Method / Mcp-Name headers against the body (-32020), and answers server/discover.
  const authInfo: AuthInfo = { token: '', clientId: auth.principal.clientId ?? '', scopes: auth.principal.scopes, extra: { [SERVE]: serve } };
  return withServedVersions(await modern().fetch(request, { parsedBody: body, authInfo }), body);
}

/** The 2025 versions, which negotiate with initialize and name themselves in MCP-Protocol-Version. */
const LEGACY_VERSIONS = new Set(['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25']);

/**
 * A request `isLegacyRequest` would certainly call legacy, decided without it (it costs a tenth of a request's
 * CPU): one JSON-RPC message with no `_meta` envelope claim and no modern MCP-Protocol-Version header, which is
 * exactly its documented rule for "true". Anything else (a batch, any `_meta`, another header) is left to it.
 */
export function plainlyLegacy(request: Request, body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const params = (body as { params?: unknown }).params;
  if (params !== undefined && (typeof params !== 'object' || params === null || '_meta' in params)) return false;
  const version = request.headers.get('mcp-protocol-version');
  return version === null || LEGACY_VERSIONS.has(version);
}

/**
 * server/discover and UnsupportedProtocolVersionError (-32022) list the versions this endpoint serves: the SDK's
 * modern entry names only 2026-07-28, but the same URL serves the 2025 versions through `initialize`
 * (MCP 2026-07-28 "Versioning and Compatibility": the error lists "the versions it does support").
 */
async function withServedVersions(response: Response, body: unknown): Promise<Response> {
  const method = (body as { method?: unknown } | null)?.method;
  if (method !== 'server/discover' && response.status !== 400) return response;
  if (!response.headers.get('content-type')?.includes('application/json')) return response;
  const answer = (await response.json()) as { result?: { supportedVersions?: string[] }; error?: { code?: number; data?: { supported?: string[] } } };
  if (answer.result?.supportedVersions) answer.result.supportedVersions = [...SERVED_VERSIONS];
  if (answer.error?.code === -32022 && answer.error.data) answer.error.data.supported = [...SERVED_VERSIONS];
  return new Response(JSON.stringify(answer), { status: response.status, headers: response.headers });
}

/**
 * The 2026-07-28 entry, one per isolate (it holds no caller state between requests). Its factory builds each
 * request's server from the caller that handleMcp authenticated, handed over in `authInfo` (which the SDK
 * passes through untouched and never derives from headers).
 */
const SERVE = 'cc.chitty/serve';
let modernEntry: McpHttpHandler | undefined;
const modern = () =>
  (modernEntry ??= createMcpHandler(({ authInfo }) => (authInfo?.extra?.[SERVE] as () => Server)(), { legacy: 'reject', responseMode: 'auto' }));

/**
 * A tools/call the caller's grants allow but its token's scopes do not is an HTTP 403 insufficient_scope
 * challenge, so the client can step up (MCP "Scope Challenge Handling"). Missing grants stay a tool error.
 */
async function insufficientScope(body: unknown, authz: Authorizer): Promise<string | null> {
  const messages = Array.isArray(body) ? body : [body];
  for (const m of messages) {
    if (!m || typeof m !== 'object' || (m as { method?: unknown }).method !== 'tools/call') continue;
    const name = (m as { params?: { name?: unknown } }).params?.name;
    const found = tools().find(({ tool }) => tool.name === name);
    const permission = found?.entry.meta.permission;
    if (!found || found.entry.meta.public || !permission) continue;
    if (scopesAllow(authz.principal.scopes, permission)) continue;
    if (await authz.heldByGrants(permission)) return scopeFor(permission, (s, p) => scopesAllow([s], p));
  }
  return null;
}
