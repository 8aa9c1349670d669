import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { decrypt } from '../crypto/encryption';
import type { DB } from '../db/schema';
import type { Env } from '../env';
import { nowIso } from '../lib/time';
import { guardedFetch } from '../lib/outbound';
import type { ServerRow } from './servers.store';

/**
 * Health check: speaks MCP to the server with the MCP SDK's own client (v2, `auto` negotiation: it probes
 * `server/discover` and falls back to `initialize`, so 2026-07-28-only and 2025 servers are both seen as they
 * are), then tools/list, over the SSRF-guarded fetch, and records what it found.
 */
const CHECK_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 1 << 20;

export type Status = 'ready' | 'unauthorized' | 'error' | 'unreachable';

export interface HealthResult {
  status: Status;
  /** Set when the URL itself was refused (private address, redirect, oversized): an SSRF attempt or a misconfiguration. */
  refused: string | null;
  detail: string | null;
  latencyMs: number | null;
  protocolVersion: string | null;
  capabilities: Record<string, unknown> | null;
  tools: { name: string; title: string | null; description: string | null }[] | null;
}

/** We never validate tool output here, so the SDK's schema validator (ajv, which needs eval) is not needed. */
const noValidation = { getValidator: () => (input: unknown) => ({ valid: true as const, data: input, errorMessage: undefined }) };

export const secretAad = (serverId: string) => `mcp-server-secret:${serverId}`;

export type ProbeTarget = Pick<ServerRow, 'id' | 'mcp_url' | 'auth_type' | 'auth_config' | 'auth_secret_encrypted'>;

/**
 * `bearer`: for an OAuth upstream, an access token of the gateway's connection to it (servers.check passes its
 * owner's own, when the owner checks); without one such a server can only answer 401, and its tools stay unknown.
 */
export async function probeServer(env: Env, row: ProbeTarget, bearer: string | null = null): Promise<HealthResult> {
  const headers: Record<string, string> = {};
  const config = JSON.parse(row.auth_config) as { header_name?: string };
  if (row.auth_type === 'header' && config.header_name && row.auth_secret_encrypted) {
    headers[config.header_name] = await decrypt(env.ENCRYPTION_KEY, row.auth_secret_encrypted, secretAad(row.id));
  }
  if (row.auth_type === 'oauth' && bearer) headers.authorization = `Bearer ${bearer}`;
  const started = Date.now();
  const client = new Client({ name: 'chittyauth-portal', version: '0.1.0' }, { jsonSchemaValidator: noValidation as never, versionNegotiation: { mode: 'auto' } });
  const fetch = guardedFetch(env, { timeoutMs: CHECK_TIMEOUT_MS, maxBytes: MAX_RESPONSE_BYTES });
  const transport = new StreamableHTTPClientTransport(new URL(row.mcp_url), { requestInit: { headers }, fetch });
  try {
    await withTimeout(client.connect(transport), CHECK_TIMEOUT_MS);
    const latencyMs = Date.now() - started;
    const caps = client.getServerCapabilities() ?? {};
    const tools = caps.tools ? (await withTimeout(client.listTools(), CHECK_TIMEOUT_MS)).tools : [];
    return {
      status: 'ready',
      refused: null,
      detail: null,
      latencyMs,
      protocolVersion: client.getNegotiatedProtocolVersion() ?? null,
      capabilities: caps as Record<string, unknown>,
      tools: tools.slice(0, 500).map((t) => ({ name: t.name, title: t.title ?? null, description: t.description?.slice(0, 1000) ?? null })),
    };
  } catch (error) {
    if (fetch.refused) return { status: 'unreachable', refused: fetch.refused.message, detail: fetch.refused.message, latencyMs: null, protocolVersion: null, capabilities: null, tools: null };
    return { status: classify(error), refused: null, detail: describe(error), latencyMs: null, protocolVersion: null, capabilities: null, tools: null };
  } finally {
    await client.close().catch(() => {});
  }
}

function classify(error: unknown): Status {
  const text = describe(error);
  if (/\b401\b|\b403\b|unauthorized|invalid_token/i.test(text)) return 'unauthorized';
  if (/fetch failed|network|ECONNREFUSED|timed out|timeout|abort/i.test(text)) return 'unreachable';
  return 'error';
}

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error)).slice(0, 500);

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

export async function recordHealth(db: DB, serverId: string, r: HealthResult): Promise<void> {
  await db
    .updateTable('mcp_servers')
    .set({
      status: r.status,
      status_detail: r.detail,
      latency_ms: r.latencyMs,
      checked_at: nowIso(),
      ...(r.status === 'ready' ? { protocol_version: r.protocolVersion, capabilities: JSON.stringify(r.capabilities), tools: JSON.stringify(r.tools) } : {}),
    })
    .where('id', '=', serverId)
    .execute();
}

/** The scheduled re-check: the servers checked longest ago first, a bounded number per run. */
export async function recheckServers(env: Env, db: DB, limit = 25): Promise<number> {
  const rows = await db.selectFrom('mcp_servers').selectAll().orderBy('checked_at', 'asc').limit(limit).execute();
  for (const row of rows) await recordHealth(db, row.id, await probeServer(env, row));
  return rows.length;
}
