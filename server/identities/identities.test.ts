import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { admin, auditSince, auditHead, count, direct, query, rest, user, type Caller } from '../../test/workers/helpers';
import { checkPart, formatChittyId, parseChittyId } from './chitty-id';

/** Nothing listens on the discard port: every request to it fails at once. */
const UNREACHABLE = 'http://127.0.0.1:9';
const AUTHORITY = 'https://id.authority.test';

let root: Caller;
beforeAll(async () => {
  root = await admin();
});

afterEach(() => {
  vi.restoreAllMocks();
});

const identityRow = async (chittyId: string) => (await query('SELECT * FROM identities WHERE chitty_id = ?', chittyId))[0];

describe('identities.mint', () => {
  it('mints a ChittyID with the given identifier and records the identity', async () => {
    const head = await auditHead();
    const res = await rest('POST', '/v1/identities', { type: 'ORG', identifier: 'ACME1', display_name: 'Acme' }, root.token);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ chitty_id: formatChittyId('ORG', 'ACME1'), type: 'ORG', display_name: 'Acme', status: 'active', authority: 'local' });
    expect(await identityRow(res.body.chitty_id)).toMatchObject({ type: 'ORG', display_name: 'Acme', status: 'active', authority: 'local' });
    const events = await auditSince(head);
    expect(events).toMatchObject([{ actor: root.chittyId, action: 'identities.mint', target: res.body.chitty_id, door: 'rest', outcome: 'success' }]);
  });

  it('mints a random identifier that passes its own check when none is given', async () => {
    const res = await rest('POST', '/v1/identities', { type: 'MCP' }, root.token);
    expect(res.status).toBe(201);
    expect(parseChittyId(res.body.chitty_id)).toMatchObject({ ok: true, type: 'MCP' });
    expect(await identityRow(res.body.chitty_id)).toBeDefined();
  });

  it('answers 409 and writes nothing when the identifier is taken', async () => {
    const first = await rest('POST', '/v1/identities', { type: 'APP', identifier: 'TWICE1' }, root.token);
    expect(first.status).toBe(201);
    const before = await count('identities');
    const head = await auditHead();
    const second = await rest('POST', '/v1/identities', { type: 'APP', identifier: 'TWICE1', display_name: 'Other' }, root.token);
    expect(second.status).toBe(409);
    expect(second.body.code).toBe('CONFLICT');
    expect(await count('identities')).toBe(before);
    expect((await identityRow(first.body.chitty_id))!.display_name).toBeNull();
    expect(await auditSince(head)).toMatchObject([{ action: 'identities.mint', outcome: 'failure' }]);
  });

  it.each([
    ['an unknown type', { type: 'XYZ' }],
    ['a lower-case identifier', { type: 'PEO', identifier: 'user123' }],
    ['a two-character identifier', { type: 'PEO', identifier: 'AB' }],
    ['a 25-character identifier', { type: 'PEO', identifier: 'A'.repeat(25) }],
    ['an unknown field', { type: 'PEO', chitty_id: 'CHITTY-PEO-X-AAA' }],
    ['a blank display name', { type: 'PEO', display_name: '   ' }],
  ])('answers 400 and writes nothing for %s', async (_label, body) => {
    const before = await count('identities');
    const res = await rest('POST', '/v1/identities', body, root.token);
    expect(res.status).toBe(400);
    expect(await count('identities')).toBe(before);
  });

  it('answers 403 when the caller lacks identity:ids:mint', async () => {
    const u = await user();
    const before = await count('identities');
    const res = await rest('POST', '/v1/identities', { type: 'ORG', identifier: 'NOPE1' }, u.token);
    expect(res.status).toBe(403);
    expect(res.body.data).toEqual({ permission: 'identity:ids:mint' });
    expect(await count('identities')).toBe(before);
  });
});

describe('identities.get', () => {
  it('resolves a registered ChittyID', async () => {
    const u = await user();
    const res = await rest('GET', `/v1/identities/${u.chittyId}`, undefined, u.token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ chitty_id: u.chittyId, type: 'PEO', status: 'active', authority: 'local' });
  });

  it('answers 404 for a well-formed ChittyID that is not registered', async () => {
    const res = await rest('GET', `/v1/identities/${formatChittyId('PEO', 'NOBODY9')}`, undefined, root.token);
    expect(res.status).toBe(404);
  });

  it('answers 400 for a malformed ChittyID', async () => {
    const res = await rest('GET', '/v1/identities/CHITTY-PEO-nope-AAA', undefined, root.token);
    expect(res.status).toBe(400);
  });
});

