import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';

describe('smoke', () => {
  it('answers health and bootstraps', async () => {
    const h = await SELF.fetch('http://chittyauth.test/health');
    expect(h.status).toBe(200);
    const r = await SELF.fetch('http://chittyauth.test/v1/accounts/bootstrap', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ setup_token: 'test-setup-token', username: 'admin', password: 'correct horse battery' }),
    });
    console.log(r.status, await r.text());
    const s = await SELF.fetch('http://chittyauth.test/v1/accounts/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'correct horse battery' }),
    });
    const { access_token } = (await s.json()) as { access_token: string };
    const k = await SELF.fetch('http://chittyauth.test/v1/api-keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${access_token}` },
      body: JSON.stringify({ name: 'x'.repeat(200), junk: 1 }),
    });
    console.log(k.status, await k.text());
    const k2 = await SELF.fetch('http://chittyauth.test/v1/api-keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${access_token}` },
      body: JSON.stringify({ name: 'ok' }),
    });
    console.log(k2.status, await k2.text());
    const l = await SELF.fetch('http://chittyauth.test/v1/api-keys?limit=2', { headers: { authorization: `Bearer ${access_token}` } });
    console.log(l.status, await l.text());
    const u = await SELF.fetch('http://chittyauth.test/v1/api-keys', { method: 'POST', body: '{"name":1}', headers: { 'content-type': 'application/json' } });
    console.log('unauth bad input', u.status, await u.text());
  });
});
