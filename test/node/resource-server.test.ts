import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createResourceServer, metadataUrlOf, type NodeRequest, type ResourceServerOptions } from '../../clients/resource-server/index';

/**
 * The resource-server kit's verification (RFC 9068 §4, RFC 6750 §3, RFC 9728, RFC 7662), against keys and an
 * authorization server made here: a JWKS served by a fetch of our own, rotated at will.
 */
const ISSUER = 'https://auth.example';
const RESOURCE = 'https://notes.example/mcp';

type Key = { kid: string; privateKey: CryptoKey; jwk: JWK };
async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

let k1: Key;
let k2: Key;
let published: Key[];
let calls: string[];
let introspection: (form: URLSearchParams, authorization: string | null) => Response;

const fakeFetch = (async (input: string | URL | Request, init?: RequestInit) => {
  const url = String(input instanceof Request ? input.url : input);
  calls.push(url);
  if (url === `${ISSUER}/.well-known/jwks.json`) return Response.json({ keys: published.map((k) => k.jwk) });
  if (url === `${ISSUER}/oauth/introspect`) return introspection(new URLSearchParams(String(init?.body)), new Headers(init?.headers).get('authorization'));
  return new Response('not found', { status: 404 });
}) as typeof fetch;

const rs = (o: Partial<ResourceServerOptions> = {}) => createResourceServer({ issuer: ISSUER, resource: RESOURCE, scopes: ['notes:read'], fetch: fakeFetch, ...o });

async function sign(o: { key?: Key; typ?: string; iss?: string; aud?: string | string[]; exp?: number; scope?: string; claims?: Record<string, unknown>; kid?: string } = {}) {
  const key = o.key ?? k1;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ client_id: 'cli_test', scope: o.scope ?? 'notes:read notes:write', gid: 'gnt_1', ...o.claims })
    .setProtectedHeader({ alg: 'ES256', kid: o.kid ?? key.kid, typ: o.typ ?? 'at+jwt' })
    .setIssuer(o.iss ?? ISSUER)
    .setAudience(o.aud ?? RESOURCE)
    .setSubject('CHITTY-PEO-ADA-X')
    .setIssuedAt(now)
    .setExpirationTime(o.exp ?? now + 900)
    .setJti(crypto.randomUUID())
    .sign(key.privateKey);
}

const b64url = (s: string | Uint8Array) => Buffer.from(s).toString('base64url');

beforeAll(async () => {
  k1 = await newKey('kid_one');
  k2 = await newKey('kid_two');
});

afterEach(() => {
  vi.useRealTimers();
  published = [k1];
  calls = [];
});
published = [];
calls = [];