describe('identities.validate', () => {
  it('reports a registered, active ChittyID as valid', async () => {
    const u = await user();
    const res = await rest('POST', '/v1/identities/validate', { chitty_id: u.chittyId }, u.token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ valid: true, chitty_id: u.chittyId, reason: null, identity: { chitty_id: u.chittyId, status: 'active' } });
  });

  it('reports bad_check for a typo in a registered ChittyID', async () => {
    const u = await user();
    const [, type, body, check] = u.chittyId.split('-') as [string, string, string, string];
    const typo = `CHITTY-${type}-${body.slice(0, -1)}${body.endsWith('A') ? 'B' : 'A'}-${check}`;
    const res = await rest('POST', '/v1/identities/validate', { chitty_id: typo }, u.token);
    expect(res.body).toEqual({ valid: false, chitty_id: typo, reason: 'bad_check', identity: null });
  });

  it.each([
    ['not_registered', () => formatChittyId('ORG', 'GHOST42')],
    ['malformed', () => 'CHITTY-PEO-USER123'],
    ['unknown_type', () => `CHITTY-XYZ-USER123-${checkPart('XYZ', 'USER123')}`],
  ])('reports %s', async (reason, id) => {
    const chittyId = id();
    const res = await rest('POST', '/v1/identities/validate', { chitty_id: chittyId }, root.token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ valid: false, chitty_id: chittyId, reason, identity: null });
  });

  it('reports disabled for the ChittyID of a disabled account', async () => {
    const u = await user();
    expect((await rest('POST', `/v1/accounts/${u.chittyId}/disable`, {}, root.token)).status).toBe(200);
    const res = await rest('POST', '/v1/identities/validate', { chitty_id: u.chittyId }, root.token);
    expect(res.body).toMatchObject({ valid: false, reason: 'disabled', identity: { chitty_id: u.chittyId, status: 'disabled' } });
  });
});

