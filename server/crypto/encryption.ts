import { base64url } from 'jose';

/**
 * AES-256-GCM encryption at rest. The key is derived from the ENCRYPTION_KEY secret with HKDF-SHA-256;
 * every ciphertext is bound to its purpose and row through the additional authenticated data (`aad`),
 * so a ciphertext copied into another row does not decrypt.
 * Format: `v1.<iv>.<ciphertext+tag>` (base64url).
 */
const encoder = new TextEncoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

function aesKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = (async () => {
      const ikm = await crypto.subtle.importKey('raw', encoder.encode(secret), 'HKDF', false, ['deriveKey']);
      return crypto.subtle.deriveKey(
        { name: 'HKDF', hash: 'SHA-256', salt: encoder.encode('chittyauth/encryption/v1'), info: encoder.encode('aes-256-gcm') },
        ikm,
        { name: 'AES-GCM', length: 256 },
        false,
        ['encrypt', 'decrypt'],
      );
    })();
    keyCache.set(secret, key);
  }
  return key;
}

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
