import { beforeAll, describe, expect, it } from 'vitest';
import { SHARDS, shardOf } from './shards';
import { contract } from '../../contract';
import { buildToolManifest } from '../../contract/mcp-tools';
import { walkContract } from '../../contract/walk';
import { DOORS, doorsOf, type Answer } from './doors';
import { fixtures } from './fixtures';
import { admin, apiKey, auditHead, auditSince, mcp, rest, type Caller } from './helpers';

/**
 * The doors can never disagree: for every procedure in the contract, the same call through the typed
 * client (/rpc), REST (/v1) and MCP (/mcp) gives the same answer, and the same denial.
 */
const allEntries = walkContract(contract);

/** Well-formed, but no such key exists. */
const INVALID_KEY = `chitty_${'0'.repeat(40)}`;
/** The audit log's name of each door. */
const AUDIT_DOOR: Record<string, string> = { client: 'rpc', rest: 'rest', mcp: 'mcp' };

const ID = /^(key|ses|grt|evt|kid|jti|cli|gnt|dev|idp)_[0-9a-z]{26}$/;
/** Values a procedure makes at random by design (PKCE verifier, state). */
const RANDOM_KEYS = ['state', 'code_verifier', 'code_challenge', 'authorization_url'];
/** server.json names embed the server id, which each door's fixture makes fresh. */
const VOLATILE_SUFFIX = /^(example\.mcp)\/[a-z0-9-]+$/;
const JWT = /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const CHITTY_ID = /^CHITTY-[A-Z]{3}-[A-Z0-9]+-[A-Z0-9]{3}$/;

/** Replaces what legitimately differs between two calls (fresh ids, secrets, times) with placeholders. */
function normalize(value: unknown, volatile: string[], stable: string[], key = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => normalize(v, volatile, stable));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v, volatile, stable, k)]));
  }
  if (typeof value === 'number' && ['iat', 'exp', 'nbf'].includes(key)) return '<epoch>';
  if (typeof value === 'number' && key === 'latency_ms') return '<ms>';
  if (typeof value !== 'string') return value;
  if (RANDOM_KEYS.includes(key)) return '<random>';
  if (volatile.includes(value)) return '<volatile>';
  const suffix = VOLATILE_SUFFIX.exec(value);
  if (suffix && volatile.some((v) => value.endsWith(`/${v}`))) return `${suffix[1]}/<volatile>`;
  // URLs with a fresh server in a path segment (its gateway route /gw/{server_id}/mcp).
  const segment = volatile.find((v) => value.includes(`/${v}/`));
  if (segment) return value.replace(`/${segment}/`, '/<volatile>/');
  // Permissions and scopes naming a fresh server (sync tokens: sync:state:read:{server_id}).
  const scoped = volatile.find((v) => value.endsWith(`:${v}`));
  if (scoped) return `${value.slice(0, -scoped.length)}<volatile>`;
  if (/^(cs|crt)_[A-Za-z0-9]{40,}$/.test(value)) return '<secret>';
  if (stable.includes(value)) return value;
  const id = ID.exec(value);
  if (id) return `<${id[1]}>`;
  if (JWT.test(value)) return '<jwt>';
  if (ISO.test(value)) return '<time>';
  if (CHITTY_ID.test(value)) return '<chitty_id>';
  if (/^chitty_[A-Za-z0-9]+$/.test(value)) return key === 'prefix' ? '<prefix>' : '<api_key>';
  return value;
}