describe('identities.mint / identities.validate with an external authority (CHITTYID_ENDPOINT)', () => {
  const unreachable = { CHITTYID_ENDPOINT: UNREACHABLE };

  it('fails closed with 503 on mint when the authority cannot be reached, and records nothing', async () => {
    const before = await count('identities');
    const res = await direct('POST', '/v1/identities', { type: 'ORG', identifier: 'OFFLINE1' }, root.token, unreachable);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('SERVICE_UNAVAILABLE');
    expect(await count('identities')).toBe(before);
    expect(await identityRow(formatChittyId('ORG', 'OFFLINE1'))).toBeUndefined();
  });

  it('fails closed with 503 on validate of an unknown ChittyID when the authority cannot be reached', async () => {
    const unknown = formatChittyId('PEO', 'STRANGER7');
    const before = await count('identities');
    const res = await direct('POST', '/v1/identities/validate', { chitty_id: unknown }, root.token, unreachable);
    expect(res.status).toBe(503);
    expect(await count('identities')).toBe(before);
    expect(await identityRow(unknown)).toBeUndefined();
  });

  it('fails closed with 503 on account creation when the authority cannot be reached, and writes no account', async () => {
    const before = { identities: await count('identities'), accounts: await count('accounts') };
    const res = await direct('POST', '/v1/accounts', { username: 'offline-user', password: 'a long enough password' }, root.token, unreachable);
    expect(res.status).toBe(503);
    expect({ identities: await count('identities'), accounts: await count('accounts') }).toEqual(before);
  });

  /** Stubs the authority (a third party's server); any other request still goes out for real. */
  function stubAuthority(answer: (req: Request) => Response | Promise<Response>) {
    const realFetch = globalThis.fetch;
    const seen: Request[] = [];
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const req = new Request(input, init);
      if (new URL(req.url).origin !== AUTHORITY) return realFetch(input, init);
      seen.push(req.clone());
      return answer(req);
    });
    return { spy, seen };
  }

  it('mints through the authority and records the ChittyID it answers, never a local one', async () => {
    const minted = formatChittyId('ORG', 'FROMAUTH1');
    const { seen } = stubAuthority(() => Response.json({ chitty_id: minted }, { status: 201 }));
    const before = await count('identities');
    const res = await direct('POST', '/v1/identities', { type: 'ORG', identifier: 'ASKED1', display_name: 'Acme' }, root.token, {
      CHITTYID_ENDPOINT: AUTHORITY,
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ chitty_id: minted, type: 'ORG', authority: AUTHORITY });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('POST');
    expect(seen[0]!.url).toBe(`${AUTHORITY}/v1/chittyids`);
    expect(await seen[0]!.json()).toEqual({ type: 'ORG', identifier: 'ASKED1', display_name: 'Acme' });
    expect(await count('identities')).toBe(before + 1);
    expect(await identityRow(minted)).toMatchObject({ authority: AUTHORITY, display_name: 'Acme' });
    expect(await identityRow(formatChittyId('ORG', 'ASKED1'))).toBeUndefined();
  });

  it('calls the authority under the path CHITTYID_ENDPOINT names', async () => {
    const minted = formatChittyId('APP', 'PATHED1');
    const { seen } = stubAuthority(() => Response.json({ chitty_id: minted }, { status: 201 }));
    const res = await direct('POST', '/v1/identities', { type: 'APP' }, root.token, { CHITTYID_ENDPOINT: `${AUTHORITY}/chittyid/` });
    expect(res.status).toBe(201);
    expect(seen.map((r) => r.url)).toEqual([`${AUTHORITY}/chittyid/v1/chittyids`]);
  });

  it.each([
    ['an invalid ChittyID', () => Response.json({ chitty_id: 'CHITTY-ORG-FAKE-AAA' }, { status: 201 })],
    ['a server error', () => new Response('oops', { status: 500 })],
    ['a body that is not JSON', () => new Response('<html>', { status: 201 })],
    ['a redirect', () => new Response(null, { status: 302, headers: { location: 'https://elsewhere.test/v1/chittyids' } })],
  ])('answers 503 and records nothing when the authority answers %s', async (_label, answer) => {
    stubAuthority(answer);
    const before = await count('identities');
    const res = await direct('POST', '/v1/identities', { type: 'ORG' }, root.token, { CHITTYID_ENDPOINT: AUTHORITY });
    expect(res.status).toBe(503);
    expect(await count('identities')).toBe(before);
  });

  it('validates an id the authority vouches for and records it', async () => {
    const known = formatChittyId('SVC', 'REMOTE1');
    const { seen } = stubAuthority(() => Response.json({ chitty_id: known, status: 'active' }));
    const res = await direct('POST', '/v1/identities/validate', { chitty_id: known }, root.token, { CHITTYID_ENDPOINT: AUTHORITY });
    expect(res.body).toMatchObject({ valid: true, reason: null, identity: { chitty_id: known, authority: AUTHORITY } });
    expect(seen.map((r) => r.url)).toEqual([`${AUTHORITY}/v1/chittyids/${known}`]);
    expect(await identityRow(known)).toMatchObject({ type: 'SVC', status: 'active', authority: AUTHORITY });
  });

  it('reports not_registered and records nothing when the authority does not know the id', async () => {
    const unknown = formatChittyId('SVC', 'NOTTHERE1');
    stubAuthority(() => new Response('not found', { status: 404 }));
    const res = await direct('POST', '/v1/identities/validate', { chitty_id: unknown }, root.token, { CHITTYID_ENDPOINT: AUTHORITY });
    expect(res.body).toMatchObject({ valid: false, reason: 'not_registered' });
    expect(await identityRow(unknown)).toBeUndefined();
  });

  it('does not ask the authority about a malformed id', async () => {
    const { spy } = stubAuthority(() => new Response('unexpected', { status: 500 }));
    const res = await direct('POST', '/v1/identities/validate', { chitty_id: 'CHITTY-PEO-USER123-ZZZ' }, root.token, { CHITTYID_ENDPOINT: AUTHORITY });
    expect(res.body).toMatchObject({ valid: false, reason: 'bad_check' });
    expect(spy.mock.calls.filter(([input]) => String(input instanceof Request ? input.url : input).startsWith(AUTHORITY))).toHaveLength(0);
  });
});
