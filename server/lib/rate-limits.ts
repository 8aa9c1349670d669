import type { DB } from '../db/schema';
import { readTogether } from '../db/schema';
import { nowIso } from './time';

/**
 * Fixed-window counters in D1 (`rate_limits`), so a limit holds across isolates and under concurrency: each
 * hit is one `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement, which SQLite runs atomically, so N
 * concurrent requests see N distinct counts and never a lost update. Several counters are hit in one D1
 * batch (one round trip). The key of a window is `<name>:<window number>`; `cleanup.ts` deletes ended ones.
 */
export interface Counter {
  /** The counter's name, without the window (e.g. `signin:addr:203.0.113.7`). */
  name: string;
  windowSeconds: number;
}

export interface CounterState {
  count: number;
  /** Seconds until this window ends (at least 1). */
  retryAfter: number;
}

const windowOf = (c: Counter, now: number) => Math.floor(now / 1000 / c.windowSeconds);

/** Adds one to each counter (in one batch) and returns each one's count in its current window. */
export async function hitCounters(db: DB, counters: Counter[], now = Date.now()): Promise<CounterState[]> {
  const queries = counters.map((c) => {
    const ends = (windowOf(c, now) + 1) * c.windowSeconds * 1000;
    return db
      .insertInto('rate_limits')
      .values({ key: `${c.name}:${windowOf(c, now)}`, count: 1, window_ends: nowIso(ends) })
      .onConflict((oc) => oc.column('key').doUpdateSet((eb) => ({ count: eb('rate_limits.count', '+', 1) })))
      .returning(['count', 'window_ends'])
      .compile();
  });
  const rows = (await readTogether(db, queries)) as { count: number; window_ends: string }[][];
  return rows.map(([row]) => ({ count: row?.count ?? 1, retryAfter: Math.max(1, Math.ceil((Date.parse(row?.window_ends ?? nowIso(now)) - now) / 1000)) }));
}

/** Takes one back from each counter's current window (a hit that turned out legitimate). */
export async function refundCounters(db: DB, counters: Counter[], now = Date.now()): Promise<void> {
  const queries = counters.map((c) =>
    db
      .updateTable('rate_limits')
      .set((eb) => ({ count: eb('count', '-', 1) }))
      .where('key', '=', `${c.name}:${windowOf(c, now)}`)
      .where('count', '>', 0)
      .compile(),
  );
  await readTogether(db, queries);
}

/** Deletes every window of the counters whose names start with `prefix` (an administrator's reset). */
export async function deleteCountersWithPrefix(db: DB, prefix: string): Promise<number> {
  // substr instead of LIKE: names may hold `_` and `%`, LIKE's wildcards.
  const result = await db
    .deleteFrom('rate_limits')
    .where((eb) => eb(eb.fn('substr', ['key', eb.val(1), eb.val(prefix.length)]), '=', prefix))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