/** Defines the suite for one shard of the contract's procedures (see shards.ts). */
export function defineParitySuite(shard: number): void {
  const entries = shardOf(allEntries, shard);
  let root: Caller;
  let rootKey: string;
  let deniedKey: string;

  beforeAll(async () => {
    root = await admin();
    // API keys work on all three doors (session tokens are for /v1 and /rpc only).
    rootKey = await apiKey(root);
    await mcp('tools/list', {}, rootKey); // sets last_used_at before anything compares it
    // A credential whose holder has no grants at all: an app identity with a key of its own. (A credential
    // whose holder has the grants but not the scopes gets an HTTP insufficient_scope challenge on /mcp
    // instead, which the OAuth tests cover.)
    const app = await rest('POST', '/v1/identities', { type: 'APP', display_name: 'No grants' }, root.token);
    const key = await rest('POST', '/v1/api-keys', { chitty_id: app.body.chitty_id, name: 'no grants' }, root.token);
    deniedKey = key.body.api_key;
  });

  describe(`contract parity (shard ${shard} of ${SHARDS})`, () => {
    it('has a parity case for every procedure in the contract', () => {
      expect(allEntries.length).toBeGreaterThanOrEqual(56);
      expect(allEntries.map((e) => e.name).filter((name) => !fixtures[name])).toEqual([]);
      // The shards together are the whole contract, each procedure once.
      const sharded = Array.from({ length: SHARDS }, (_, k) => shardOf(allEntries, k)).flat().map((e) => e.name);
      expect(sharded.sort()).toEqual(allEntries.map((e) => e.name).sort());
    });

    it.each(entries.map((e) => [e.name, e] as const))('%s gives the same answer through every door', async (name, entry) => {
      const answers: Partial<Record<string, unknown>> = {};
      const raw: Answer[] = [];
      for (const door of doorsOf(entry)) {
        const prepared = await fixtures[name]!(root);
        const answer = await DOORS[door](entry, prepared.input, rootKey);
        raw.push(answer);
        answers[door] = normalize(answer, prepared.volatile ?? [], [root.chittyId]);
      }
      // bootstrap is the one procedure whose valid call must fail once an admin exists.
      if (name === 'accounts.bootstrap') expect(raw.map((a) => (a.ok ? 'ok' : a.code))).toEqual(raw.map(() => 'CONFLICT'));
      else expect(raw.filter((a) => !a.ok)).toEqual([]);
      expect(answers.rest).toEqual(answers.client);
      if (entry.meta.tool) expect(answers.mcp).toEqual(answers.client);
    });

    const guarded = entries.filter((e) => !e.meta.public);
    it.each(guarded.map((e) => [e.name, e] as const))('%s denies the same through every door', async (name, entry) => {
      const prepared = await fixtures[name]!(root);
      const answers: Answer[] = [];
      const audited: unknown[] = [];
      for (const door of doorsOf(entry)) {
        const head = await auditHead();
        answers.push(await DOORS[door](entry, prepared.input, deniedKey));
        audited.push((await auditSince(head)).map(({ actor, action, target, outcome, detail }) => ({ actor, action, target, outcome, detail: JSON.parse(String(detail)) })));
      }
      // The same audit events through every door (a refused permission is always one `denied` event).
      for (const events of audited) expect(events).toEqual(audited[0]);
      const outcomes = answers.map((a) => (a.ok ? 'allowed' : `${a.code} ${a.status}`));
      if (entry.meta.permission === null) {
        // No permission declared: any caller passes the guard, and the procedure decides per object
        // (a server it may not see is a 404). The doors must still agree.
        expect(new Set(outcomes).size).toBe(1);
        return;
      }
      expect(outcomes).toEqual(answers.map(() => 'FORBIDDEN 403'));
      expect(audited[0]).toMatchObject([{ action: name, outcome: 'denied', detail: { code: 'FORBIDDEN', permission: entry.meta.permission } }]);
      if (!answers[0]!.ok) {
        for (const a of answers) expect(a).toMatchObject({ message: `Permission denied: this requires ${entry.meta.permission}` });
      }
    });

    // Without a valid credential every door answers 401 and writes the same audit event (audit/denials.ts):
    // one `denied` event naming the reason for an audited procedure, none for the others; only `door` differs.
    it.each(
      (['missing', 'invalid'] as const).flatMap((reason) => guarded.map((e) => [e.name, reason, e] as const)),
    )('%s refuses a call whose credential is %s the same through every door, with the same audit event', async (name, reason, entry) => {
      const token = reason === 'missing' ? null : INVALID_KEY;
      const seen: { door: string; status: number; events: Record<string, unknown>[] }[] = [];
      for (const door of doorsOf(entry)) {
        const prepared = await fixtures[name]!(root);
        const head = await auditHead();
        const answer = await DOORS[door](entry, prepared.input, token);
        const events = await auditSince(head);
        expect(answer.ok, `${door} let the call through`).toBe(false);
        seen.push({ door, status: answer.ok ? 200 : answer.status, events });
      }
      expect(seen.map((s) => s.status)).toEqual(seen.map(() => 401));
      for (const s of seen) expect(s.events.map((e) => e.door)).toEqual(s.events.map(() => AUDIT_DOOR[s.door]));
      const comparable = seen.map((s) => s.events.map(({ actor, action, target, outcome, detail }) => ({ actor, action, target, outcome, detail: JSON.parse(String(detail)) })));
      const expected = entry.meta.audit ? [{ actor: 'anonymous', action: name, target: null, outcome: 'denied', detail: { code: 'UNAUTHORIZED', reason } }] : [];
      for (const events of comparable) expect(events).toEqual(expected);
    });

    it('lists over MCP exactly the tools the caller may call', async () => {
      const all = buildToolManifest(contract).map(({ tool }) => tool.name).sort();
      const forRoot = (await mcp('tools/list', {}, rootKey)).body.result.tools.map((t: { name: string }) => t.name).sort();
      expect(forRoot).toEqual(all);
      const forDenied = (await mcp('tools/list', {}, deniedKey)).body.result.tools.map((t: { name: string }) => t.name).sort();
      const open = allEntries.filter((e) => e.meta.tool && e.meta.permission === null).map((e) => e.meta.tool).sort();
      expect(forDenied).toEqual(open);
    });
  });
}
