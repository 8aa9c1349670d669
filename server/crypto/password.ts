import { base64url } from 'jose';
import { timingSafeEqualStrings } from './hash';

/**
 * Password hashing with PBKDF2-HMAC-SHA-256 from WebCrypto. 100,000 iterations is the most workerd
 * allows; the stored form records the iteration count so it can be raised without breaking old hashes.
 * Format: `pbkdf2-sha256$<iterations>$<salt>$<hash>`.
 */
const ITERATIONS = 100_000;
const encoder = new TextEncoder();

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', encoder.encode(password.normalize('NFKC')), 'PBKDF2', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, 256);
  return new Uint8Array(bits);
}

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await derive(password, salt, ITERATIONS);
  return `pbkdf2-sha256$${ITERATIONS}$${base64url.encode(salt)}$${base64url.encode(hash)}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, iterations, salt, hash] = stored.split('$');
  if (scheme !== 'pbkdf2-sha256' || !iterations || !salt || !hash) return false;
  passwordHashStats.verifications++;
  const candidate = await derive(password, base64url.decode(salt), Number(iterations));
  return timingSafeEqualStrings(base64url.encode(candidate), hash);
}

/** Whether a stored hash was made with other parameters than today's (it is replaced at the next sign-in). */
export function needsRehash(stored: string): boolean {
  const [scheme, iterations] = stored.split('$');
  return scheme !== 'pbkdf2-sha256' || Number(iterations) !== ITERATIONS;
}

/** How many password hashes this isolate has computed: tests count them (the throttle bounds them). */
export const passwordHashStats = { verifications: 0 };

/** A hash to compare against when the username is unknown, so timing does not reveal which usernames exist. */
export const DUMMY_PASSWORD_HASH = `pbkdf2-sha256$${ITERATIONS}$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`;
