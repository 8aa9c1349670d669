import { sql } from 'kysely';
import { d1Of, isUniqueViolation, type AuditEventsTable, type DB } from '../db/schema';
import { newId } from '../lib/ids';
import { nowIso } from '../lib/time';
import { eventHash, GENESIS_HASH } from './chain';

export type Door = 'rpc' | 'rest' | 'mcp' | 'oauth' | 'system';
export type Outcome = 'success' | 'denied' | 'failure';

export interface NewAuditEvent {
  actor: string;
  action: string;
  target?: string | null;
  door: Door;
  outcome: Outcome;
  detail?: Record<string, unknown>;
}

/** Attempts before an append gives up. Each round of contention lets at least one writer through. */
const APPEND_ATTEMPTS = 40;
/** Events appended in one D1 round trip at most. */
const MAX_BATCH = 50;
/**
 * How long a leader whose queue holds only deferred events (written after the response, e.g. each gateway
 * call's) waits for more before writing: sequential calls then share one D1 transaction instead of paying
 * for one each. Events someone is waiting on are never held back.
 */
const LINGER_MS = 25;
/** A leader that has made no progress for this long is presumed gone (its request was cancelled). */
const LEADER_STALE_MS = 10_000;

type AuditBase = Omit<AuditEventsTable, 'seq' | 'prev_hash' | 'hash'>;

interface Pending {
  base: AuditBase;
  deferred: boolean;
  state: 'queued' | 'writing' | 'written' | 'failed';
  error?: unknown;
}

/**
 * Group commit. Events wait in this isolate's queue; one writer at a time (the leader) appends everything
 * queued, in order, in one D1 batch: N concurrent events cost two round trips (the head, the batch) instead
 * of 2N, and this isolate's writers no longer collide with each other. The others wait on timers of their
 * own (a Worker may not await another request's I/O) until their event is written, or lead the next batch
 * when no one else does. Each caller returns only once its own event is in the chain, or throws its batch's
 * error. An event whose leader vanished mid-write is looked up by id, and queued again if it is not there.
 */
const queue: Pending[] = [];
let leaderActiveAt: number | null = null;

/**
 * Appends to the hash chain. The writer claims `seq = last + 1`; `seq` is the primary key, so of two
 * concurrent writers (isolates) one fails the insert and retries on the new head. The chain never forks.
 * Losers back off for a random, growing delay so a burst of writers spreads out instead of colliding again
 * in lockstep (without it, 20 concurrent mutations exhausted the retries and answered 500 after writing).
 */
export async function insertAuditEvent(db: DB, event: NewAuditEvent, options: { deferred?: boolean } = {}): Promise<void> {
  const me: Pending = {
    base: {
      id: newId('evt'),
      at: nowIso(),
      actor: event.actor,
      action: event.action,
      target: event.target ?? null,
      door: event.door,
      outcome: event.outcome,
      detail: JSON.stringify(event.detail ?? {}),
    },
    deferred: options.deferred ?? false,
    state: 'queued',
  };
  queue.push(me);
  let pause = 1;
  for (;;) {
    if (me.state === 'written') return;
    if (me.state === 'failed') throw me.error;
    const stale = leaderActiveAt !== null && Date.now() - leaderActiveAt > LEADER_STALE_MS;
    if (me.state === 'queued' && (leaderActiveAt === null || stale)) {
      await lead(db, me);
      continue;
    }
    if (me.state === 'writing' && stale) {
      leaderActiveAt = null;
      if (await db.selectFrom('audit_events').select('seq').where('id', '=', me.base.id).executeTakeFirst()) me.state = 'written';
      else {
        me.state = 'queued';
        queue.unshift(me);
      }
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 8);
  }
}

/** Writes the queue, oldest first, in batches until `me` is written. */
async function lead(db: DB, me: Pending): Promise<void> {
  // A batch is one D1 transaction; without the binding (a Kysely not from getDb), one event at a time.
  const batchSize = d1Of(db) ? MAX_BATCH : 1;
  try {
    while (me.state === 'queued') {
      leaderActiveAt = Date.now();
      // Linger in short steps, and stop as soon as the batch is full or someone awaits an event in it.
      for (let waited = 0; waited < LINGER_MS && queue.length < batchSize && queue.every((p) => p.deferred); waited += 5) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        leaderActiveAt = Date.now();
      }
      const batch = queue.splice(0, batchSize);
      for (const p of batch) p.state = 'writing';
      try {
        await appendBatch(db, batch.map((p) => p.base));
        for (const p of batch) p.state = 'written';
      } catch (error) {
        for (const p of batch) {
          p.state = 'failed';
          p.error = error;
        }
      }
    }
  } finally {
    leaderActiveAt = null;
  }
}

