import { sql } from 'kysely';
import { isUniqueViolation, type DB } from '../db/schema';
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

/**
 * Appends to the hash chain. The writer claims `seq = last + 1`; `seq` is the primary key, so of two
 * concurrent writers one fails the insert and retries on the new head. The chain never forks.
 * Losers back off for a random, growing delay so a burst of writers spreads out instead of colliding again
 * in lockstep (without it, 20 concurrent mutations exhausted the retries and answered 500 after writing).
 */
export async function insertAuditEvent(db: DB, event: NewAuditEvent): Promise<void> {
  const base = {
    id: newId('evt'),
    at: nowIso(),
    actor: event.actor,
    action: event.action,
    target: event.target ?? null,
    door: event.door,
    outcome: event.outcome,
    detail: JSON.stringify(event.detail ?? {}),
  };
  for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 ** attempt)));
    const head = await db.selectFrom('audit_events').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    const seq = (head?.seq ?? 0) + 1;
    const prevHash = head?.hash ?? GENESIS_HASH;
    const hash = await eventHash(prevHash, { ...base, seq });
    try {
      await db.insertInto('audit_events').values({ ...base, seq, prev_hash: prevHash, hash }).execute();
      return;
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
  }
  throw new Error(`audit log is contended: could not append after ${APPEND_ATTEMPTS} attempts`);
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
