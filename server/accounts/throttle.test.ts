import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { answer, auditHead, auditSince, count, user } from '../../test/workers/helpers';
import { passwordHashStats } from '../crypto/password';
import { SIGN_IN_LIMITS } from './throttle';

/** A sign-in from a given client address (Cloudflare sets CF-Connecting-IP on every request). */
const signInFrom = async (ip: string, username: string, password: string) =>
  answer(
    await SELF.fetch('http://chittyauth.test/v1/accounts/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'cf-connecting-ip': ip },
      body: JSON.stringify({ username, password }),
    }),
  );

const statuses = (answers: { status: number }[]) =>
  answers.reduce<Record<number, number>>((acc, a) => ({ ...acc, [a.status]: (acc[a.status] ?? 0) + 1 }), {});

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

describe('accounts.signIn throttling', () => {
  it('locks one account at the threshold under 50 concurrent wrong passwords: nothing is hashed past it', async () => {
    const u = await user();
    const hashes = passwordHashStats.verifications;
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => signInFrom('198.51.100.1', u.username, `wrong password ${i}`)));
    expect(statuses(answers)).toEqual({ 401: SIGN_IN_LIMITS.usernameAddress, 429: 50 - SIGN_IN_LIMITS.usernameAddress });
    // Counted, not timed: only the attempts within the allowance reached the password hash.
    expect(passwordHashStats.verifications - hashes).toBe(SIGN_IN_LIMITS.usernameAddress);
    // The right password is refused now too: no guess past the threshold could have succeeded.
    const sessions = await count('sessions', 'chitty_id = ?', u.chittyId);
    expect((await signInFrom('198.51.100.1', u.username, u.password)).status).toBe(429);
    expect(await count('sessions', 'chitty_id = ?', u.chittyId)).toBe(sessions);
  });

  it('throttles 50 concurrent unknown usernames from one address at the per-address limit', async () => {
    const hashes = passwordHashStats.verifications;
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => signInFrom('198.51.100.2', `nobody-${i}`, 'some password')));
    expect(statuses(answers)).toEqual({ 401: SIGN_IN_LIMITS.address, 429: 50 - SIGN_IN_LIMITS.address });
    expect(passwordHashStats.verifications - hashes).toBe(SIGN_IN_LIMITS.address);
  });

  it('answers unknown and known usernames alike: status, body, headers and time', async () => {
    const u = await user();
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 9; i++) {
      let t = performance.now();
      const a = await signInFrom('198.51.100.3', u.username, `wrong password ${i}`);
      known.push(performance.now() - t);
      t = performance.now();
      const b = await signInFrom('198.51.100.4', 'nobody-at-all', `wrong password ${i}`);
      unknown.push(performance.now() - t);
      expect([a.status, a.body]).toEqual([b.status, b.body]);
    }
    // Both paths do the same work (the counters, one account lookup, one hash, no write).
    expect(Math.abs(median(known) - median(unknown))).toBeLessThan(10);
    // And at the limit both are throttled with the same answer.
    await signInFrom('198.51.100.3', u.username, 'wrong');
    await signInFrom('198.51.100.4', 'nobody-at-all', 'wrong');
    const a = await signInFrom('198.51.100.3', u.username, 'wrong');
    const b = await signInFrom('198.51.100.4', 'nobody-at-all', 'wrong');
    expect(a.status).toBe(429);
    expect([a.status, a.body.code, a.body.message]).toEqual([b.status, b.body.code, b.body.message]);
  });

  it('does not lock the account out for other addresses when one address guesses', async () => {
    const u = await user();
    for (let i = 0; i < SIGN_IN_LIMITS.usernameAddress + 2; i++) await signInFrom('198.51.100.5', u.username, `wrong ${i}`);
    expect((await signInFrom('198.51.100.5', u.username, u.password)).status).toBe(429);
    expect((await signInFrom('198.51.100.6', u.username, u.password)).status).toBe(200);
  });

  it('caps guesses at one username from many addresses', async () => {
    const u = await user();
    const head = await auditHead();
    const answers = [];
    for (let i = 0; i < SIGN_IN_LIMITS.username + 5; i++) answers.push(await signInFrom(`203.0.113.${i % 200}`, u.username, `wrong ${i}`));
    expect(statuses(answers)).toEqual({ 401: SIGN_IN_LIMITS.username, 429: 5 });
    expect((await signInFrom('192.0.2.99', u.username, u.password)).status).toBe(429);
    const locks = (await auditSince(head)).filter((e) => e.action === 'accounts.lock');
    expect(locks.map((e) => JSON.parse(e.detail).limit)).toEqual(['username']);
  });

  it('gives a successful sign-in its attempt back, so a busy address is not throttled by its own sign-ins', async () => {
    const u = await user();
    for (let i = 0; i < SIGN_IN_LIMITS.address + 5; i++) expect((await signInFrom('198.51.100.7', u.username, u.password)).status).toBe(200);
  });
});
