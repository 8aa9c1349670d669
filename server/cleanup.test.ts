import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { admin, auditHead, query, rest, user } from '../test/workers/helpers';
import type { Env } from './env';
import worker from './index';

const DAY = 86_400_000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
const ahead = (ms: number) => new Date(Date.now() + ms).toISOString();

async function insertSession(id: string, chittyId: string, o: { expires_at: string; revoked_at?: string | null }) {
  await env.DB.prepare('INSERT INTO sessions (id, chitty_id, created_at, last_seen_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)')
    .bind(id, chittyId, ago(40 * DAY), ago(40 * DAY), o.expires_at, o.revoked_at ?? null)
    .run();
}

async function insertApiKey(id: string, chittyId: string, o: { expires_at?: string | null; revoked_at?: string | null }) {
  await env.DB.prepare('INSERT INTO api_keys (id, chitty_id, name, prefix, secret_hash, scopes, created_by, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
    .bind(id, chittyId, id, 'chitty_xxxxxx', `hash-of-${id}`, '["*"]', chittyId, ago(400 * DAY), o.expires_at ?? null, o.revoked_at ?? null)
    .run();
}

async function insertGrant(id: string, chittyId: string, expiresAt: string | null) {
  await env.DB.prepare('INSERT INTO grants (id, chitty_id, permission, granted_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
    .bind(id, chittyId, 'jwt:keys:read', chittyId, ago(DAY), expiresAt)
    .run();
}

const ids = async (table: string, prefix: string) =>
  (await query<{ id: string }>(`SELECT id FROM ${table} WHERE id LIKE ? ORDER BY id`, `${prefix}%`)).map((r) => r.id);

async function runScheduled() {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: '*/15 * * * *' }), env as unknown as Env, ctx);
  await waitOnExecutionContext(ctx);
}

describe('scheduled (cleanupExpired)', () => {
  it('deletes expired grants and long-ended sessions and keys, and keeps live rows and every audit event', async () => {
    const root = await admin();
    const u = await user();
    const id = u.chittyId;

    await insertGrant('grt_t_expired', id, ago(1000));
    await insertGrant('grt_t_future', id, ahead(DAY));
    await insertGrant('grt_t_forever', id, null);

    await insertSession('ses_t_expired_long_ago', id, { expires_at: ago(31 * DAY) });
    await insertSession('ses_t_revoked_long_ago', id, { expires_at: ahead(DAY), revoked_at: ago(31 * DAY) });
    await insertSession('ses_t_expired_recently', id, { expires_at: ago(DAY) });
    await insertSession('ses_t_revoked_recently', id, { expires_at: ahead(DAY), revoked_at: ago(DAY) });
    await insertSession('ses_t_live', id, { expires_at: ahead(DAY) });

    await insertApiKey('key_t_expired_long_ago', id, { expires_at: ago(31 * DAY) });
    await insertApiKey('key_t_revoked_long_ago', id, { revoked_at: ago(31 * DAY) });
    await insertApiKey('key_t_expired_recently', id, { expires_at: ago(DAY) });
    await insertApiKey('key_t_revoked_recently', id, { revoked_at: ago(DAY) });
    await insertApiKey('key_t_live', id, { expires_at: ahead(DAY) });
    await insertApiKey('key_t_forever', id, {});

    // A retired signing key whose tokens can no longer be valid, and one that must still verify.
    await rest('POST', '/v1/jwt', {}, root.token);
    const first = await rest('POST', '/v1/jwt/keys/rotate', {}, root.token);
    const second = await rest('POST', '/v1/jwt/keys/rotate', {}, root.token);
    const oldest: string = first.body.retired[0].kid;
    const stillVerifying: string = second.body.retired[0].kid;
    await env.DB.prepare('UPDATE signing_keys SET verify_until = ? WHERE kid = ?').bind(ago(1000), oldest).run();

    // Spent client-assertion jtis: one whose assertion has expired goes, one that could still be replayed stays.
    await env.DB.prepare('INSERT INTO oauth_client_assertions (client_id, jti, expires_at) VALUES (?, ?, ?), (?, ?, ?)')
      .bind('https://client.example/client.json', 'jti_t_expired', ago(1000), 'https://client.example/client.json', 'jti_t_live', ahead(60_000))
      .run();
    await env.DB.prepare('INSERT INTO oauth_id_jag_jtis (issuer, jti, expires_at) VALUES (?, ?, ?), (?, ?, ?)')
      .bind('https://idp.example', 'jti_t_expired', ago(1000), 'https://idp.example', 'jti_t_live', ahead(60_000))
      .run();

    const audit = await query('SELECT * FROM audit_events ORDER BY seq');
    expect(audit.length).toBe(await auditHead());
    const liveSessions = await query<{ id: string }>("SELECT id FROM sessions WHERE id NOT LIKE 'ses_t_%'");

    await runScheduled();

    expect(await ids('grants', 'grt_t_')).toEqual(['grt_t_forever', 'grt_t_future']);
    expect(await ids('sessions', 'ses_t_')).toEqual(['ses_t_expired_recently', 'ses_t_live', 'ses_t_revoked_recently']);
    expect(await ids('api_keys', 'key_t_')).toEqual(['key_t_expired_recently', 'key_t_forever', 'key_t_live', 'key_t_revoked_recently']);
    expect(await query("SELECT jti FROM oauth_client_assertions WHERE jti LIKE 'jti_t_%'")).toEqual([{ jti: 'jti_t_live' }]);
    expect(await query("SELECT jti FROM oauth_id_jag_jtis WHERE jti LIKE 'jti_t_%'")).toEqual([{ jti: 'jti_t_live' }]);
    expect(await query<{ id: string }>("SELECT id FROM sessions WHERE id NOT LIKE 'ses_t_%'")).toEqual(liveSessions);
    expect(await query('SELECT kid, status FROM signing_keys ORDER BY created_at')).toEqual([
      { kid: stillVerifying, status: 'retired' },
      { kid: second.body.active.kid, status: 'active' },
    ]);
    // The role grants of real accounts are untouched.
    expect(await query('SELECT role FROM grants WHERE chitty_id = ? AND role IS NOT NULL', id)).toEqual([{ role: 'user' }]);
    // Audit events are the record: none is deleted or changed, and the chain still verifies.
    expect(await query('SELECT * FROM audit_events WHERE seq <= ? ORDER BY seq', audit.length)).toEqual(audit);
    expect((await rest('POST', '/v1/audit/verify', {}, root.token)).body).toMatchObject({ valid: true, problems: [] });
    expect((await rest('GET', '/v1/accounts/me', undefined, u.token)).status).toBe(200);
  });

  it('changes nothing when run again with nothing expired', async () => {
    await admin();
    const before = {
      sessions: await query('SELECT * FROM sessions ORDER BY id'),
      api_keys: await query('SELECT * FROM api_keys ORDER BY id'),
      grants: await query('SELECT * FROM grants ORDER BY id'),
      signing_keys: await query('SELECT * FROM signing_keys ORDER BY kid'),
    };
    await runScheduled();
    expect({
      sessions: await query('SELECT * FROM sessions ORDER BY id'),
      api_keys: await query('SELECT * FROM api_keys ORDER BY id'),
      grants: await query('SELECT * FROM grants ORDER BY id'),
      signing_keys: await query('SELECT * FROM signing_keys ORDER BY kid'),
    }).toEqual(before);
  });
});
