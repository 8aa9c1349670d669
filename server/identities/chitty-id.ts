/**
 * ChittyIDs: `CHITTY-{TYPE}-{ID}-{CHECK}`. The check part is three characters:
 * the first is ISO 7064 MOD 37,36 over `TYPE` + `ID` (detects every single-character substitution and
 * every adjacent transposition), the other two an FNV-1a digest (catches most other typos).
 * Pure functions: no I/O, tested alone.
 */
const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
// Unambiguous characters for random identifiers (no 0/O, 1/I/L).
const RANDOM_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';

export const IDENTITY_TYPES = ['PEO', 'ORG', 'APP', 'DEV', 'MCP', 'SVC'] as const;
export type IdentityType = (typeof IDENTITY_TYPES)[number];

const SHAPE = /^CHITTY-([A-Z]{3})-([A-Z0-9]{1,24})-([A-Z0-9]{3})$/;

function mod3736(payload: string): string {
  const M = 36;
  let p = M;
  for (const ch of payload) {
    let s = (p + ALNUM.indexOf(ch)) % M;
    if (s === 0) s = M;
    p = (2 * s) % (M + 1);
  }
  return ALNUM[(M + 1 - p) % M]!;
}

function fnv2(payload: string): string {
  let h = 0x811c9dc5;
  for (const ch of payload) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const n = h % (36 * 36);
  return ALNUM[Math.floor(n / 36)]! + ALNUM[n % 36]!;
}

export function checkPart(type: string, id: string): string {
  const payload = type + id;
  return mod3736(payload) + fnv2(payload);
}

export function formatChittyId(type: IdentityType, id: string): string {
  return `CHITTY-${type}-${id}-${checkPart(type, id)}`;
}

export function randomIdentifier(length = 10): string {
  let out = '';
  for (const b of crypto.getRandomValues(new Uint8Array(length))) out += RANDOM_ALPHABET[b % RANDOM_ALPHABET.length];
  return out;
}

export type ParseResult =
  | { ok: true; type: IdentityType; id: string }
  | { ok: false; reason: 'malformed' | 'bad_check' | 'unknown_type' };

export function parseChittyId(value: string): ParseResult {
  const m = SHAPE.exec(value);
  if (!m) return { ok: false, reason: 'malformed' };
  const [, type, id, check] = m as unknown as [string, string, string, string];
  if (checkPart(type, id) !== check) return { ok: false, reason: 'bad_check' };
  if (!(IDENTITY_TYPES as readonly string[]).includes(type)) return { ok: false, reason: 'unknown_type' };
  return { ok: true, type: type as IdentityType, id };
}
