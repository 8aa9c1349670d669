/**
 * Keys derived from the ENCRYPTION_KEY secret with HKDF-SHA-256, one per purpose (the salt), imported once
 * per isolate. Purposes never share a key: encryption at rest and form signing are independent.
 */
const encoder = new TextEncoder();
const cache = new Map<string, Promise<CryptoKey>>();

export function derivedKey(secret: string, salt: string, info: string, algorithm: SubtleCryptoDeriveKeyAlgorithm | { name: string; length?: number; hash?: string }, usages: string[]): Promise<CryptoKey> {
  const id = `${salt}\n${info}\n${secret}`;
  let key = cache.get(id);
  if (!key) {
    key = (async () => {
      const ikm = await crypto.subtle.importKey('raw', encoder.encode(secret), 'HKDF', false, ['deriveKey']);
      return crypto.subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: encoder.encode(salt), info: encoder.encode(info) }, ikm, algorithm, false, usages);
    })();
    cache.set(id, key);
  }
  return key;
}
