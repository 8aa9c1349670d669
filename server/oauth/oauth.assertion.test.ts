import { SELF } from 'cloudflare:test';
import { decodeJwt, exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, count, ORIGIN, query, rest } from '../../test/workers/helpers';
import { authorizeAsBrowser, authorizeUrl, Browser, MCP_RESOURCE, pkcePair, REDIRECT, registerClient, token } from '../../test/workers/oauth-helpers';

/**
 * private_key_jwt client authentication (RFC 7523 §2.2, §3) and the Client ID Metadata Documents of the
 * clients that use it. test/fixtures/third-parties.ts serves ChatGPT-shaped documents at
 * https://chatgpt.com/oauth/<id>/client.json (their JWK Set is generated here and published with
 * PUT /__jwks/<id>) and Claude's at https://claude.ai/oauth/mcp-oauth-client-metadata.
 */
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const TOKEN_ENDPOINT = `${ORIGIN}/oauth/token`;
const CHATGPT_REDIRECT = 'https://chatgpt.com/connector_platform_oauth_redirect';
const chatgpt = (id: string) => `https://chatgpt.com/oauth/${id}/client.json`;
const PKJWT = chatgpt('pkjwt');
const METHODS = chatgpt('methods');
const CLAUDE = 'https://claude.ai/oauth/mcp-oauth-client-metadata';

interface Signer {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function signer(alg = 'RS256', kid = crypto.randomUUID()): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const publish = async (id: string, ...keys: Signer[]) => {
  const res = await fetch(`https://chatgpt.com/__jwks/${id}`, { method: 'PUT', body: JSON.stringify({ keys: keys.map((k) => k.publicJwk) }) });
  expect(res.status).toBe(204);
};

/** A client assertion as RFC 7523 §3 wants it, with any claim or header changed or removed (undefined). */
async function assertion(key: Signer, clientId: string, claims: Partial<Record<keyof JWTPayload, unknown>> = {}, header: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  const payload = Object.fromEntries(
    Object.entries({ iss: clientId, sub: clientId, aud: ORIGIN, iat: now, exp: now + 120, jti: crypto.randomUUID(), ...claims }).filter(([, v]) => v !== undefined),
  );
  return new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header } as { alg: string }).sign(key.privateKey);
}

const withAssertion = (jwt: string, clientId?: string) => ({ client_assertion_type: ASSERTION_TYPE, client_assertion: jwt, ...(clientId ? { client_id: clientId } : {}) });

