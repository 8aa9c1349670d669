import type { AuditEventsTable } from '../db/schema';
import { os } from '../orpc';
import { listAuditChainPage, listAuditEvents } from './audit.store';
import { eventHash, GENESIS_HASH } from './chain';

const PAGE = 500;

const toEvent = (row: AuditEventsTable) => ({
  seq: row.seq,
  id: row.id,
  at: row.at,
  actor: row.actor,
  action: row.action,
  target: row.target,
  door: row.door,
  outcome: row.outcome,
  detail: JSON.parse(row.detail) as Record<string, unknown>,
  hash: row.hash,
});

type Problem = { seq: number; problem: 'hash_mismatch' | 'broken_link' | 'missing' };

export const audit = {
  list: os.audit.list.handler(async ({ input, context }) => {
    const rows = await listAuditEvents(context.db, input);
    const page = rows.slice(0, input.limit);
    return { items: page.map(toEvent), next_cursor: rows.length > input.limit ? String(page.at(-1)!.seq) : null };
  }),

  verify: os.audit.verify.handler(async ({ context }) => {
    const problems: Problem[] = [];
    let prevHash = GENESIS_HASH;
    let expectedSeq = 1;
    let checked = 0;
    for (;;) {
      const rows = await listAuditChainPage(context.db, expectedSeq - 1, PAGE);
      for (const row of rows) {
        // A gap in seq is a deleted event; the next event's link is then checked against the last one we saw.
        for (let missing = expectedSeq; missing < row.seq; missing++) problems.push({ seq: missing, problem: 'missing' });
        if (row.prev_hash !== prevHash) problems.push({ seq: row.seq, problem: 'broken_link' });
        if ((await eventHash(row.prev_hash, row)) !== row.hash) problems.push({ seq: row.seq, problem: 'hash_mismatch' });
        prevHash = row.hash;
        expectedSeq = row.seq + 1;
        checked++;
      }
      if (rows.length < PAGE) break;
    }
    return { valid: problems.length === 0, checked, problems: problems.slice(0, 1000) };
  }),
};
