// Crockford base32, lowercase: ids sort by creation time and read unambiguously.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** A time-ordered identifier `prefix_` + 10 characters of milliseconds + 16 random characters (80 bits). */
export function newId(prefix: string, now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let rand = '';
  for (const b of bytes) rand += ALPHABET[b % 32];
  return `${prefix}_${time}${rand}`;
}
