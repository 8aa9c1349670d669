import type { DB } from '../db/schema';
import { deleteCountersWithPrefix, hitCounters, refundCounters, type Counter } from '../lib/rate-limits';

/**
 * Password sign-in throttling, checked before any password hash is computed (README "Sign-in throttling").
 *
 * Counters are keyed by the username as typed (lower-cased: usernames are unique without regard to case),
 * never by the account, so an unknown username is throttled exactly like a real one and a refusal reveals
 * nothing about which usernames exist. Three counters, one 15-minute window each:
 * - username + client address: 10 attempts. The lockout a guesser at one address meets.
 * - username, from every address: 100 attempts. Caps distributed guessing at one account; reaching it takes
 *   at least ten addresses, so one address cannot lock the account out for everybody else.
 * - client address, across usernames: 30 attempts. Stops one address spraying many usernames (and so
 *   bounds the password hashes one address can make us compute).
 * Every attempt is counted before the hash (atomically, in SQL), so concurrent guesses cannot slip past a
 * limit; a successful sign-in gives its attempt back and clears its username + address counter.
 */
export const SIGN_IN_WINDOW_S = 15 * 60;
export const SIGN_IN_LIMITS = { usernameAddress: 10, username: 100, address: 30 } as const;

const norm = (username: string) => username.toLowerCase();

/**
 * The counters of one attempt. Cloudflare sets CF-Connecting-IP on every request; without it (only local
 * tests) there is no address to count across usernames, and the address part of the first key is `unknown`.
 */
function countersFor(username: string, ip: string | null | undefined): { counter: Counter; limit: number; name: LimitName }[] {
  const u = norm(username);
  const counters: { counter: Counter; limit: number; name: LimitName }[] = [
    { counter: { name: `signin:ua:${u}:${ip || 'unknown'}`, windowSeconds: SIGN_IN_WINDOW_S }, limit: SIGN_IN_LIMITS.usernameAddress, name: 'username_address' },
    { counter: { name: `signin:u:${u}`, windowSeconds: SIGN_IN_WINDOW_S }, limit: SIGN_IN_LIMITS.username, name: 'username' },
  ];
  if (ip) counters.push({ counter: { name: `signin:a:${ip}`, windowSeconds: SIGN_IN_WINDOW_S }, limit: SIGN_IN_LIMITS.address, name: 'address' });
  return counters;
}

type LimitName = 'username_address' | 'username' | 'address';

export type Admission =
  | { ok: true }
  /** `lockedNow`: this attempt is the first one refused in its window (the moment of the lock, audited once). */
  | { ok: false; retryAfter: number; lockedNow: boolean; limit: LimitName };

/** Counts this attempt against every counter; refuses it when any counter is over its limit. */
export async function admitSignIn(db: DB, username: string, ip: string | null | undefined): Promise<Admission> {
  const counters = countersFor(username, ip);
  const states = await hitCounters(
    db,
    counters.map((c) => c.counter),
  );
  let refusal: Admission = { ok: true };
  states.forEach((state, i) => {
    const { limit, name } = counters[i]!;
    if (state.count <= limit) return;
    const retryAfter = refusal.ok ? state.retryAfter : Math.max(refusal.retryAfter, state.retryAfter);
    const lockedNow = (!refusal.ok && refusal.lockedNow) || state.count === limit + 1;
    refusal = { ok: false, retryAfter, lockedNow, limit: refusal.ok ? name : refusal.limit };
  });
  return refusal;
}

/** After a successful sign-in: the attempt was legitimate. */
export async function settleSignIn(db: DB, username: string, ip: string | null | undefined): Promise<void> {
  const [usernameAddress, ...others] = countersFor(username, ip);
  await deleteCountersWithPrefix(db, `${usernameAddress!.counter.name}:`);
  await refundCounters(
    db,
    others.map((c) => c.counter),
  );
}

/** An administrator's unlock: clears the username's counters from every address. Returns how many were set. */
export async function unlockUsername(db: DB, username: string): Promise<number> {
  const u = norm(username);
  return (await deleteCountersWithPrefix(db, `signin:ua:${u}:`)) + (await deleteCountersWithPrefix(db, `signin:u:${u}:`));
}
