import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, apiKey, auditHead, auditSince, callTool, ORIGIN, query, rest, user, type Caller } from '../../test/workers/helpers';

let root: Caller;
beforeAll(async () => {
  root = await admin();
});

const verify = async () => {
  const res = await rest('POST', '/v1/audit/verify', {}, root.token);
  expect(res.status).toBe(200);
  return res.body as { valid: boolean; checked: number; problems: { seq: number; problem: string }[] };
};
/** POSTs to the RPC door (oRPC RPC protocol: the input wrapped as { json }). */
const fetchRpc = (path: string, body: unknown, token: string) =>
  SELF.fetch(`${ORIGIN}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
const events = (filter: string) => rest('GET', `/v1/audit/events${filter}`, undefined, root.token);

/** Runs `tamper`, then puts the row back exactly as it was, so later tests see a clean chain. */
async function withTamperedRow<T>(seq: number, tamper: () => Promise<unknown>, check: () => Promise<T>): Promise<T> {
  const [original] = await query('SELECT * FROM audit_events WHERE seq = ?', seq);
  try {
    await tamper();
    return await check();
  } finally {
    const cols = Object.keys(original!);
    await env.DB.prepare('DELETE FROM audit_events WHERE seq = ?').bind(seq).run();
    await env.DB.prepare(`INSERT INTO audit_events (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`)
      .bind(...cols.map((c) => original![c]))
      .run();
  }
}

describe('audit (events appended by the guard)', () => {
  it('appends who, what, target, door and outcome for a REST mutation', async () => {
    const u = await user();
    const head = await auditHead();
    const made = await rest('POST', '/v1/api-keys', { name: 'audited' }, u.token);
    const [event, ...others] = await auditSince(head);
    expect(others).toEqual([]);
    expect(event).toMatchObject({ seq: head + 1, actor: u.chittyId, action: 'apiKeys.create', target: made.body.key_id, door: 'rest', outcome: 'success' });
    expect(JSON.parse(event!.detail)).toMatchObject({ owner: u.chittyId, credential: expect.stringMatching(/^ses_/) });
    expect(event!.detail).not.toContain(made.body.api_key);
  });

  it('records the MCP door and the action for an MCP tool call', async () => {
    const u = await user();
    const key = await apiKey(u);
    const head = await auditHead();
    const res = await callTool('generate_jwt', { claims: { via: 'mcp' } }, key);
    expect(res.body.result.isError).toBeFalsy();
    expect(await auditSince(head)).toMatchObject([{ actor: u.chittyId, action: 'jwt.generate', door: 'mcp', outcome: 'success', target: res.body.result.structuredContent.jti }]);
  });

  it('records the RPC door', async () => {
    const u = await user();
    const head = await auditHead();
    const res = await fetchRpc('/rpc/apiKeys/create', { json: { name: 'rpc key' } }, u.token);
    expect(res.status).toBe(200);
    expect(await auditSince(head)).toMatchObject([{ actor: u.chittyId, action: 'apiKeys.create', door: 'rpc', outcome: 'success' }]);
  });

  it('records a denial with the missing permission, and a failed sign-in for the account', async () => {
    const u = await user();
    const head = await auditHead();
    await rest('POST', '/v1/jwt/keys/rotate', {}, u.token);
    await rest('POST', '/v1/accounts/sign-in', { username: u.username, password: 'not the password' });
    const [denied, failed] = await auditSince(head);
    expect(denied).toMatchObject({ actor: u.chittyId, action: 'jwt.rotateKeys', door: 'rest', outcome: 'denied' });
    expect(JSON.parse(denied!.detail)).toMatchObject({ permission: 'jwt:keys:rotate' });
    expect(failed).toMatchObject({ actor: 'anonymous', action: 'accounts.signIn', target: u.chittyId, outcome: 'failure' });
    expect(failed!.detail).not.toContain('not the password');
  });

  it('appends nothing for reads and for input that fails validation', async () => {
    const u = await user();
    const head = await auditHead();
    await rest('GET', '/v1/api-keys', undefined, u.token);
    await rest('POST', '/v1/permissions/check', { permission: 'api_keys:generate' }, u.token);
    await rest('POST', '/v1/api-keys', { name: '' }, u.token);
    expect(await auditSince(head)).toEqual([]);
  });
});

describe('audit.list', () => {
  it('filters by actor, action, outcome, door and since, newest first', async () => {
    const u = await user();
    const since = new Date().toISOString();
    const key = await apiKey(u);
    await rest('POST', '/v1/jwt', {}, u.token);
    await rest('POST', '/v1/jwt/keys/rotate', {}, u.token);
    await callTool('generate_jwt', {}, key);

    const mine = await events(`?actor=${u.chittyId}&since=${since}`);
    expect(mine.status).toBe(200);
    expect(mine.body.items.map((e: { action: string; door: string; outcome: string }) => [e.action, e.door, e.outcome])).toEqual([
      ['jwt.generate', 'mcp', 'success'],
      ['jwt.rotateKeys', 'rest', 'denied'],
      ['jwt.generate', 'rest', 'success'],
      ['apiKeys.create', 'rest', 'success'],
    ]);
    const seqs = mine.body.items.map((e: { seq: number }) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));

    const byAction = await events(`?action=jwt.generate&actor=${u.chittyId}`);
    expect(byAction.body.items.map((e: { door: string }) => e.door)).toEqual(['mcp', 'rest']);
    const denied = await events(`?outcome=denied&actor=${u.chittyId}`);
    expect(denied.body.items).toMatchObject([{ action: 'jwt.rotateKeys', outcome: 'denied' }]);
    const viaMcp = await events(`?door=mcp&actor=${u.chittyId}`);
    expect(viaMcp.body.items).toMatchObject([{ action: 'jwt.generate', door: 'mcp' }]);
    const future = await events(`?since=${new Date(Date.now() + 60_000).toISOString()}`);
    expect(future.body.items).toEqual([]);
    const all = await events('?limit=200');
    expect(all.body.items.every((e: { at: string }) => typeof e.at === 'string')).toBe(true);
    expect(all.body.items.some((e: { actor: string }) => e.actor !== u.chittyId)).toBe(true);
  });

  it('pages with a cursor without skipping or repeating events', async () => {
    const total = await auditHead();
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const res: Awaited<ReturnType<typeof events>> = await events(`?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...res.body.items.map((e: { seq: number }) => e.seq));
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => total - i));
  });

  it.each([['?door=smtp'], ['?outcome=maybe'], ['?since=yesterday']])('answers 400 for %s', async (filter) => {
    expect((await events(filter)).status).toBe(400);
  });

  it('refuses a user with 403', async () => {
    const u = await user();
    expect((await rest('GET', '/v1/audit/events', undefined, u.token)).status).toBe(403);
    expect((await rest('POST', '/v1/audit/verify', {}, u.token)).status).toBe(403);
  });
});

