/**
 * End to end: every MCP client generation and negotiation mode in use against one real `wrangler dev`, each
 * with an API key and with the full OAuth flow (discovery, registration, the login and consent forms, PKCE):
 * the v1 SDK (`@modelcontextprotocol/sdk`, protocol 2025-11-25), and the v2 SDK (`@modelcontextprotocol/client`)
 * in its default (`legacy`, initialize) mode, in `auto` (probes `server/discover`, finds 2026-07-28) and pinned
 * to 2026-07-28 (no fallback). Each lists
 * tools, calls one that succeeds and one that fails, and the failing one must reach the caller as a tool
 * error naming the contract's code, not as an SDK validation error. Then the MCP Inspector's CLI.
 */
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError as V1UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport, UnauthorizedError as V2UnauthorizedError } from '@modelcontextprotocol/client';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-server.mjs';
import { node22Tools } from '../../scripts/node22.mjs';
import { ScriptedOAuthProvider } from '../helpers/mcp-oauth';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';

type Mode = 'v1' | 'v2 default' | 'v2 auto' | 'v2 pinned 2026-07-28';

/** The protocol version each mode must end up speaking with /mcp (v1 does not say). */
const NEGOTIATED: Record<Mode, string | undefined> = {
  v1: undefined,
  'v2 default': '2025-11-25',
  'v2 auto': '2026-07-28',
  'v2 pinned 2026-07-28': '2026-07-28',
};
type Credential = 'API key' | 'OAuth';

interface ToolResult {
  isError?: boolean;
  content: { type: string; text?: string }[];
  structuredContent?: Record<string, unknown>;
}

/** What the test needs of a connected client, whichever SDK generation it is. */
interface Connected {
  tools(): Promise<string[]>;
  call(name: string, args: Record<string, unknown>): Promise<ToolResult>;
  protocolVersion(): string | undefined;
  close(): Promise<void>;
}

const UNKNOWN_ACCOUNT = 'CHITTY-PEO-ZZZZZZZZZZ-ZZZ';

let server: TestServer;
let admin: Caller;
let adminKey: string;
let redirectUri: string;
const open: Connected[] = [];

function v1(client: V1Client): Connected {
  return {
    tools: async () => (await client.listTools()).tools.map((t) => t.name),
    call: async (name, args) => (await client.callTool({ name, arguments: args })) as ToolResult,
    protocolVersion: () => undefined,
    close: () => client.close(),
  };
}

function v2(client: V2Client): Connected {
  return {
    tools: async () => (await client.listTools()).tools.map((t) => t.name),
    call: async (name, args) => (await client.callTool({ name, arguments: args })) as ToolResult,
    protocolVersion: () => client.getNegotiatedProtocolVersion(),
    close: () => client.close(),
  };
}

const negotiation = (mode: Mode) =>
  mode === 'v2 auto' ? { versionNegotiation: { mode: 'auto' as const } } : mode === 'v2 pinned 2026-07-28' ? { versionNegotiation: { mode: { pin: '2026-07-28' as const } } } : {};

/** Connects with a bearer credential the host already has. */
async function connectWithKey(mode: Mode, key: string): Promise<Connected> {
  const url = new URL(`${server.url}/mcp`);
  const requestInit = { headers: { Authorization: `Bearer ${key}` } };
  if (mode === 'v1') {
    const client = new V1Client({ name: 'e2e-v1', version: '1.0.0' });
    await client.connect(new V1Transport(url, { requestInit }));
    return v1(client);
  }
  const client = new V2Client({ name: 'e2e-v2', version: '1.0.0' }, negotiation(mode));
  await client.connect(new V2Transport(url, { requestInit }));
  return v2(client);
}

/**
 * Connects as a host with no credential does: the first connect ends in UnauthorizedError after the SDK
 * discovered ChittyAuth, registered, and sent the (scripted) browser through login and consent; the host then
 * hands the code to finishAuth and connects again.
 */
