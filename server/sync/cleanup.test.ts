import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { query, rest, user } from '../../test/workers/helpers';
import { cleanupExpired, SYNC_CHANGES_RETAIN_MS } from '../cleanup';
import { getDb } from '../db/schema';

describe('scheduled cleanup of sync rows', () => {
  it('deletes what a long-ended session spanned with it, and change-log entries past retention, and keeps the rest', async () => {
    const u = await user();
    const me = await rest('GET', '/v1/sessions', undefined, u.token);
    const live = me.body.items[0].session_id as string;
    expect((await rest('POST', '/v1/sync/sessions', { servers: ['notes'] }, u.token)).status).toBe(200);
    expect((await rest('PUT', '/v1/sync/state/notes', { base_revision: 0, document: { a: 1 } }, u.token)).status).toBe(200);
    const longAgo = new Date(Date.now() - 40 * 86_400_000).toISOString();
    await env.DB.prepare("INSERT INTO sessions (id, chitty_id, device_name, user_agent, ip, client, created_at, last_seen_at, expires_at, revoked_at) VALUES ('ses_old_sync', ?, null, null, null, 'rest', ?, ?, ?, ?)")
      .bind(u.chittyId, longAgo, longAgo, longAgo, longAgo)
      .run();
    await env.DB.prepare("INSERT INTO sync_sessions (session_id, chitty_id, servers, devices, updated_at) VALUES ('ses_old_sync', ?, '[]', '[]', ?)").bind(u.chittyId, longAgo).run();
    await env.DB.prepare("INSERT INTO sync_changes (chitty_id, server_id, revision, fields, device_id, at) VALUES (?, 'old', 1, '[]', null, ?)")
      .bind(u.chittyId, new Date(Date.now() - SYNC_CHANGES_RETAIN_MS - 86_400_000).toISOString())
      .run();

    const counts = await cleanupExpired(getDb(env.DB));
    expect(counts.sync_sessions).toBeGreaterThanOrEqual(1);
    expect(counts.sync_changes).toBeGreaterThanOrEqual(1);
    expect(await query('SELECT session_id FROM sync_sessions WHERE chitty_id = ?', u.chittyId)).toEqual([{ session_id: live }]);
    expect(await query('SELECT server_id FROM sync_changes WHERE chitty_id = ?', u.chittyId)).toEqual([{ server_id: 'notes' }]);
  });
});