/** The last event this isolate appended: where its next batch most likely goes. */
let lastAppended: { seq: number; hash: string } | null = null;
/** Batches to append the usual way after a guess at the head missed (other isolates are writing too). */
let skipGuesses = 0;

/** Appends events in order after the current head, in one D1 batch (a transaction): all of them or none. */
async function appendBatch(db: DB, bases: AuditBase[]): Promise<void> {
  // Usually the head is the event this isolate appended last: then one round trip, whose inserts only happen
  // if that is still so (insertChain, onlyIfHead). Otherwise the head is read first, as always.
  if (skipGuesses > 0) skipGuesses--;
  else if (lastAppended) {
    if (await insertChain(db, lastAppended, bases, true)) return;
    skipGuesses = 8;
  }
  for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 ** attempt)));
    const head = await db.selectFrom('audit_events').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    try {
      await insertChain(db, head ?? { seq: 0, hash: GENESIS_HASH }, bases, false);
      return;
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
  }
  throw new Error(`audit log is contended: could not append after ${APPEND_ATTEMPTS} attempts`);
}

const COLUMNS = ['seq', 'id', 'at', 'actor', 'action', 'target', 'door', 'outcome', 'detail', 'prev_hash', 'hash'] as const;

/**
 * Inserts `bases` as the events after `head`. With `onlyIfHead`, each insert happens only if the newest event
 * is then the one it links to, with that hash (a conditional INSERT ... SELECT in the same transaction); returns
 * whether the events went in. Without it, a concurrent writer surfaces as a unique-key violation on `seq`.
 */
async function insertChain(db: DB, head: { seq: number; hash: string }, bases: AuditBase[], onlyIfHead: boolean): Promise<boolean> {
  let seq = head.seq;
  let prevHash = head.hash;
  const rows: AuditEventsTable[] = [];
  for (const base of bases) {
    seq += 1;
    const hash = await eventHash(prevHash, { ...base, seq });
    rows.push({ ...base, seq, prev_hash: prevHash, hash });
    prevHash = hash;
  }
  const d1 = d1Of(db);
  if (onlyIfHead && d1) {
    const sql = `INSERT INTO audit_events (${COLUMNS.join(', ')}) SELECT ${COLUMNS.map(() => '?').join(', ')} WHERE (SELECT max(seq) FROM audit_events) = ? AND (SELECT hash FROM audit_events WHERE seq = ?) = ?`;
    const results = await d1.batch(rows.map((row) => d1.prepare(sql).bind(...COLUMNS.map((c) => row[c]), row.seq - 1, row.seq - 1, row.prev_hash)));
    if (results.some((r) => r.meta.changes !== 1)) {
      // The head moved (another isolate, or a restore): nothing of this batch went in unless all of it did.
      if (results.every((r) => r.meta.changes === 0)) return false;
      throw new Error('audit append: a conditional batch went in partly');
    }
  } else if (rows.length === 1 || !d1) {
    for (const row of rows) await db.insertInto('audit_events').values(row).execute();
  } else {
    await d1.batch(
      rows.map((row) => {
        const q = db.insertInto('audit_events').values(row).compile();
        return d1.prepare(q.sql).bind(...q.parameters);
      }),
    );
  }
  lastAppended = { seq: rows.at(-1)!.seq, hash: rows.at(-1)!.hash };
  return true;
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  door?: string;
  outcome?: string;
  since?: string;
  until?: string;
  limit: number;
  cursor?: string;
}

export function listAuditEvents(db: DB, f: AuditFilter) {
  let q = db.selectFrom('audit_events').selectAll();
  if (f.actor) q = q.where('actor', '=', f.actor);
  if (f.action) q = q.where('action', '=', f.action);
  if (f.door) q = q.where('door', '=', f.door);
  if (f.outcome) q = q.where('outcome', '=', f.outcome);
  if (f.since) q = q.where('at', '>=', f.since);
  if (f.until) q = q.where('at', '<', f.until);
  if (f.cursor) q = q.where('seq', '<', Number(f.cursor));
  return q.orderBy('seq', 'desc').limit(f.limit + 1).execute();
}

/** Events in chain order, a page at a time (the verifier streams through them). */
export function listAuditChainPage(db: DB, afterSeq: number, size: number) {
  return db.selectFrom('audit_events').selectAll().where('seq', '>', afterSeq).orderBy('seq', 'asc').limit(size).execute();
}

export const countAuditEvents = (db: DB) =>
  db.selectFrom('audit_events').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