describe('audit.verify', () => {
  it('reports a clean chain as valid, having checked every event', async () => {
    await apiKey(await user());
    const result = await verify();
    expect(result).toEqual({ valid: true, checked: await auditHead(), problems: [] });
    const rows = await query<{ seq: number; prev_hash: string; hash: string }>('SELECT seq, prev_hash, hash FROM audit_events ORDER BY seq');
    expect(rows[0]!.prev_hash).toBe('0'.repeat(64));
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
  });

  it.each([
    ['action', 'apiKeys.validate'],
    ['actor', 'CHITTY-PEO-SOMEONE-AAA'],
    ['outcome', 'success'],
    ['detail', '{}'],
  ])('reports the one event whose %s was edited as hash_mismatch', async (column, value) => {
    await rest('POST', '/v1/jwt/keys/rotate', {}, (await user()).token);
    await apiKey(await user());
    const head = await auditHead();
    const [target] = await query<{ seq: number }>("SELECT seq FROM audit_events WHERE outcome = 'denied' ORDER BY seq DESC LIMIT 1");
    expect(target!.seq).toBeLessThan(head);
    const result = await withTamperedRow(
      target!.seq,
      () => env.DB.prepare(`UPDATE audit_events SET ${column} = ? WHERE seq = ?`).bind(value, target!.seq).run(),
      verify,
    );
    expect(result).toEqual({ valid: false, checked: head, problems: [{ seq: target!.seq, problem: 'hash_mismatch' }] });
    expect((await verify()).valid).toBe(true);
  });

  it('reports an event whose hash was recomputed after an edit as a broken link on the next event', async () => {
    await apiKey(await user());
    const head = await auditHead();
    const seq = head - 1;
    const result = await withTamperedRow(
      seq,
      // A forger who edits a row and fixes its own hash still cannot fix the next event's link.
      () => env.DB.prepare("UPDATE audit_events SET action = 'forged', hash = ? WHERE seq = ?").bind('f'.repeat(64), seq).run(),
      verify,
    );
    expect(result.valid).toBe(false);
    expect(result.problems).toContainEqual({ seq: head, problem: 'broken_link' });
  });

  it('reports a deleted middle event as missing', async () => {
    await apiKey(await user());
    const head = await auditHead();
    const seq = Math.floor(head / 2);
    const result = await withTamperedRow(seq, () => env.DB.prepare('DELETE FROM audit_events WHERE seq = ?').bind(seq).run(), verify);
    expect(result).toEqual({
      valid: false,
      checked: head - 1,
      problems: [
        { seq, problem: 'missing' },
        { seq: seq + 1, problem: 'broken_link' },
      ],
    });
    expect((await verify()).valid).toBe(true);
  });

  it('keeps a valid chain with no duplicate seq under 20 concurrent mutations', async () => {
    const u = await user();
    const head = await auditHead();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => rest('POST', '/v1/api-keys', { name: `concurrent ${i}` }, u.token)));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    const appended = await auditSince(head);
    expect(appended).toHaveLength(20);
    expect(appended.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => head + 1 + i));
    expect(new Set(appended.map((e) => e.target))).toEqual(new Set(results.map((r) => r.body.key_id)));
    expect(appended.every((e) => e.action === 'apiKeys.create' && e.outcome === 'success')).toBe(true);
    expect(await verify()).toEqual({ valid: true, checked: head + 20, problems: [] });
  });
});

describe('deferred audit events (written after the response)', () => {
  it('are appended in order with the events awaited beside them, and the chain stays valid', async () => {
    const { insertAuditEvent } = await import('./audit.store');
    const { getDb } = await import('../db/schema');
    const db = getDb(env.DB);
    const head = await auditHead();
    const event = (i: number) => ({ actor: 'CHITTY-TEST', action: 'test.deferred', target: `t${i}`, door: 'system' as const, outcome: 'success' as const });
    const deferred = [0, 1, 2, 3, 4].map((i) => insertAuditEvent(db, event(i), { deferred: true }));
    await insertAuditEvent(db, event(5));
    await Promise.all(deferred);
    const appended = await auditSince(head);
    expect(appended.map((e) => e.target)).toEqual(['t0', 't1', 't2', 't3', 't4', 't5']);
    expect(appended.map((e) => e.seq)).toEqual(Array.from({ length: 6 }, (_, i) => head + 1 + i));
    expect(await verify()).toEqual({ valid: true, checked: head + 6, problems: [] });
  });
});
