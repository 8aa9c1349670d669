import { describe, expect, it } from 'vitest';
import { callTool, count, rest, snapshotDatabase, user } from '../../test/workers/helpers';
import { device, pull, push } from '../../test/workers/sync-helpers';
import { KEPT_REVISIONS } from './sync.store';

const server = () => `notes-${crypto.randomUUID().slice(0, 8)}`;

describe('state documents across two devices of one user', () => {
  it('a push from one device is in the other’s next pull, across servers, in one call', async () => {
    const u = await user();
    const laptop = await device(u, 'Laptop');
    const phone = await device(u, 'Phone', 'mobile');
    const [a, b] = [server(), server()];
    const start = (await pull(phone.token)).body.next_cursor as string;
    expect((await push(laptop.token, a, 0, { theme: 'dark' })).body).toMatchObject({ server_id: a, revision: 1, document: { theme: 'dark' }, updated_by_device: laptop.deviceId, merged: [] });
    expect((await push(laptop.token, b, 0, { open: ['x'] })).status).toBe(200);
    expect((await push(laptop.token, a, 1, { theme: 'dark', size: 14 })).body.revision).toBe(2);

    const caughtUp = await pull(phone.token, start);
    expect(caughtUp.status).toBe(200);
    expect(caughtUp.body.changes.map((c: any) => [c.server_id, c.revision, c.fields, c.device_id])).toEqual([
      [a, 1, ['theme'], laptop.deviceId],
      [b, 1, ['open'], laptop.deviceId],
      [a, 2, ['size'], laptop.deviceId],
    ]);
    expect(caughtUp.body.documents).toEqual(
      expect.arrayContaining([expect.objectContaining({ server_id: a, revision: 2, document: { theme: 'dark', size: 14 } }), expect.objectContaining({ server_id: b, revision: 1, document: { open: ['x'] } })]),
    );
    expect(caughtUp.body.has_more).toBe(false);
    // Nothing new since: the same cursor comes back.
    const again = await pull(phone.token, caughtUp.body.next_cursor);
    expect(again.body).toMatchObject({ changes: [], documents: [], next_cursor: caughtUp.body.next_cursor });
  });

  it('pages a long backlog with has_more and next_cursor', async () => {
    const u = await user();
    const s = server();
    for (let i = 0; i < 5; i++) expect((await push(u.token, s, i, { i })).status).toBe(200);
    const first = await rest('GET', '/v1/sync/changes?limit=2', undefined, u.token);
    expect(first.body.changes.map((c: any) => c.revision)).toEqual([1, 2]);
    expect(first.body.has_more).toBe(true);
    const rest2 = await rest('GET', `/v1/sync/changes?limit=10&cursor=${first.body.next_cursor}`, undefined, u.token);
    expect(rest2.body.changes.map((c: any) => c.revision)).toEqual([3, 4, 5]);
    expect(rest2.body.has_more).toBe(false);
  });

  it('concurrent pushes from the same base merge disjoint fields and report a conflict on the same field: no update is lost', async () => {
    const u = await user();
    const laptop = await device(u, 'Laptop');
    const phone = await device(u, 'Phone', 'mobile');
    const s = server();
    expect((await push(laptop.token, s, 0, { theme: 'light', font: 'serif', tabs: 1 })).body.revision).toBe(1);

    // Both start from revision 1, at the same time: laptop changes theme, phone changes font.
    const [fromLaptop, fromPhone] = await Promise.all([push(laptop.token, s, 1, { theme: 'dark', font: 'serif', tabs: 1 }), push(phone.token, s, 1, { theme: 'light', font: 'mono', tabs: 1 })]);
    expect([fromLaptop.status, fromPhone.status]).toEqual([200, 200]);
    expect([fromLaptop.body.revision, fromPhone.body.revision].sort()).toEqual([2, 3]);
    const latest = (await rest('GET', `/v1/sync/state/${s}`, undefined, phone.token)).body;
    expect(latest).toMatchObject({ revision: 3, document: { theme: 'dark', font: 'mono', tabs: 1 } });
    const second = fromLaptop.body.revision === 3 ? fromLaptop : fromPhone;
    expect(second.body.merged).toEqual([fromLaptop.body.revision === 3 ? 'font' : 'theme']);

    // Now both change `tabs` from revision 3: the first wins, the second gets a 409 with both values, and nothing of it is written.
    const [one, two] = await Promise.all([push(laptop.token, s, 3, { theme: 'dark', font: 'mono', tabs: 2 }), push(phone.token, s, 3, { theme: 'dark', font: 'mono', tabs: 5, extra: true })]);
    const [won, lost] = one.status === 200 ? [one, two] : [two, one];
    expect(won.status).toBe(200);
    expect(lost.status).toBe(409);
    expect(lost.body).toMatchObject({ code: 'CONFLICT', data: { revision: 4, conflicts: [{ field: 'tabs', base: 1, current: won === one ? 2 : 5, pushed: won === one ? 5 : 2 }] } });
    const after = (await rest('GET', `/v1/sync/state/${s}`, undefined, laptop.token)).body;
    expect(after.revision).toBe(4);
    expect(after.document).toEqual(won === one ? { theme: 'dark', font: 'mono', tabs: 2 } : { theme: 'dark', font: 'mono', tabs: 5, extra: true });

    // The loser resolves (keeps its tabs) from the revision the 409 named: both updates survive in the end.
    const resolved = await push(lost === two ? phone.token : laptop.token, s, 4, { ...after.document, tabs: lost === two ? 5 : 2, ...(lost === two ? { extra: true } : {}) });
    expect(resolved.status).toBe(200);
    expect(resolved.body.revision).toBe(5);
  });

  it('refuses a base revision it cannot merge against, and writes nothing', async () => {
    const u = await user();
    const s = server();
    expect((await push(u.token, s, 0, { a: 1 })).status).toBe(200);
    const ahead = await push(u.token, s, 7, { a: 2 });
    expect(ahead.status).toBe(409);
    expect(ahead.body).toMatchObject({ code: 'BASE_UNAVAILABLE', data: { revision: 1 } });
    expect(await count('sync_changes', 'server_id = ?', s)).toBe(1);
  });

  it(`keeps the newest ${KEPT_REVISIONS} revisions to merge against, and asks an older base to pull first`, async () => {
    const u = await user();
    const s = server();
    for (let i = 0; i < KEPT_REVISIONS + 2; i++) expect((await push(u.token, s, i, { n: i, [`k${i % 3}`]: i })).status).toBe(200);
    expect(await count('sync_revisions', 'server_id = ?', s)).toBe(KEPT_REVISIONS);
    expect((await push(u.token, s, 1, { n: -1 })).body).toMatchObject({ code: 'BASE_UNAVAILABLE', data: { revision: KEPT_REVISIONS + 2 } });
    // The oldest kept revision still merges: revision 3 was { n: 2, k2: 2 }; the server has since changed n and k2.
    const late = await push(u.token, s, 3, { n: 2, k2: 2, k0: 'mine', late: true });
    expect(late.status).toBe(200);
    expect(late.body).toMatchObject({ revision: KEPT_REVISIONS + 3, document: { n: KEPT_REVISIONS + 1, k2: KEPT_REVISIONS + 1, k0: 'mine', late: true }, merged: ['k2', 'n'] });
  });

  it('answers a push identical to the current document without a new revision', async () => {
    const u = await user();
    const s = server();
    await push(u.token, s, 0, { a: 1 });
    const same = await push(u.token, s, 1, { a: 1 });
    expect(same.body).toMatchObject({ revision: 1, merged: [] });
    expect(await count('sync_changes', 'server_id = ?', s)).toBe(1);
  });

  it('rejects documents that are not objects, oversized or with too many fields, with a 400 naming the problem and no write', async () => {
    const u = await user();
    const s = server();
    const before = await snapshotDatabase();
    for (const document of ['text', null, 7]) {
      const res = await push(u.token, s, 0, document as never);
      expect(res.status, JSON.stringify(document)).toBe(400);
      expect(JSON.stringify(res.body.data.issues)).toContain('document');
    }
    // An array is not a document (REST's smart coercion turns a JSON array into an object, so asked over MCP).
    const array = await callTool('sync_push', { server_id: s, base_revision: 0, document: [1, 2] }, u.token);
    expect(array.body.result?.isError ?? array.body.error).toBeTruthy();
    const big = await push(u.token, s, 0, { blob: 'x'.repeat(70 * 1024) });
    expect([400, 413]).toContain(big.status);
    const wide = await push(u.token, s, 0, Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}`, i])));
    expect(wide.status).toBe(400);
    expect(wide.body.message).toContain('at most 256 top-level fields');
    expect((await push(u.token, 'Not A Server!', 0, {})).status).toBe(400);
    expect((await push(u.token, s, -1, {})).status).toBe(400);
    const after = await snapshotDatabase();
    expect(after.sync_documents).toEqual(before.sync_documents);
    expect(after.sync_changes).toEqual(before.sync_changes);
  });

  it('keeps each user’s state their own', async () => {
    const [alice, bob] = [await user(), await user()];
    const s = server();
    await push(alice.token, s, 0, { secret: 'alice' });
    expect((await rest('GET', `/v1/sync/state/${s}`, undefined, bob.token)).body).toMatchObject({ revision: 0, document: {} });
    expect((await pull(bob.token)).body.changes.some((c: any) => c.server_id === s)).toBe(false);
  });
});