const post = async (path: string, form: Record<string, string>, headers: Record<string, string> = {}) => {
  const res = await SELF.fetch(`${ORIGIN}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

/** A refresh request that gets past client authentication only to fail on its (made-up) refresh token. */
const probe = (auth: Record<string, string>, headers: Record<string, string> = {}) => token({ grant_type: 'refresh_token', refresh_token: 'crt_not_a_token', ...auth }, headers);

async function authorizePage(clientId: string, redirectUri: string) {
  const { challenge } = await pkcePair();
  const res = await SELF.fetch(authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'mcp:read', state: 's', code_challenge: challenge, code_challenge_method: 'S256', resource: MCP_RESOURCE }), { redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), body: await res.text() };
}

let key: Signer;

beforeAll(async () => {
  await admin();
  key = await signer('RS256');
  await publish('pkjwt', key);
  await publish('methods', key);
});

describe('ChatGPT: a Client ID Metadata Document with private_key_jwt only', () => {
  it('completes authorization code + PKCE, the token exchange and refresh, each with a verified assertion', async () => {
    const flow = await authorizeAsBrowser({ clientId: PKJWT, redirectUri: CHATGPT_REDIRECT, scope: 'mcp:read mcp:write' });
    expect(flow.redirect?.origin + flow.redirect!.pathname).toBe(CHATGPT_REDIRECT);
    expect(flow.code).toBeTruthy();

    const exchanged = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, redirect_uri: CHATGPT_REDIRECT, resource: MCP_RESOURCE, ...withAssertion(await assertion(key, PKJWT), PKJWT) });
    expect(exchanged.status).toBe(200);
    expect(decodeJwt(exchanged.body.access_token)).toMatchObject({ client_id: PKJWT, aud: MCP_RESOURCE });

    // The token endpoint URL as aud works too; client_id may be left out (RFC 7521 §4.2): the assertion's iss names the client.
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: exchanged.body.refresh_token, ...withAssertion(await assertion(key, PKJWT, { aud: TOKEN_ENDPOINT })) });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.refresh_token).not.toBe(exchanged.body.refresh_token);

    // Introspection and revocation authenticate the client the same way.
    const active = await post('/oauth/introspect', { token: refreshed.body.access_token, ...withAssertion(await assertion(key, PKJWT), PKJWT) });
    expect(active.status).toBe(200);
    expect(active.body).toMatchObject({ active: true, client_id: PKJWT });
    expect((await post('/oauth/revoke', { token: refreshed.body.refresh_token, ...withAssertion(await assertion(key, PKJWT, { aud: `${ORIGIN}/oauth/revoke` }), PKJWT) })).status).toBe(200);
    const revoked = await post('/oauth/introspect', { token: refreshed.body.access_token, ...withAssertion(await assertion(key, PKJWT), PKJWT) });
    expect(revoked.body).toEqual({ active: false });
  });

  it('refuses a token request with no assertion, or with a secret instead, naming private_key_jwt', async () => {
    const none = await probe({ client_id: PKJWT });
    expect(none.status).toBe(401);
    expect(none.body.error).toBe('invalid_client');
    expect(none.body.error_description).toContain('private_key_jwt');
    const basic = await probe({}, { authorization: `Basic ${btoa(`${encodeURIComponent(PKJWT)}:guess`)}` });
    expect(basic.status).toBe(401);
    expect(basic.body.error).toBe('invalid_client');
  });

  it('spends each jti once: a replayed assertion is refused (RFC 7523 §3 (7))', async () => {
    const jwt = await assertion(key, PKJWT);
    const jti = decodeJwt(jwt).jti!;
    expect((await probe(withAssertion(jwt, PKJWT))).body.error).toBe('invalid_grant'); // authenticated; only the refresh token is made up
    expect(await query('SELECT client_id, jti FROM oauth_client_assertions WHERE jti = ?', jti)).toEqual([{ client_id: PKJWT, jti }]);
    const replay = await probe(withAssertion(jwt, PKJWT));
    expect(replay.status).toBe(401);
    expect(replay.body).toMatchObject({ error: 'invalid_client', error_description: expect.stringContaining('replay') });
  });

  it('refetches the JWK Set once when the kid is unknown, so a rotated key works at once', async () => {
    expect((await probe(withAssertion(await assertion(key, PKJWT), PKJWT))).body.error).toBe('invalid_grant'); // the set with `key` is cached
    const next = await signer('RS256');
    await publish('pkjwt', key, next);
    expect((await probe(withAssertion(await assertion(next, PKJWT), PKJWT))).body.error).toBe('invalid_grant');
  });

  it.each<[string, () => Promise<string>, string]>([
    ['signed by another key under the published kid', async () => assertion({ ...(await signer('RS256')), kid: key.kid }, PKJWT), 'signature verification failed'],
    ['alg none', async () => new UnsecuredJWT({ iss: PKJWT, sub: PKJWT, aud: ORIGIN, exp: Math.floor(Date.now() / 1000) + 60, jti: crypto.randomUUID() }).encode(), 'alg is not allowed'],
    [
      'HS256 with the public key as the secret',
      async () => {
        const { importJWK } = await import('jose');
        const pem = await exportSPKI((await importJWK(key.publicJwk, 'RS256', { extractable: true })) as CryptoKey);
        const now = Math.floor(Date.now() / 1000);
        return new SignJWT({ iss: PKJWT, sub: PKJWT, aud: ORIGIN, exp: now + 60, jti: crypto.randomUUID() }).setProtectedHeader({ alg: 'HS256', kid: key.kid }).sign(new TextEncoder().encode(pem));
      },
      'alg is not allowed',
    ],
    ['ES256 when the document names RS256', async () => assertion(await signer('ES256'), PKJWT), 'alg is not allowed'],
    ['a wrong aud', async () => assertion(key, PKJWT, { aud: 'https://other-as.example' }), 'claim aud is invalid'],
    ['a wrong iss', async () => assertion(key, PKJWT, { iss: METHODS }), 'claim iss is invalid'],
    ['a wrong sub', async () => assertion(key, PKJWT, { sub: 'someone-else' }), 'claim sub is invalid'],
    ['an expired assertion', async () => assertion(key, PKJWT, { iat: Math.floor(Date.now() / 1000) - 600, exp: Math.floor(Date.now() / 1000) - 120 }), 'expired'],
    ['no exp', async () => assertion(key, PKJWT, { exp: undefined }), 'claim exp is missing'],
    ['an exp an hour away', async () => assertion(key, PKJWT, { iat: undefined, exp: Math.floor(Date.now() / 1000) + 3600 }), 'more than 300 s away'],
    ['a lifetime longer than 5 minutes', async () => assertion(key, PKJWT, { iat: Math.floor(Date.now() / 1000) - 200, exp: Math.floor(Date.now() / 1000) + 200 }), 'longer than 300 s'],
    ['no jti', async () => assertion(key, PKJWT, { jti: undefined }), 'claim jti is missing'],
    ['a kid missing from the JWK Set', async () => assertion({ ...key, kid: 'not-published' }, PKJWT), 'no key'],
    ['not a JWT', async () => 'not.a.jwt', 'malformed'],
  ])('refuses 401 invalid_client an assertion with %s, and spends no jti', async (_, make, reason) => {
    const before = await count('oauth_client_assertions');
    const res = await probe(withAssertion(await make(), PKJWT));
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect(res.body.error_description).toContain(reason);
    expect(await count('oauth_client_assertions')).toBe(before);
  });

  it.each<[string, Record<string, string>, Record<string, string>, number, string]>([
    ['a wrong client_assertion_type', { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer', client_assertion: 'x', client_id: PKJWT }, {}, 401, 'invalid_client'],
    ['a client_assertion_type without an assertion', { client_assertion_type: ASSERTION_TYPE, client_id: PKJWT }, {}, 401, 'invalid_client'],
    ['an assertion and a client_secret', { client_assertion_type: ASSERTION_TYPE, client_assertion: 'x', client_id: PKJWT, client_secret: 's' }, {}, 400, 'invalid_request'],
    ['an assertion and HTTP Basic', { client_assertion_type: ASSERTION_TYPE, client_assertion: 'x' }, { authorization: `Basic ${btoa('a:b')}` }, 400, 'invalid_request'],
  ])('refuses %s', async (_, form, headers, status, error) => {
    const res = await probe(form, headers);
    expect(res.status).toBe(status);
    expect(res.body.error).toBe(error);
  });

  it('refuses an assertion for a public client that has no keys', async () => {
    const res = await probe(withAssertion(await assertion(key, CLAUDE), CLAUDE));
    expect(res.status).toBe(401);
    expect(res.body.error_description).toContain('does not authenticate with private_key_jwt');
  });
});

describe('ChatGPT: a document listing none and private_key_jwt', () => {
  it('is a public client (none is chosen): code + PKCE, exchange and refresh with no credential', async () => {
    const flow = await authorizeAsBrowser({ clientId: METHODS, redirectUri: CHATGPT_REDIRECT });
    const exchanged = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: METHODS, redirect_uri: CHATGPT_REDIRECT });
    expect(exchanged.status).toBe(200);
    expect(decodeJwt(exchanged.body.access_token).client_id).toBe(METHODS);
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: exchanged.body.refresh_token, client_id: METHODS });
    expect(refreshed.status).toBe(200);
    // A client that sends an assertion anyway has it verified, not ignored.
    const signed = await token({ grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token, ...withAssertion(await assertion(key, METHODS), METHODS) });
    expect(signed.status).toBe(200);
    const forged = await token({ grant_type: 'refresh_token', refresh_token: signed.body.refresh_token, ...withAssertion(await assertion(await signer('RS256', key.kid), METHODS), METHODS) });
    expect(forged.status).toBe(401);
    expect(forged.body.error_description).toContain('signature verification failed');
  });
});

describe('Claude: a document with token_endpoint_auth_method none', () => {
  it('completes authorization code + PKCE, the token exchange and refresh as a public client', async () => {
    const redirect = 'https://claude.ai/api/mcp/auth_callback';
    const flow = await authorizeAsBrowser({ clientId: CLAUDE, redirectUri: redirect, browser: new Browser() });
    expect(flow.html).toContain('Claude');
    const exchanged = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: CLAUDE, redirect_uri: redirect, resource: MCP_RESOURCE });
    expect(exchanged.status).toBe(200);
    expect(decodeJwt(exchanged.body.access_token)).toMatchObject({ client_id: CLAUDE, aud: MCP_RESOURCE });
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: exchanged.body.refresh_token, client_id: CLAUDE });
    expect(refreshed.status).toBe(200);
  });
});

describe('Client ID Metadata Documents whose keys cannot be used', () => {
  it.each([
    ['a jwks_uri on a private address', 'private-jwks', 'jwks_uri in the client_id metadata document refused: private'],
    ['a jwks_uri over http', 'http-jwks', 'jwks_uri in the client_id metadata document refused: only https'],
    ['private_key_jwt and no keys', 'no-keys', 'needs jwks or jwks_uri'],
    ['only client_secret_basic', 'secret-only', 'may not use client secrets'],
  ])('refuses a document with %s at /oauth/authorize (error page, no redirect) and at the token endpoint', async (_, id, reason) => {
    const page = await authorizePage(chatgpt(id), CHATGPT_REDIRECT);
    expect(page.status).toBe(400);
    expect(page.location).toBeNull();
    expect(page.body).toContain(reason);
    const res = await probe(withAssertion(await assertion(key, chatgpt(id)), chatgpt(id)));
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ error: 'invalid_client', error_description: expect.stringContaining(reason) });
  });

  it('refuses a client_secret_basic request from a document that offers only client_secret_basic', async () => {
    const res = await probe({}, { authorization: `Basic ${btoa(`${encodeURIComponent(chatgpt('secret-only'))}:secret`)}` });
    expect(res.status).toBe(401);
    expect(res.body.error_description).toContain('may not use client secrets');
  });

  it('refuses an assertion whose client publishes a JWK Set larger than 16 KiB', async () => {
    const res = await probe(withAssertion(await assertion(key, chatgpt('oversized-jwks')), chatgpt('oversized-jwks')));
    expect(res.status).toBe(401);
    expect(res.body.error_description).toContain('larger than 16384 bytes');
  });
});

describe('/.well-known/oauth-authorization-server', () => {
  it('advertises private_key_jwt with asymmetric signing algorithms only', async () => {
    const meta = (await (await SELF.fetch(`${ORIGIN}/.well-known/oauth-authorization-server`)).json()) as Record<string, string[]>;
    expect(meta.token_endpoint_auth_methods_supported).toContain('private_key_jwt');
    expect(meta.token_endpoint_auth_signing_alg_values_supported).toEqual(['RS256', 'PS256', 'ES256', 'EdDSA']);
    expect(meta.revocation_endpoint_auth_methods_supported).toContain('private_key_jwt');
    expect(meta.introspection_endpoint_auth_methods_supported).toContain('private_key_jwt');
  });
});

describe('/oauth/register with private_key_jwt (RFC 7591 jwks / jwks_uri)', () => {
  it('registers a client with inline jwks and no secret, which completes code + PKCE, exchange and refresh with assertions', async () => {
    const own = await signer('ES256');
    const reg = await registerClient({ token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [own.publicJwk] } });
    expect(reg.status).toBe(201);
    expect(reg.body).not.toHaveProperty('client_secret');
    expect(reg.body).toMatchObject({ token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [own.publicJwk] } });
    const id = reg.body.client_id as string;
    const [row] = await query('SELECT client_secret_hash, jwks, jwks_uri FROM oauth_clients WHERE client_id = ?', id);
    expect(row).toMatchObject({ client_secret_hash: null, jwks_uri: null });
    expect(JSON.parse(row!.jwks)).toEqual({ keys: [own.publicJwk] });

    const flow = await authorizeAsBrowser({ clientId: id });
    expect((await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, redirect_uri: REDIRECT, client_id: id })).status).toBe(401);
    const exchanged = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, redirect_uri: REDIRECT, ...withAssertion(await assertion(own, id), id) });
    expect(exchanged.status).toBe(200);
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: exchanged.body.refresh_token, ...withAssertion(await assertion(own, id, { aud: TOKEN_ENDPOINT })) });
    expect(refreshed.status).toBe(200);
    // RS256 is not this client's algorithm, even with a key it could match.
    expect((await probe(withAssertion(await assertion(key, id), id))).body.error_description).toContain('alg is not allowed');
  });

  it('registers a client with a jwks_uri, whose keys are fetched when it authenticates', async () => {
    const reg = await registerClient({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://chatgpt.com/oauth/pkjwt/jwks.json' });
    expect(reg.status).toBe(201);
    const id = reg.body.client_id as string;
    const flow = await authorizeAsBrowser({ clientId: id });
    const exchanged = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, redirect_uri: REDIRECT, ...withAssertion(await assertion(key, id), id) });
    expect(exchanged.status).toBe(200);
    expect((await token({ grant_type: 'refresh_token', refresh_token: exchanged.body.refresh_token, ...withAssertion(await assertion(key, id), id) })).status).toBe(200);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['no keys', {}, 'needs jwks or jwks_uri'],
    ['both jwks and jwks_uri', { jwks: { keys: [] }, jwks_uri: 'https://chatgpt.com/oauth/pkjwt/jwks.json' }, 'must not both be present'],
    ['an empty key set', { jwks: { keys: [] } }, 'keys must not be empty'],
    ['a private key', { jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd' }] } }, 'must be public keys'],
    ['a symmetric key', { jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }, 'kty must be RSA, EC or OKP'],
    ['a jwks_uri over http', { jwks_uri: 'http://keys.example/jwks.json' }, 'only https'],
    ['a jwks_uri on a private address', { jwks_uri: 'https://169.254.169.254/jwks.json' }, 'private'],
    ['HS256', { jwks_uri: 'https://chatgpt.com/oauth/pkjwt/jwks.json', token_endpoint_auth_signing_alg: 'HS256' }, 'must be RS256, PS256, ES256 or EdDSA'],
    ['alg none', { jwks_uri: 'https://chatgpt.com/oauth/pkjwt/jwks.json', token_endpoint_auth_signing_alg: 'none' }, 'must be RS256, PS256, ES256 or EdDSA'],
  ])('refuses 400 invalid_client_metadata and stores nothing for private_key_jwt with %s', async (_, meta, reason) => {
    const before = await count('oauth_clients');
    const res = await registerClient({ token_endpoint_auth_method: 'private_key_jwt', ...meta });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_client_metadata');
    expect(res.body.error_description).toContain(reason);
    expect(await count('oauth_clients')).toBe(before);
  });
});

describe('oauth.clients.register with private_key_jwt (pre-registered clients)', () => {
  it('gets client_credentials tokens with an assertion, as its own ChittyID; new keys replace the old ones', async () => {
    const root = await admin();
    const own = await signer('RS256');
    const res = await rest('POST', '/v1/oauth/clients', { client_name: 'Signed job', redirect_uris: [], grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [own.publicJwk] } }, root.token);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ token_endpoint_auth_method: 'private_key_jwt', client_secret: null, jwks_uri: null, jwks: { keys: [own.publicJwk] } });
    const id = res.body.client_id as string;

    const issued = await token({ grant_type: 'client_credentials', scope: 'mcp:read', resource: MCP_RESOURCE, ...withAssertion(await assertion(own, id), id) });
    expect(issued.status).toBe(200);
    expect(decodeJwt(issued.body.access_token)).toMatchObject({ sub: res.body.chitty_id, client_id: id, scope: 'mcp:read', aud: MCP_RESOURCE });
    expect(issued.body).not.toHaveProperty('refresh_token');
    const unsigned = await token({ grant_type: 'client_credentials', resource: MCP_RESOURCE, client_id: id });
    expect(unsigned.status).toBe(401);
    expect(unsigned.body.error_description).toContain('private_key_jwt');

    const next = await signer('RS256');
    const updated = await rest('PATCH', `/v1/oauth/clients/${id}`, { jwks: { keys: [next.publicJwk] } }, root.token);
    expect(updated.status).toBe(200);
    expect(updated.body.jwks).toEqual({ keys: [next.publicJwk] });
    const old = await token({ grant_type: 'client_credentials', resource: MCP_RESOURCE, ...withAssertion(await assertion(own, id), id) });
    expect(old.status).toBe(401);
    expect(old.body.error_description).toContain('no key');
    const again = await token({ grant_type: 'client_credentials', resource: MCP_RESOURCE, ...withAssertion(await assertion(next, id), id) });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ token_type: 'Bearer', scope: expect.any(String) });
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['private_key_jwt without keys', { token_endpoint_auth_method: 'private_key_jwt' }, 'needs jwks or jwks_uri'],
    ['a private key', { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'RSA', n: 'n', e: 'AQAB', d: 'd' }] } }, 'must be public keys'],
    ['a jwks_uri on a private address', { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://10.0.0.5/jwks.json' }, 'private'],
    ['keys for a secret-based client', { token_endpoint_auth_method: 'client_secret_basic', jwks_uri: 'https://chatgpt.com/oauth/pkjwt/jwks.json' }, 'only for private_key_jwt'],
  ])('refuses 400 and stores nothing for %s', async (_, extra, reason) => {
    const root = await admin();
    const before = await count('oauth_clients');
    const res = await rest('POST', '/v1/oauth/clients', { client_name: 'Bad keys', redirect_uris: [], grant_types: ['client_credentials'], ...extra }, root.token);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain(reason);
    expect(await count('oauth_clients')).toBe(before);
  });
});
