import { SELF } from 'cloudflare:test';
import { ORPCError } from '@orpc/client';
import { createClient } from '../../clients';
import type { ContractEntry } from '../../contract/walk';
import { expect } from 'vitest';
import { TOOL_ERROR_META } from '../../server/adapters/mcp';
import { callTool, ORIGIN } from './helpers';

/** What a call answered, in a door-neutral shape. */
export type Answer = { ok: true; value: unknown } | { ok: false; code: string; status: number; message: string };

/** `token` null: no Authorization header at all. */
const clientFor = (token: string | null) => createClient({ url: ORIGIN, ...(token === null ? {} : { apiKey: token }), fetch: (r) => SELF.fetch(r) });

/** The typed client over /rpc. */
export async function viaClient(entry: ContractEntry, input: unknown, token: string | null): Promise<Answer> {
  const fn = entry.path.reduce<any>((node, key) => node[key], clientFor(token));
  try {
    return { ok: true, value: await fn(input) };
  } catch (e) {
    if (e instanceof ORPCError) return { ok: false, code: e.code, status: e.status, message: e.message };
    throw e;
  }
}

/** REST as openapi.yaml describes it: path parameters in the path, GET inputs in the query, others in a JSON body. */
export function restRequest(entry: ContractEntry, input: unknown, token: string | null): Request {
  const rest: Record<string, unknown> = typeof input === 'object' && input !== null && !Array.isArray(input) ? { ...input } : {};
  const path = entry.route.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = rest[name];
    delete rest[name];
    return encodeURIComponent(String(value));
  });
  const url = new URL(`${ORIGIN}/v1${path}`);
  const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
  let body: string | undefined;
  if (entry.method === 'GET') {
    for (const [k, v] of Object.entries(rest)) url.searchParams.set(k, String(v));
  } else if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    body = JSON.stringify(input);
    headers['content-type'] = 'application/json';
  } else if (Object.keys(rest).length > 0 || entry.method !== 'DELETE') {
    body = JSON.stringify(rest);
    headers['content-type'] = 'application/json';
  }
  return new Request(url, { method: entry.method, headers, body });
}

export async function viaRest(entry: ContractEntry, input: unknown, token: string | null): Promise<Answer> {
  const res = await SELF.fetch(restRequest(entry, input, token));
  const body = (await res.json()) as any;
  if (res.ok) return { ok: true, value: body };
  return { ok: false, code: body.code, status: res.status, message: body.message };
}

/** The MCP tool the contract names for the procedure. */
export async function viaMcp(entry: ContractEntry, input: unknown, token: string | null): Promise<Answer> {
  const res = await callTool(entry.meta.tool!, input, token);
  if (res.status !== 200) return { ok: false, code: `HTTP_${res.status}`, status: res.status, message: JSON.stringify(res.body) };
  if (res.body.error) return { ok: false, code: 'JSONRPC_INVALID_PARAMS', status: 400, message: res.body.error.message };
  const result = res.body.result;
  if (result.isError) {
    // A tool error has no structuredContent (it would have to match the tool's outputSchema): the text names
    // the code, status and message, and _meta carries them machine-readable; both must agree.
    expect(result.structuredContent).toBeUndefined();
    const e = result._meta[TOOL_ERROR_META];
    expect(result.content).toEqual([{ type: 'text', text: `${e.code} (${e.status}): ${e.message}` }]);
    return { ok: false, code: e.code, status: e.status, message: e.message };
  }
  return { ok: true, value: result.structuredContent };
}

export const DOORS = { client: viaClient, rest: viaRest, mcp: viaMcp } as const;
export type DoorName = keyof typeof DOORS;

/** The doors a procedure is reachable through: MCP only when the contract names a tool. */
export const doorsOf = (entry: ContractEntry): DoorName[] => (entry.meta.tool ? ['client', 'rest', 'mcp'] : ['client', 'rest']);
