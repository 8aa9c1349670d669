import { describe, expect, it } from 'vitest';
import { checkPart, formatChittyId, IDENTITY_TYPES, parseChittyId, randomIdentifier } from './chitty-id';

const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const SAMPLES = ['USER123', 'K', 'ACME0CORP9', 'ZZZZZZZZZZZZZZZZZZZZZZZZ', '0123456789ABCDEFGHIJKLMN'];

/** Splits a ChittyID into its four dash-separated parts (none of them contains a dash). */
const parts = (id: string) => id.split('-') as [string, string, string, string];
const join = (type: string, body: string, check: string) => `CHITTY-${type}-${body}-${check}`;

describe('formatChittyId + parseChittyId', () => {
  it.each(IDENTITY_TYPES.flatMap((type) => SAMPLES.map((id) => [type, id] as const)))('round-trips type %s with identifier %s', (type, id) => {
    const formatted = formatChittyId(type, id);
    expect(formatted).toBe(`CHITTY-${type}-${id}-${checkPart(type, id)}`);
    expect(formatted).toMatch(/^CHITTY-[A-Z]{3}-[A-Z0-9]{1,24}-[A-Z0-9]{3}$/);
    expect(parseChittyId(formatted)).toEqual({ ok: true, type, id });
  });

  it('gives different identities different check parts when only the type differs', () => {
    expect(new Set(IDENTITY_TYPES.map((t) => checkPart(t, 'USER123'))).size).toBe(IDENTITY_TYPES.length);
  });

  it('formats random identifiers that parse and use only unambiguous characters', () => {
    for (let i = 0; i < 200; i++) {
      const id = randomIdentifier();
      expect(id).toMatch(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{10}$/);
      expect(parseChittyId(formatChittyId('APP', id)).ok).toBe(true);
    }
    expect(randomIdentifier(24)).toHaveLength(24);
  });
});

describe('parseChittyId: typos', () => {
  it.each(SAMPLES)('reports bad_check for every single-character substitution in the identifier %s', (id) => {
    const good = formatChittyId('PEO', id);
    const [, type, body, check] = parts(good);
    let tried = 0;
    for (let i = 0; i < body.length; i++) {
      for (const c of ALNUM) {
        if (c === body[i]) continue;
        const typo = join(type, body.slice(0, i) + c + body.slice(i + 1), check);
        expect(parseChittyId(typo), typo).toEqual({ ok: false, reason: 'bad_check' });
        tried++;
      }
    }
    expect(tried).toBe(body.length * 35);
  });

  it.each(SAMPLES)('reports bad_check for every single-character substitution in the check part of %s', (id) => {
    const [, type, body, check] = parts(formatChittyId('ORG', id));
    for (let i = 0; i < check.length; i++) {
      for (const c of ALNUM) {
        if (c === check[i]) continue;
        const typo = join(type, body, check.slice(0, i) + c + check.slice(i + 1));
        expect(parseChittyId(typo), typo).toEqual({ ok: false, reason: 'bad_check' });
      }
    }
  });

  it.each(['USER123', 'ACME0CORP9', '0123456789ABCDEFGHIJKLMN', 'AB', 'X9Y8Z7'])('reports bad_check for every adjacent transposition in the identifier %s', (id) => {
    const [, type, body, check] = parts(formatChittyId('MCP', id));
    let tried = 0;
    for (let i = 0; i + 1 < body.length; i++) {
      if (body[i] === body[i + 1]) continue;
      const swapped = body.slice(0, i) + body[i + 1] + body[i] + body.slice(i + 2);
      const typo = join(type, swapped, check);
      expect(parseChittyId(typo), typo).toEqual({ ok: false, reason: 'bad_check' });
      tried++;
    }
    expect(tried).toBeGreaterThan(0);
  });

  it('reports bad_check when the type is substituted by another known type', () => {
    const [, , body, check] = parts(formatChittyId('PEO', 'USER123'));
    for (const other of IDENTITY_TYPES.filter((t) => t !== 'PEO')) {
      expect(parseChittyId(join(other, body, check))).toEqual({ ok: false, reason: 'bad_check' });
    }
  });
});

describe('parseChittyId: malformed input', () => {
  const good = formatChittyId('PEO', 'USER123');
  const [, , , check] = parts(good);
  it.each([
    ['empty string', ''],
    ['no check part', 'CHITTY-PEO-USER123'],
    ['lower case', good.toLowerCase()],
    ['wrong prefix', good.replace('CHITTY', 'CHITY')],
    ['two-letter type', `CHITTY-PE-USER123-${check}`],
    ['four-letter type', `CHITTY-PEOP-USER123-${check}`],
    ['digit in type', `CHITTY-PE0-USER123-${check}`],
    ['empty identifier', `CHITTY-PEO--${check}`],
    ['25-character identifier', `CHITTY-PEO-${'A'.repeat(25)}-${checkPart('PEO', 'A'.repeat(25))}`],
    ['underscore in identifier', `CHITTY-PEO-USER_123-${check}`],
    ['lower-case identifier', `CHITTY-PEO-user123-${check}`],
    ['two-character check', `CHITTY-PEO-USER123-${check.slice(0, 2)}`],
    ['four-character check', `CHITTY-PEO-USER123-${check}A`],
    ['leading space', ` ${good}`],
    ['trailing newline', `${good}\n`],
    ['extra segment', `CHITTY-PEO-USER-123-${check}`],
    ['prefix text', `X${good}`],
  ])('reports malformed for %s', (_label, value) => {
    expect(parseChittyId(value)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('parseChittyId: unknown type', () => {
  it.each(['XYZ', 'USR', 'AAA'])('reports unknown_type for a well-formed id of type %s with a correct check part', (type) => {
    expect(parseChittyId(join(type, 'USER123', checkPart(type, 'USER123')))).toEqual({ ok: false, reason: 'unknown_type' });
  });

  it('reports bad_check rather than unknown_type when the check part is also wrong', () => {
    const check = checkPart('XYZ', 'USER123');
    const wrong = (check[0] === 'A' ? 'B' : 'A') + check.slice(1);
    expect(parseChittyId(join('XYZ', 'USER123', wrong))).toEqual({ ok: false, reason: 'bad_check' });
  });
});
