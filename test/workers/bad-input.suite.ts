import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { SHARDS, shardOf } from './shards';
import { contract } from '../../contract';
import { toJsonSchemaOf } from '../../contract/json-schema';
import { walkContract, type ContractEntry } from '../../contract/walk';
import { DOORS, doorsOf, type DoorName } from './doors';
import { fixtures } from './fixtures';
import { admin, apiKey, mcp, snapshotDatabase, type Caller } from './helpers';

/**
 * For every procedure, inputs that break its schema get a 4xx naming the field on every door
 * (an MCP tool error on /mcp), never a 500, and leave the database exactly as it was.
 * The bad inputs are derived from each procedure's own JSON Schema, not written by hand.
 */
type Json = { type?: string; properties?: Record<string, Json>; required?: string[]; maxLength?: number; enum?: unknown[]; anyOf?: Json[]; items?: Json; additionalProperties?: Json | boolean };

/** A field of free-form JSON: an object whose values may be anything (`additionalProperties: {}`). */
const freeForm = (s: Json) => s.type === 'object' && typeof s.additionalProperties === 'object' && Object.keys(s.additionalProperties).length === 0 && !s.properties;

/** JSON nested `depth` levels deep, which JSON.parse accepts and recursive code cannot walk. */
function deeplyNested(depth: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let node = root;
  for (let i = 0; i < depth; i++) node = (node.a = {}) as Record<string, unknown>;
  return root;
}

interface BadCase {
  label: string;
  input: unknown;
  /** The field the error message must name. */
  field: string;
  doors: DoorName[];
}

const allEntries = walkContract(contract);
const inputSchema = (e: ContractEntry) => toJsonSchemaOf(e.procedure['~orpc'].inputSchema as never, 'input') as Json;
const pathParams = (e: ContractEntry) => [...e.route.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);

function wrongType(s: Json): unknown {
  if (s.anyOf) return true;
  switch (s.type) {
    case 'string':
      return s.enum ? 'not-a-valid-choice' : 12345;
    case 'number':
    case 'integer':
      return 'not-a-number';
    case 'boolean':
      return 'not-a-boolean';
    case 'array':
      return 'not-an-array';
    default:
      return 42;
  }
}

/** REST carries path and GET query values as text: a non-string can't be sent there, so that case is for the other doors. */
function restCanCarry(e: ContractEntry, field: string, s: Json): boolean {
  const inUrl = pathParams(e).includes(field) || e.method === 'GET';
  return !(inUrl && s.type === 'string' && !s.enum);
}

export function badCases(e: ContractEntry, valid: Record<string, unknown>): BadCase[] {
  const schema = inputSchema(e);
  const all = doorsOf(e);
  const without = (d: DoorName) => all.filter((x) => x !== d);
  const cases: BadCase[] = [{ label: 'an unknown extra field', input: { ...valid, junk_field: 'junk' }, field: 'junk_field', doors: all }];
  cases.push({ label: 'a non-object input', input: 'not an object', field: '(input)', doors: e.method === 'GET' || pathParams(e).length ? without('rest') : all });

  for (const [field, s] of Object.entries(schema.properties ?? {})) {
    const inPath = pathParams(e).includes(field);
    if (schema.required?.includes(field)) {
      const { [field]: _, ...rest } = valid;
      cases.push({ label: `${field} missing`, input: rest, field, doors: inPath ? without('rest') : all });
    }
    cases.push({ label: `${field} of the wrong type`, input: { ...valid, [field]: wrongType(s) }, field, doors: restCanCarry(e, field, s) ? all : without('rest') });
    if (s.type === 'string' && s.maxLength !== undefined) {
      const inUrl = inPath || e.method === 'GET';
      cases.push({ label: `${field} oversized`, input: { ...valid, [field]: 'x'.repeat(inUrl ? s.maxLength + 1 : 100_000) }, field, doors: all });
    }
    if (s.type === 'array') cases.push({ label: `${field} with an item of the wrong type`, input: { ...valid, [field]: [{ nested: true }] }, field, doors: all });
    if (freeForm(s)) {
      // 200 levels: deep enough to break the limit, shallow enough for the typed client to serialize (json-depth.test.ts sends 30,000 raw).
      cases.push({ label: `${field} nested 200 levels deep`, input: { ...valid, [field]: deeplyNested(200) }, field, doors: all });
      cases.push({ label: `${field} with an array of 1,001 entries`, input: { ...valid, [field]: { list: Array.from({ length: 1001 }, () => 0) } }, field, doors: all });
    }
  }
  return cases;
}

/** last_used_at / last_seen_at record that a credential was used, not anything the input asked for. */
function withoutCredentialBookkeeping(snapshot: Record<string, unknown[]>) {
  return Object.fromEntries(
    Object.entries(snapshot).map(([table, rows]) => [
      table,
      rows.map((r) => {
        const { last_used_at: _u, last_seen_at: _s, ...rest } = r as Record<string, unknown>;
        return rest;
      }),
    ]),
  );
}

/** Defines the suite for one shard of the contract's procedures (see shards.ts). */
export function defineBadInputSuite(shard: number): void {
  const entries = shardOf(allEntries, shard);
  let root: Caller;
  let rootKey: string;

  beforeAll(async () => {
    root = await admin();
    rootKey = await apiKey(root);
    await mcp('tools/list', {}, rootKey);
  });

  describe(`contract bad input (shard ${shard} of ${SHARDS})`, () => {
    it('declares a maxLength for every string input, so oversized input is refused', () => {
      const unbounded = allEntries.flatMap((e) =>
        Object.entries(inputSchema(e).properties ?? {})
          .filter(([, s]) => s.type === 'string' && !s.enum && s.maxLength === undefined)
          .map(([field]) => `${e.name}.${field}`),
      );
      expect(unbounded).toEqual([]);
    });

    it.each(entries.map((e) => [e.name, e] as const))('%s refuses bad input on every door and writes nothing', async (name, entry) => {
      const { input } = await fixtures[name]!(root);
      const cases = badCases(entry, input);
      expect(cases.length).toBeGreaterThanOrEqual(2);
      const before = withoutCredentialBookkeeping(await snapshotDatabase());
      // Every case is independent and must fail validation, so they run concurrently.
      const answers = await Promise.all(
        cases.flatMap((c) => c.doors.map(async (door) => ({ c, door, a: await DOORS[door](entry, c.input, rootKey) }))),
      );
      const failures = answers
        .filter(({ c, door, a }) => {
          const ok =
            !a.ok &&
            ((a.code === 'BAD_REQUEST' && a.status === 400 && a.message.includes(c.field)) ||
              (door === 'mcp' && c.field === '(input)' && a.code === 'JSONRPC_INVALID_PARAMS'));
          return !ok;
        })
        .map(({ c, door, a }) => `${door} · ${c.label}: ${JSON.stringify(a).slice(0, 300)}`);
      expect(failures).toEqual([]);
      expect(withoutCredentialBookkeeping(await snapshotDatabase())).toEqual(before);
      void env;
    });
  });
}
