import { call, ORPCError, type AnyProcedure } from '@orpc/server';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { contract } from '../../contract';
import { buildToolManifest } from '../../contract/mcp-tools';
import { authenticate } from '../auth/authenticate';
import { Authorizer } from '../auth/authorizer';
import type { RequestContext } from '../context';
import { router } from '../router';
import { shapeError } from './errors';

/**
 * `/mcp`: MCP Streamable HTTP, stateless. A generic adapter over the contract: `tools/list` is the tool
 * manifest derived from the contract (filtered to what the caller may call), and `tools/call` runs the
 * same router procedure, through the same guard, as `/v1` and `/rpc`.
 */
let manifest: ReturnType<typeof buildToolManifest> | undefined;
const tools = () => (manifest ??= buildToolManifest(contract));

const procedureAt = (path: string[]) => path.reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], router) as AnyProcedure;

export const VERSION = '0.1.0';

function toolError(error: unknown): CallToolResult {
  try {
    shapeError(error);
  } catch (shaped) {
    error = shaped;
  }
  const e = error instanceof ORPCError ? error : new ORPCError('INTERNAL_SERVER_ERROR', { status: 500, message: 'Internal server error' });
  return {
    isError: true,
    content: [{ type: 'text', text: `${e.code} (${e.status}): ${e.message}` }],
    structuredContent: { error: { code: e.code, status: e.status, message: e.message, data: e.data ?? null } },
  };
}

function mcpServer(context: RequestContext, authz: Authorizer): Server {
  const server = new Server(
    { name: 'chittyauth', title: 'ChittyAuth', version: VERSION },
    {
      capabilities: { tools: { listChanged: false } },
      instructions: 'ChittyAuth: identities (ChittyIDs), API keys, JWTs, permissions, sessions and audit. Every tool is also a REST endpoint; see /docs.',
    },
  );

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const visible = [];
    for (const { entry, tool } of tools()) {
      if (entry.meta.public || !entry.meta.permission || (await authz.can(entry.meta.permission))) visible.push(tool);
    }
    return { tools: visible };
  });

  server.setRequestHandler(CallToolRequestSchema, async (request): Promise<CallToolResult> => {
    const found = tools().find(({ tool }) => tool.name === request.params.name);
    if (!found) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    try {
      const output = await call(procedureAt(found.entry.path), request.params.arguments ?? {}, { context });
      return { content: [{ type: 'text', text: JSON.stringify(output) }], structuredContent: output as Record<string, unknown> };
    } catch (error) {
      return toolError(error);
    }
  });
  return server;
}

export async function handleMcp(request: Request, context: RequestContext): Promise<Response> {
  if (request.method !== 'POST') {
    // Stateless: no server-initiated stream (GET) and no session to delete.
    return new Response(JSON.stringify({ error: 'method_not_allowed', message: 'This MCP endpoint is stateless: POST JSON-RPC messages' }), {
      status: 405,
      headers: { allow: 'POST', 'content-type': 'application/json' },
    });
  }
  // MCP authorization: a request without a valid credential is an HTTP 401 (RFC 6750 §3), before any JSON-RPC.
  const auth = await authenticate(context.env, context.db, context.authorization, context.audience, context.waitUntil);
  if (!auth.ok) {
    const error = auth.reason === 'missing' ? '' : `, error="invalid_token", error_description="${auth.reason.replace('_', ' ')}"`;
    return new Response(JSON.stringify({ error: auth.reason === 'missing' ? 'unauthorized' : 'invalid_token', message: `Authentication failed: ${auth.reason}` }), {
      status: 401,
      headers: { 'content-type': 'application/json', 'www-authenticate': `Bearer realm="chittyauth"${error}` },
    });
  }
  const authz = new Authorizer(context.db, auth.principal, null);
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  await mcpServer(context, authz).connect(transport);
  return transport.handleRequest(request);
}