describe('TokenVerifier.verify', () => {
  it('accepts a ChittyAuth access token for this resource and hands over the principal', async () => {
    published = [k1];
    const token = await sign();
    const r = await rs().verify(`Bearer ${token}`);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.principal).toMatchObject({ sub: 'CHITTY-PEO-ADA-X', chittyId: 'CHITTY-PEO-ADA-X', scopes: ['notes:read', 'notes:write'], clientId: 'cli_test', sessionId: 'gnt_1' });
    expect(r.authInfo).toMatchObject({ token, clientId: 'cli_test', scopes: ['notes:read', 'notes:write'], resource: new URL(RESOURCE) });
  });

  it.each([
    ['a wrong issuer', { iss: 'https://evil.example' }, /iss check failed/],
    ['another resource’s audience', { aud: 'https://other.example/mcp' }, /aud check failed/],
    ['typ JWT instead of at+jwt (an ID token or generated JWT)', { typ: 'JWT' }, /typ check failed/],
    ['an expired token', { exp: Math.floor(Date.now() / 1000) - 60 }, /expired/],
    ['an unknown kid', { kid: 'kid_nobody' }, /unknown key/],
  ])('refuses %s with 401 invalid_token', async (_, o, description) => {
    published = [k1];
    const r = await rs().verify(`Bearer ${await sign(o)}`);
    expect(r).toMatchObject({ ok: false, status: 401, error: 'invalid_token' });
    if (!r.ok) expect(r.description).toMatch(description);
  });

  it('refuses a token signed by a key that is not ChittyAuth’s even with a known kid', async () => {
    published = [k1];
    const r = await rs().verify(`Bearer ${await sign({ key: k2, kid: k1.kid })}`);
    expect(r).toMatchObject({ ok: false, status: 401, error: 'invalid_token' });
  });

  it('finds a rotated key by its kid once the JWKS cooldown has passed', async () => {
    published = [k1];
    const server = rs();
    expect((await server.verify(`Bearer ${await sign()}`)).ok).toBe(true);
    published = [k1, k2];
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 31_000);
    const r = await server.verify(`Bearer ${await sign({ key: k2 })}`);
    expect(r.ok).toBe(true);
    expect(calls.filter((u) => u.endsWith('/jwks.json'))).toHaveLength(2);
  });

  it.each([
    ['alg none (an unsecured JWT)', () => `${b64url(JSON.stringify({ alg: 'none', typ: 'at+jwt' }))}.${b64url(JSON.stringify({ iss: ISSUER, aud: RESOURCE, sub: 'x', client_id: 'c', jti: 'j', scope: 'notes:read', iat: 1, exp: 9_999_999_999 }))}.`],
    [
      'HS256 keyed with the public key (algorithm confusion)',
      async () =>
        new SignJWT({ client_id: 'c', scope: 'notes:read' })
          .setProtectedHeader({ alg: 'HS256', kid: k1.kid, typ: 'at+jwt' })
          .setIssuer(ISSUER)
          .setAudience(RESOURCE)
          .setSubject('x')
          .setIssuedAt()
          .setExpirationTime('10m')
          .setJti('j')
          .sign(new TextEncoder().encode(JSON.stringify(k1.jwk))),
    ],
  ])('refuses %s', async (_, make) => {
    published = [k1];
    const r = await rs().verify(`Bearer ${await make()}`);
    expect(r).toMatchObject({ ok: false, status: 401, error: 'invalid_token' });
  });

  it('answers 403 insufficient_scope naming the scopes needed', async () => {
    published = [k1];
    const r = await rs().verify(`Bearer ${await sign({ scope: 'notes:read' })}`, ['notes:write']);
    expect(r).toMatchObject({ ok: false, status: 403, error: 'insufficient_scope', scope: 'notes:read notes:write' });
  });

  it('answers 401 without an error code to a request with no token, and 400 to a non-Bearer header', async () => {
    expect(await rs().verify(null)).toMatchObject({ ok: false, status: 401, error: undefined });
    expect(await rs().verify('Basic dXNlcjpwYXNz')).toMatchObject({ ok: false, status: 400, error: 'invalid_request' });
  });

  it('fails closed with 503 when the JWKS cannot be fetched', async () => {
    const down = createResourceServer({ issuer: ISSUER, resource: RESOURCE, fetch: (async () => new Response('down', { status: 502 })) as typeof fetch });
    expect(await down.verify(`Bearer ${await sign()}`)).toMatchObject({ ok: false, status: 503 });
  });

  it('matches its resource in canonical form (trailing slash, host case)', async () => {
    published = [k1];
    const server = rs({ resource: 'https://NOTES.example/mcp/' });
    expect(server.resource).toBe(RESOURCE);
    expect((await server.verify(`Bearer ${await sign()}`)).ok).toBe(true);
    expect(() => rs({ resource: 'https://notes.example/mcp#x' })).toThrow(/fragment/);
  });
});

describe('introspection (RFC 7662)', () => {
  it('asks ChittyAuth with the resource server’s credentials, caches the answer briefly, and refuses a revoked token', async () => {
    published = [k1];
    let active = true;
    const seen: (string | null)[] = [];
    introspection = (form, authorization) => {
      seen.push(authorization);
      expect(form.get('token')).toBeTruthy();
      return Response.json(active ? { active: true, aud: RESOURCE } : { active: false });
    };
    const server = rs({ introspection: { clientId: 'rs-client', clientSecret: 's3cret', cacheSeconds: 10 } });
    const token = await sign();
    expect((await server.verify(`Bearer ${token}`)).ok).toBe(true);
    expect((await server.verify(`Bearer ${token}`)).ok).toBe(true);
    expect(seen).toEqual([`Basic ${btoa('rs-client:s3cret')}`]);
    active = false;
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 11_000);
    expect(await server.verify(`Bearer ${token}`)).toMatchObject({ ok: false, status: 401, error: 'invalid_token', description: 'the access token was revoked' });
  });

  it('treats an active answer for another resource as inactive, and fails closed when ChittyAuth is down', async () => {
    published = [k1];
    introspection = () => Response.json({ active: true, aud: 'https://other.example/mcp' });
    expect(await rs({ introspection: { clientId: 'a', clientSecret: 'b' } }).verify(`Bearer ${await sign()}`)).toMatchObject({ ok: false, status: 401 });
    introspection = () => new Response('down', { status: 500 });
    expect(await rs({ introspection: { clientId: 'a', clientSecret: 'b' } }).verify(`Bearer ${await sign()}`)).toMatchObject({ ok: false, status: 503 });
  });
});

