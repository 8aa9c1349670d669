/**
 * Gateway rate limits: per user per server, and per server (all its users together), kept in the memory of
 * the isolate that serves the request. No storage round trip on the hot path: a decision is a few map
 * lookups. The price is that the limits are per isolate — Cloudflare may run several isolates of the Worker
 * (one or more per location under load), so the effective global limit can be a multiple of the configured
 * one. README "The MCP gateway" explains why this beats the Workers Rate Limiting binding for us.
 *
 * The algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp per key): a
 * limit of N requests per W seconds allows a burst of N, then one request every W/N seconds, and tells a
 * refused caller exactly when the next request will be allowed. A key that has been idle for W is back to
 * a full burst.
 */
export interface Limit {
  requests: number;
  windowSeconds: number;
}

export interface RateLimits {
  perUser: Limit;
  perServer: Limit;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  perUser: { requests: 600, windowSeconds: 60 },
  perServer: { requests: 6000, windowSeconds: 60 },
};

/** Bounds of configurable values (contract/servers.ts validates the same). */
export const RATE_LIMIT_BOUNDS = { requests: { min: 1, max: 1_000_000 }, windowSeconds: { min: 1, max: 86_400 } } as const;

export type LimitName = 'per_user' | 'per_server';

/** `first`: the first refusal since this key was last allowed (callers audit only those, so a flood writes nothing). */
export type Decision = { ok: true } | { ok: false; limit: LimitName; requests: number; windowSeconds: number; retryAfterMs: number; first: boolean };

/** Keys not touched for this long are dropped; beyond MAX_KEYS the oldest entries go first. */
const MAX_KEYS = 50_000;

export class RateLimiter {
  /** key → theoretical arrival time (ms): when the bucket of that key would be empty again. */
  private readonly tat = new Map<string, number>();
  /** Keys refused since they were last allowed. */
  private readonly refused = new Set<string>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Checks both limits and counts the request only when both allow it. `cost`: how many messages it carries
   * (a JSON-RPC batch counts each of its messages); all are allowed or none.
   */
  take(serverId: string, userId: string, limits: RateLimits, cost = 1): Decision {
    const now = this.now();
    const checks: [LimitName, string, Limit][] = [
      ['per_user', `u\u0000${serverId}\u0000${userId}`, limits.perUser],
      ['per_server', `s\u0000${serverId}`, limits.perServer],
    ];
    const next: [string, number][] = [];
    for (const [name, key, limit] of checks) {
      const windowMs = limit.windowSeconds * 1000;
      const interval = windowMs / limit.requests;
      const tat = Math.max(this.tat.get(key) ?? now, now) + interval * cost;
      // Allowed while the bucket holds at most `requests` requests' worth of time (the window).
      if (tat - now > windowMs + 1e-6) {
        const first = !this.refused.has(key);
        if (first) this.refused.add(key);
        return { ok: false, limit: name, requests: limit.requests, windowSeconds: limit.windowSeconds, retryAfterMs: Math.ceil(tat - windowMs - now), first };
      }
      next.push([key, tat]);
    }
    for (const [key, tat] of next) {
      this.tat.delete(key); // re-insert: Map order is then least recently used first
      this.tat.set(key, tat);
      this.refused.delete(key);
    }
    if (this.tat.size > MAX_KEYS) this.evict(now);
    return { ok: true };
  }

  private evict(now: number) {
    this.refused.clear();
    for (const [key, tat] of this.tat) if (tat <= now) this.tat.delete(key);
    // Still too many live keys: drop the least recently used (they lose their count, i.e. fail open).
    for (const key of this.tat.keys()) {
      if (this.tat.size <= MAX_KEYS * 0.9) break;
      this.tat.delete(key);
    }
  }
}

/** The limits of a registry row: its own values where set, the defaults elsewhere. */
export function rateLimitsOf(row: { rate_limit_user: number | null; rate_limit_user_window_s: number | null; rate_limit_server: number | null; rate_limit_server_window_s: number | null }): RateLimits {
  return {
    perUser: { requests: row.rate_limit_user ?? DEFAULT_RATE_LIMITS.perUser.requests, windowSeconds: row.rate_limit_user_window_s ?? DEFAULT_RATE_LIMITS.perUser.windowSeconds },
    perServer: { requests: row.rate_limit_server ?? DEFAULT_RATE_LIMITS.perServer.requests, windowSeconds: row.rate_limit_server_window_s ?? DEFAULT_RATE_LIMITS.perServer.windowSeconds },
  };
}

/** The isolate's limiter, shared by every request this isolate serves. */
export const gatewayLimiter = new RateLimiter();
