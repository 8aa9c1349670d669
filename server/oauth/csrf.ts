import { base64url } from 'jose';
import { derivedKey } from '../crypto/derive';
import { timingSafeEqualStrings } from '../crypto/hash';

/**
 * Signed, expiring tokens for HTML forms (CSRF) and for the authorization request the forms carry.
 * HMAC-SHA-256 under a key derived from ENCRYPTION_KEY; a token is bound to its purpose and to a value
 * the attacker cannot know (the browser's pre-login cookie, or the signed-in session).
 */
const encoder = new TextEncoder();
const hmacKey = (secret: string) =>
  derivedKey(secret, 'chittyauth/forms/v1', 'hmac-sha-256', { name: 'HMAC', hash: 'SHA-256', length: 256 }, ['sign']);

async function mac(secret: string, message: string): Promise<string> {
  const sig = await crypto.subtle.sign('HMAC', await hmacKey(secret), encoder.encode(message));
  return base64url.encode(new Uint8Array(sig));
}

/** `payload.expiry.mac`, where payload is base64url JSON. */
export async function sign(secret: string, purpose: string, binding: string, payload: unknown, ttlSeconds: number): Promise<string> {
  const body = base64url.encode(encoder.encode(JSON.stringify(payload)));
  const expiry = String(Math.floor(Date.now() / 1000) + ttlSeconds);
  return `${body}.${expiry}.${await mac(secret, `${purpose}\n${binding}\n${body}\n${expiry}`)}`;
}

export async function verify<T>(secret: string, purpose: string, binding: string, token: string | null | undefined): Promise<T | null> {
  if (!token) return null;
  const [body, expiry, sig] = token.split('.');
  if (!body || !expiry || !sig) return null;
  if (!timingSafeEqualStrings(await mac(secret, `${purpose}\n${binding}\n${body}\n${expiry}`), sig)) return null;
  if (Number(expiry) < Date.now() / 1000) return null;
  try {
    return JSON.parse(new TextDecoder().decode(base64url.decode(body))) as T;
  } catch {
    return null;
  }
}