describe('the adapters', () => {
  it('protect() serves the RFC 9728 metadata and answers challenges (RFC 6750 §3, RFC 9728 §5.1)', async () => {
    published = [k1];
    const handler = rs({ resourceName: 'Notes' }).protect(async (_request, auth) => Response.json({ hello: auth.principal.chittyId }));
    const meta = await handler(new Request('https://notes.example/.well-known/oauth-protected-resource/mcp'));
    expect(await meta.json()).toEqual({ resource: RESOURCE, authorization_servers: [ISSUER], scopes_supported: ['notes:read'], bearer_methods_supported: ['header'], resource_name: 'Notes' });
    expect(metadataUrlOf(RESOURCE)).toBe('https://notes.example/.well-known/oauth-protected-resource/mcp');

    const none = await handler(new Request(RESOURCE, { method: 'POST' }));
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer resource_metadata="https://notes.example/.well-known/oauth-protected-resource/mcp", scope="notes:read"');

    const bad = await handler(new Request(RESOURCE, { method: 'POST', headers: { authorization: `Bearer ${await sign({ aud: 'https://other.example/mcp' })}` } }));
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/^Bearer resource_metadata="[^"]+", scope="notes:read", error="invalid_token", error_description="/);

    const inQuery = await handler(new Request(`${RESOURCE}?access_token=x`));
    expect(inQuery.status).toBe(400);

    const good = await handler(new Request(RESOURCE, { method: 'POST', headers: { authorization: `Bearer ${await sign()}` } }));
    expect(await good.json()).toEqual({ hello: 'CHITTY-PEO-ADA-X' });
  });

  it('the route’s extra scopes give 403 with the scopes in the challenge', async () => {
    published = [k1];
    const handler = rs().protect(async () => new Response('ok'), { scopes: ['notes:admin'] });
    const res = await handler(new Request(RESOURCE, { method: 'POST', headers: { authorization: `Bearer ${await sign()}` } }));
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toMatch(/scope="notes:read notes:admin", error="insufficient_scope"/);
  });

  it('hono() sets c.auth or answers the challenge', async () => {
    published = [k1];
    const mw = rs().hono();
    const store: Record<string, unknown> = {};
    const c = (request: Request) => ({ req: { raw: request }, set: (k: string, v: unknown) => void (store[k] = v) });
    const refused = await mw(c(new Request(RESOURCE, { method: 'POST' })), async () => {});
    expect((refused as Response).status).toBe(401);
    let reached = false;
    const passed = await mw(c(new Request(RESOURCE, { method: 'POST', headers: { authorization: `Bearer ${await sign()}` } })), async () => void (reached = true));
    expect(passed).toBeUndefined();
    expect(reached).toBe(true);
    expect((store.auth as { principal: { clientId: string } }).principal.clientId).toBe('cli_test');
  });

  it('express() sets req.auth for the MCP SDK and writes RFC 6750 answers', async () => {
    published = [k1];
    const mw = rs().express();
    const run = (req: NodeRequest) =>
      new Promise<{ status: number; headers: Record<string, string>; body: string; next: boolean }>((resolve) => {
        const headers: Record<string, string> = {};
        const res = { statusCode: 200, setHeader: (k: string, v: string) => void (headers[k.toLowerCase()] = v), end: (body?: string) => resolve({ status: res.statusCode, headers, body: body ?? '', next: false }) };
        mw(req, res, () => resolve({ status: res.statusCode, headers, body: '', next: true }));
      });
    const meta = await run({ method: 'GET', url: '/.well-known/oauth-protected-resource/mcp', headers: {} });
    expect(JSON.parse(meta.body).authorization_servers).toEqual([ISSUER]);
    const none = await run({ method: 'POST', url: '/mcp', headers: {} });
    expect([none.status, none.next, none.headers['www-authenticate']]).toEqual([401, false, 'Bearer resource_metadata="https://notes.example/.well-known/oauth-protected-resource/mcp", scope="notes:read"']);
    const req: NodeRequest = { method: 'POST', url: '/mcp', headers: { authorization: `Bearer ${await sign()}` } };
    const ok = await run(req);
    expect(ok.next).toBe(true);
    expect(req.auth).toMatchObject({ clientId: 'cli_test', scopes: ['notes:read', 'notes:write'] });
    expect(req.principal?.chittyId).toBe('CHITTY-PEO-ADA-X');
  });
});
