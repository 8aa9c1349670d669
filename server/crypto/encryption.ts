import { base64url } from 'jose';
import { derivedKey } from './derive';

/**
 * AES-256-GCM encryption at rest. The key is derived from the ENCRYPTION_KEY secret with HKDF-SHA-256;
 * every ciphertext is bound to its purpose and row through the additional authenticated data (`aad`),
 * so a ciphertext copied into another row does not decrypt.
 * Format: `v1.<iv>.<ciphertext+tag>` (base64url).
 */
const encoder = new TextEncoder();
const aesKey = (secret: string) =>
  derivedKey(secret, 'chittyauth/encryption/v1', 'aes-256-gcm', { name: 'AES-GCM', length: 256 }, ['encrypt', 'decrypt']);

export function assertEncryptionKey(secret: string | undefined): asserts secret is string {
  if (!secret || secret.length < 32) {
    throw new Error('ENCRYPTION_KEY is missing or shorter than 32 characters; run `npm run dev` or `wrangler secret put ENCRYPTION_KEY`');
  }
}

export async function encrypt(secret: string, plaintext: string, aad: string): Promise<string> {
  assertEncryptionKey(secret);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData: encoder.encode(aad) },
    await aesKey(secret),
    encoder.encode(plaintext),
  );
  return `v1.${base64url.encode(iv)}.${base64url.encode(new Uint8Array(ct))}`;
}

export async function decrypt(secret: string, sealed: string, aad: string): Promise<string> {
  assertEncryptionKey(secret);
  const [version, iv, ct] = sealed.split('.');
  if (version !== 'v1' || !iv || !ct) throw new Error('Unknown ciphertext format');
  const pt = await crypto.subtle.decrypt(
    { name: 'AES-GCM', iv: base64url.decode(iv), additionalData: encoder.encode(aad) },
    await aesKey(secret),
    base64url.decode(ct),
  );
  return new TextDecoder().decode(pt);
}