async function connectWithOAuth(mode: Mode): Promise<{ connected: Connected; provider: ScriptedOAuthProvider }> {
  const url = new URL(`${server.url}/mcp`);
  const provider = new ScriptedOAuthProvider(redirectUri, admin, `e2e ${mode}`);
  if (mode === 'v1') {
    const first = new V1Client({ name: 'e2e-v1', version: '1.0.0' });
    await expect(first.connect(new V1Transport(url, { authProvider: provider }))).rejects.toBeInstanceOf(V1UnauthorizedError);
    await new V1Transport(url, { authProvider: provider }).finishAuth(provider.lastCode());
    const client = new V1Client({ name: 'e2e-v1', version: '1.0.0' });
    await client.connect(new V1Transport(url, { authProvider: provider }));
    return { connected: v1(client), provider };
  }
  const first = new V2Client({ name: 'e2e-v2', version: '1.0.0' }, negotiation(mode));
  await expect(first.connect(new V2Transport(url, { authProvider: provider }))).rejects.toBeInstanceOf(V2UnauthorizedError);
  // The callback's parameters as they arrived, so the SDK checks `iss` (RFC 9207) before the code.
  await new V2Transport(url, { authProvider: provider }).finishAuth(provider.trips.at(-1)!.trip.location.searchParams);
  const client = new V2Client({ name: 'e2e-v2', version: '1.0.0' }, negotiation(mode));
  await client.connect(new V2Transport(url, { authProvider: provider }));
  return { connected: v2(client), provider };
}

beforeAll(async () => {
  server = await startTestServer();
  admin = await server.admin();
  adminKey = await server.apiKey(admin);
  // Nothing listens here: the scripted browser only reads the Location that points at it.
  redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
});

afterAll(async () => {
  for (const c of open) await c.close().catch(() => {});
  await server?.stop();
});

const MODES: Mode[] = ['v1', 'v2 default', 'v2 auto', 'v2 pinned 2026-07-28'];
const CREDENTIALS: Credential[] = ['API key', 'OAuth'];

describe.each(MODES.flatMap((mode) => CREDENTIALS.map((credential) => ({ mode, credential }))))('/mcp with the $mode client and $credential', ({ mode, credential }) => {
  let client: Connected;

  beforeAll(async () => {
    if (credential === 'API key') client = await connectWithKey(mode, adminKey);
    else {
      const { connected, provider } = await connectWithOAuth(mode);
      client = connected;
      // The token is one ChittyAuth issued for /mcp through the forms, not the API key.
      const claims = JSON.parse(Buffer.from(provider.saved!.access_token.split('.')[1]!, 'base64url').toString());
      expect(claims).toMatchObject({ iss: server.url, sub: admin.chittyId, aud: `${server.url}/mcp` });
    }
    open.push(client);
  });

  it('negotiates the protocol version of its mode', () => {
    expect(client.protocolVersion()).toBe(NEGOTIATED[mode]);
  });

  it('lists the tools the caller may call', async () => {
    const tools = await client.tools();
    expect(tools).toEqual(expect.arrayContaining(['whoami', 'get_account', 'generate_api_key', 'check_permission']));
  });

  it('calls a tool that succeeds', async () => {
    const result = await client.call('whoami', {});
    expect(result.isError ?? false, JSON.stringify(result)).toBe(false);
    expect(result.structuredContent).toMatchObject({ chitty_id: admin.chittyId, credential: credential === 'API key' ? 'api_key' : 'access_token' });
  });

  it('calls a tool that fails and sees the contract error code, status and message', async () => {
    const result = await client.call('get_account', { chitty_id: UNKNOWN_ACCOUNT });
    expect(result.isError).toBe(true);
    const text = result.content.filter((c) => c.type === 'text').map((c) => c.text ?? '').join('\n');
    expect(text).toContain('NOT_FOUND');
    expect(text).toContain('404');
    expect(text).toContain(UNKNOWN_ACCOUNT);
  });
});

describe('the MCP Inspector CLI against /mcp', () => {
  const run = promisify(execFile);
  let catalog: string;

  beforeAll(() => {
    catalog = mkdtempSync(join(tmpdir(), 'chittyauth-inspector-'));
  });
  afterAll(() => rmSync(catalog, { recursive: true, force: true }));

  const inspector = async (...args: string[]) => {
    const tools = node22Tools();
    const { stdout } = await run(
      tools.node,
      [tools.inspector, '--cli', `${server.url}/mcp`, '--transport', 'http', '--header', `Authorization: Bearer ${adminKey}`, ...args],
      { env: { ...process.env, MCP_CATALOG_PATH: join(catalog, 'mcp.json'), NO_COLOR: '1' }, timeout: 60_000 },
    );
    return JSON.parse(stdout);
  };

  it('lists the tools with a bearer header', async () => {
    const listed = await inspector('--method', 'tools/list');
    expect(listed.tools.map((t: { name: string }) => t.name)).toEqual(expect.arrayContaining(['whoami', 'generate_api_key']));
  });

  it('calls a tool with a bearer header', async () => {
    const result = await inspector('--method', 'tools/call', '--tool-name', 'whoami');
    expect(result.isError ?? false).toBe(false);
    expect(result.structuredContent).toMatchObject({ chitty_id: admin.chittyId, credential: 'api_key' });
  });
});
