import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, ORIGIN, rest, user, type Caller } from '../../test/workers/helpers';
import { DEFAULT_RATE_LIMITS, RateLimiter } from './rate-limit';

/** Gateway rate limits: per user per server and per server, 429 with Retry-After (RFC 6585 §4, RFC 9110 §10.2.3). */
let root: Caller;
let n = 0;

async function registerLimited(rate_limits: Record<string, unknown>) {
  const server_id = `rl-${++n}-${crypto.randomUUID().slice(0, 6)}`;
  const res = await rest('POST', '/v1/servers/register', { server_id, name: 'Limited', endpoints: { mcp: 'https://mcp.example/mcp' }, rate_limits }, root.token);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return server_id;
}

/** A gateway credential for a user: an API key (accepted on every gateway route). */
async function keyOf(caller: Caller) {
  const res = await rest('POST', '/v1/api-keys', { name: 'gateway' }, caller.token);
  expect(res.status).toBe(201);
  return res.body.api_key as string;
}

async function call(serverId: string, key: string, id = 1) {
  const res = await SELF.fetch(`${ORIGIN}/gw/${serverId}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', authorization: `Bearer ${key}` },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list', params: {} }),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as any };
}

beforeAll(async () => {
  root = await admin();
});

describe('RateLimiter', () => {
  it('allows a burst of the limit, then one request per window/limit, and says when', () => {
    let now = 1_000_000;
    const limiter = new RateLimiter(() => now);
    const limits = { perUser: { requests: 3, windowSeconds: 3 }, perServer: { requests: 100, windowSeconds: 1 } };
    for (let i = 0; i < 3; i++) expect(limiter.take('s', 'u', limits)).toEqual({ ok: true });
    expect(limiter.take('s', 'u', limits)).toEqual({ ok: false, limit: 'per_user', requests: 3, windowSeconds: 3, retryAfterMs: 1000, first: true });
    now += 999;
    expect(limiter.take('s', 'u', limits)).toMatchObject({ ok: false, first: false });
    now += 1;
    expect(limiter.take('s', 'u', limits).ok).toBe(true);
    expect(limiter.take('s', 'u', limits).ok).toBe(false);
    // Idle for a whole window: a full burst again.
    now += 3000;
    for (let i = 0; i < 3; i++) expect(limiter.take('s', 'u', limits).ok).toBe(true);
  });

  it('counts a refused request against neither limit', () => {
    let now = 0;
    const limiter = new RateLimiter(() => now);
    const limits = { perUser: { requests: 1, windowSeconds: 10 }, perServer: { requests: 2, windowSeconds: 10 } };
    expect(limiter.take('s', 'a', limits).ok).toBe(true);
    for (let i = 0; i < 5; i++) expect(limiter.take('s', 'a', limits)).toMatchObject({ ok: false, limit: 'per_user' });
    // a's refused requests did not use up the server's budget: b still gets the second slot.
    expect(limiter.take('s', 'b', limits).ok).toBe(true);
    expect(limiter.take('s', 'c', limits)).toMatchObject({ ok: false, limit: 'per_server', retryAfterMs: 5000 });
    now += 5000;
    expect(limiter.take('s', 'c', limits).ok).toBe(true);
  });
});

describe('RateLimiter cost', () => {
  it('counts a batch as its messages, all of them or none', () => {
    const now = 0;
    const limiter = new RateLimiter(() => now);
    const limits = { perUser: { requests: 5, windowSeconds: 5 }, perServer: { requests: 100, windowSeconds: 1 } };
    expect(limiter.take('s', 'u', limits, 3).ok).toBe(true);
    expect(limiter.take('s', 'u', limits, 3)).toMatchObject({ ok: false, limit: 'per_user', retryAfterMs: 1000 });
    // The refused batch took nothing: two more still fit, then the bucket is full.
    expect(limiter.take('s', 'u', limits, 2).ok).toBe(true);
    expect(limiter.take('s', 'u', limits).ok).toBe(false);
  });
});

describe('servers.register rate_limits', () => {
  it('shows the defaults, stores a server’s own limits, and restores a default with null', async () => {
    const plain = await registerLimited({});
    const got = await rest('GET', `/v1/servers/${plain}`, undefined, root.token);
    expect(got.body.rate_limits).toEqual({
      per_user: { requests: DEFAULT_RATE_LIMITS.perUser.requests, window_seconds: DEFAULT_RATE_LIMITS.perUser.windowSeconds },
      per_server: { requests: DEFAULT_RATE_LIMITS.perServer.requests, window_seconds: DEFAULT_RATE_LIMITS.perServer.windowSeconds },
    });
    const updated = await rest('PATCH', `/v1/servers/${plain}`, { rate_limits: { per_user: { requests: 5, window_seconds: 10 } } }, root.token);
    expect(updated.status).toBe(200);
    expect(updated.body.rate_limits.per_user).toEqual({ requests: 5, window_seconds: 10 });
    expect(updated.body.rate_limits.per_server.requests).toBe(DEFAULT_RATE_LIMITS.perServer.requests);
    // Another update that does not name per_user leaves it alone; null restores the default.
    await rest('PATCH', `/v1/servers/${plain}`, { rate_limits: { per_server: { requests: 50, window_seconds: 60 } } }, root.token);
    expect((await rest('GET', `/v1/servers/${plain}`, undefined, root.token)).body.rate_limits).toEqual({ per_user: { requests: 5, window_seconds: 10 }, per_server: { requests: 50, window_seconds: 60 } });
    const reset = await rest('PATCH', `/v1/servers/${plain}`, { rate_limits: { per_user: null } }, root.token);
    expect(reset.body.rate_limits.per_user.requests).toBe(DEFAULT_RATE_LIMITS.perUser.requests);
  });

  it.each([
    [{ per_user: { requests: 0, window_seconds: 60 } }, 'rate_limits.per_user.requests'],
    [{ per_user: { requests: 1.5, window_seconds: 60 } }, 'rate_limits.per_user.requests'],
    [{ per_server: { requests: 10, window_seconds: 0 } }, 'rate_limits.per_server.window_seconds'],
    [{ per_server: { requests: 10, window_seconds: 86_401 } }, 'rate_limits.per_server.window_seconds'],
    [{ per_user: { requests: 2_000_000, window_seconds: 60 } }, 'rate_limits.per_user.requests'],
    [{ per_user: { requests: 'ten', window_seconds: 60 } }, 'rate_limits.per_user.requests'],
    [{ per_user: { requests: 10 } }, 'rate_limits.per_user.window_seconds'],
    [{ per_minute: 10 }, 'rate_limits'],
  ])('refuses %j with a 400 naming the field, and changes nothing', async (rate_limits, path) => {
    const serverId = await registerLimited({ per_user: { requests: 7, window_seconds: 7 } });
    for (const res of [
      await rest('PATCH', `/v1/servers/${serverId}`, { rate_limits }, root.token),
      await rest('POST', '/v1/servers/register', { server_id: serverId, name: 'Limited', endpoints: { mcp: 'https://mcp.example/mcp' }, rate_limits }, root.token),
    ]) {
      expect(res.status).toBe(400);
      expect(res.body.message).toContain(path);
    }
    expect((await rest('GET', `/v1/servers/${serverId}`, undefined, root.token)).body.rate_limits.per_user).toEqual({ requests: 7, window_seconds: 7 });
  });
});

describe('servers.export and servers.import rate_limits', () => {
  it('carries a server’s limits through server.json, and refuses bad ones in it', async () => {
    const serverId = await registerLimited({ per_user: { requests: 9, window_seconds: 30 } });
    const exported = await rest('GET', `/v1/servers/${serverId}/server.json`, undefined, root.token);
    const meta = exported.body._meta['cc.chitty.auth/portal'];
    expect(meta.rate_limits).toEqual({ per_user: { requests: 9, window_seconds: 30 }, per_server: { requests: DEFAULT_RATE_LIMITS.perServer.requests, window_seconds: DEFAULT_RATE_LIMITS.perServer.windowSeconds } });
    const copy = `${serverId}-copy`;
    const imported = await rest('POST', '/v1/servers/import', { server: exported.body, server_id: copy }, root.token);
    expect(imported.status, JSON.stringify(imported.body)).toBe(200);
    expect(imported.body.server.rate_limits).toEqual(meta.rate_limits);

    const bad = structuredClone(exported.body);
    bad._meta['cc.chitty.auth/portal'].rate_limits.per_user.requests = -1;
    const refused = await rest('POST', '/v1/servers/import', { server: bad, server_id: `${serverId}-bad` }, root.token);
    expect(refused.status).toBe(400);
    expect(refused.body.message).toContain('rate_limits');
    expect((await rest('GET', `/v1/servers/${serverId}-bad`, undefined, root.token)).status).toBe(404);
  });
});

describe('gateway rate limits', () => {
  it('answers 429 with Retry-After and a JSON-RPC error naming the per-user limit, and serves another user', async () => {
    const serverId = await registerLimited({ per_user: { requests: 2, window_seconds: 1 } });
    const alice = await keyOf(await user());
    const bob = await keyOf(await user());
    expect((await call(serverId, alice)).status).toBe(200);
    expect((await call(serverId, alice)).status).toBe(200);
    const refused = await call(serverId, alice, 42);
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBe(1);
    expect(refused.body).toMatchObject({ jsonrpc: '2.0', id: 42, error: { code: -32029, data: { limit: 'per_user', requests: 2, window_seconds: 1, retry_after: 1 } } });
    expect(refused.body.error.message).toContain('your limit of 2 requests per 1 s');
    // One audit event for the run of refusals, however long it is.
    expect((await call(serverId, alice)).status).toBe(429);
    let audited: unknown[] = [];
    for (let i = 0; i < 20 && audited.length === 0; i++) {
      audited = (await env.DB.prepare("SELECT detail FROM audit_events WHERE action = 'gateway.call' AND target = ? AND outcome = 'denied'").bind(serverId).all()).results;
      if (audited.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(audited.map((e: any) => JSON.parse(e.detail))).toEqual([expect.objectContaining({ reason: 'rate_limited', limit: 'per_user' })]);
    // The limit is per user: bob is served while alice waits.
    expect((await call(serverId, bob)).status).toBe(200);
    // After Retry-After, alice is served again.
    await new Promise((r) => setTimeout(r, Number(refused.retryAfter) * 1000));
    const again = await call(serverId, alice);
    expect(again.status).toBe(200);
    expect(again.body.result.tools.length).toBeGreaterThan(0);
  });

  it('answers 429 naming the per-server limit once all users together exceed it, and recovers after the window', async () => {
    const serverId = await registerLimited({ per_server: { requests: 3, window_seconds: 1 } });
    const keys = [await keyOf(await user()), await keyOf(await user())];
    expect((await call(serverId, keys[0]!)).status).toBe(200);
    expect((await call(serverId, keys[1]!)).status).toBe(200);
    expect((await call(serverId, keys[0]!)).status).toBe(200);
    for (const key of keys) {
      const refused = await call(serverId, key);
      expect(refused.status).toBe(429);
      expect(refused.retryAfter).toBe('1');
      expect(refused.body.error.data).toMatchObject({ limit: 'per_server', requests: 3, window_seconds: 1 });
      expect(refused.body.error.message).toContain(`for all users of ${serverId}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    expect((await call(serverId, keys[1]!)).status).toBe(200);
  });

  it('answers a request that is not JSON-RPC (GET) with a plain JSON 429', async () => {
    const serverId = await registerLimited({ per_user: { requests: 1, window_seconds: 60 } });
    const key = await keyOf(await user());
    expect((await call(serverId, key)).status).toBe(200);
    const res = await SELF.fetch(`${ORIGIN}/gw/${serverId}/mcp`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${key}` } });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    expect(await res.json()).toMatchObject({ error: 'rate_limited', limit: 'per_user', requests: 1, window_seconds: 60 });
  });

  it('counts each message of a JSON-RPC batch', async () => {
    const serverId = await registerLimited({ per_user: { requests: 3, window_seconds: 60 } });
    const key = await keyOf(await user());
    const batch = await SELF.fetch(`${ORIGIN}/gw/${serverId}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-03-26', authorization: `Bearer ${key}` },
      body: JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', id: 2, method: 'ping' }]),
    });
    await batch.body?.cancel();
    expect(batch.status).not.toBe(429);
    expect((await call(serverId, key)).status).toBe(200);
    const refused = await call(serverId, key, 7);
    expect(refused.status).toBe(429);
    expect(refused.body.error.data).toMatchObject({ limit: 'per_user', requests: 3 });
  });

  it('does not count requests that fail authentication', async () => {
    const serverId = await registerLimited({ per_server: { requests: 1, window_seconds: 60 } });
    for (let i = 0; i < 3; i++) expect((await call(serverId, 'chitty_not-a-key')).status).toBe(401);
    expect((await call(serverId, await keyOf(await user()))).status).toBe(200);
  });
});
