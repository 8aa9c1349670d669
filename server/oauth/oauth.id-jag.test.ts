import { SELF } from 'cloudflare:test';
import { decodeJwt, exportJWK, exportSPKI, generateKeyPair, importJWK, SignJWT, UnsecuredJWT, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, auditHead, auditSince, count, mcp, ORIGIN, query, rest, type Caller } from '../../test/workers/helpers';
import { MCP_RESOURCE, registerClient, token } from '../../test/workers/oauth-helpers';

/**
 * Enterprise-managed authorization (MCP ext-auth; draft-ietf-oauth-identity-assertion-authz-grant): an admin
 * trusts an identity provider (oauth.idps.register), and a confidential client exchanges that IdP's ID-JAG at
 * /oauth/token with grant_type urn:ietf:params:oauth:grant-type:jwt-bearer for an access token of the mapped account.
 */
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const IDP = 'https://acme.idp.example';
const AGENT = 'ema-agent';
const ALICE = 'alice@acme.example';

let root: Caller;
let idpKey: { privateKey: CryptoKey; publicJwk: JWK };
let agentAuth: Record<string, string>;
let alice: string;
let idpId: string;

const basic = (id: string, secret: string) => ({ authorization: `Basic ${btoa(`${id}:${secret}`)}` });

async function rsaKey(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** An ID-JAG as the draft's §3.1 describes it, with any claim or header changed or removed (undefined). */
async function idJag(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key = idpKey) {
  const now = Math.floor(Date.now() / 1000);
  const payload = Object.fromEntries(
    Object.entries({ iss: IDP, sub: 'U019488227', email: ALICE, aud: ORIGIN, client_id: AGENT, jti: crypto.randomUUID(), iat: now, exp: now + 300, resource: MCP_RESOURCE, scope: 'mcp:read mcp:write', ...claims }).filter(
      ([, v]) => v !== undefined,
    ),
  );
  const protectedHeader = Object.fromEntries(Object.entries({ alg: 'RS256', kid: key.publicJwk.kid, typ: 'oauth-id-jag+jwt', ...header }).filter(([, v]) => v !== undefined));
  return new SignJWT(payload).setProtectedHeader(protectedHeader as { alg: string }).sign(key.privateKey);
}

const exchange = (assertion: string, extra: Record<string, string> = {}, auth = agentAuth) => token({ grant_type: JWT_BEARER, assertion, ...extra }, auth);

beforeAll(async () => {
  root = await admin();
  idpKey = await rsaKey('acme-1');
  const client = await rest('POST', '/v1/oauth/clients', { client_id: AGENT, client_name: 'Enterprise agent', redirect_uris: [], grant_types: [JWT_BEARER], token_endpoint_auth_method: 'client_secret_basic', scopes: ['mcp:read', 'mcp:write'] }, root.token);
  expect(client.status).toBe(201);
  agentAuth = basic(AGENT, client.body.client_secret);
  const account = await rest('POST', '/v1/accounts', { username: ALICE, password: 'alice has a long password', roles: ['user'] }, root.token);
  expect(account.status).toBe(201);
  alice = account.body.chitty_id;
  const idp = await rest('POST', '/v1/oauth/idps', { issuer: IDP, jwks: { keys: [idpKey.publicJwk] }, client_ids: [AGENT], account_claim: 'email' }, root.token);
  expect(idp.status).toBe(201);
  idpId = idp.body.idp_id;
});

describe('/oauth/token with grant_type jwt-bearer (ID-JAG)', () => {
  it('issues an access token for the mapped account, audience-restricted to the resource, with the intersection of scopes, audited', async () => {
    const seq = await auditHead();
    const res = await exchange(await idJag({ scope: 'mcp:read mcp:write' }), { scope: 'mcp:read cross_sync' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'Bearer', scope: 'mcp:read', expires_in: expect.any(Number) });
    expect(res.body).not.toHaveProperty('refresh_token');
    const claims = decodeJwt(res.body.access_token);
    expect(claims).toMatchObject({ iss: ORIGIN, sub: alice, aud: MCP_RESOURCE, client_id: AGENT, scope: 'mcp:read' });
    const [grant] = await query('SELECT client_id, chitty_id, scope, resource FROM oauth_grants WHERE id = ?', claims.gid);
    expect(grant).toEqual({ client_id: AGENT, chitty_id: alice, scope: 'mcp:read', resource: MCP_RESOURCE });
    const events = (await auditSince(seq)).filter((e) => e.action === 'oauth.id_jag');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actor: AGENT, target: claims.gid, outcome: 'success' });
    expect(JSON.stringify(events[0])).toContain(IDP);
    expect((await mcp('tools/list', {}, res.body.access_token)).status).toBe(200);
  });

  it('grants the scopes of the ID-JAG when the request names none, and mcp:read when neither does', async () => {
    expect((await exchange(await idJag({ scope: 'mcp:write' }))).body.scope).toBe('mcp:write');
    expect((await exchange(await idJag({ scope: undefined }))).body.scope).toBe('mcp:read');
  });

  it('spends each jti once: a replayed ID-JAG is refused', async () => {
    const jwt = await idJag();
    expect((await exchange(jwt)).status).toBe(200);
    const replay = await exchange(jwt);
    expect(replay.status).toBe(400);
    expect(replay.body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringContaining('replay') });
  });

  it.each<[string, () => Promise<string>, Record<string, string>, string, string]>([
    ['typ JWT', () => idJag({}, { typ: 'JWT' }), {}, 'invalid_grant', 'typ header is invalid'],
    ['no typ', () => idJag({}, { typ: undefined }), {}, 'invalid_grant', 'typ header'],
    ['a signature by another key', async () => idJag({}, {}, { ...(await rsaKey('acme-1')) }), {}, 'invalid_grant', 'signature verification failed'],
    ['alg none', async () => new UnsecuredJWT({ iss: IDP, sub: 'U1', email: ALICE, aud: ORIGIN, client_id: AGENT, jti: crypto.randomUUID(), iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60 }).encode(), {}, 'invalid_grant', 'alg is not allowed'],
    [
      'HS256 with the public key as the secret',
      async () => {
        const pem = await exportSPKI((await importJWK(idpKey.publicJwk, 'RS256', { extractable: true })) as CryptoKey);
        const now = Math.floor(Date.now() / 1000);
        return new SignJWT({ iss: IDP, sub: 'U1', email: ALICE, aud: ORIGIN, client_id: AGENT, jti: crypto.randomUUID(), iat: now, exp: now + 60 }).setProtectedHeader({ alg: 'HS256', typ: 'oauth-id-jag+jwt' }).sign(new TextEncoder().encode(pem));
      },
      {},
      'invalid_grant',
      'alg is not allowed',
    ],
    ['an issuer nobody trusts', () => idJag({ iss: 'https://evil.idp.example' }), {}, 'invalid_grant', 'not a trusted identity provider'],
    ['another audience', () => idJag({ aud: 'https://other-as.example' }), {}, 'invalid_grant', 'claim aud is invalid'],
    ['a second audience', () => idJag({ aud: [ORIGIN, 'https://other-as.example'] }), {}, 'invalid_grant', 'aud must name this authorization server only'],
    ['the client_id of another client', () => idJag({ client_id: 'someone-else' }), {}, 'invalid_grant', 'client_id is not the client that authenticated'],
    ['no client_id', () => idJag({ client_id: undefined }), {}, 'invalid_grant', 'claim client_id is missing'],
    ['an expired ID-JAG', () => idJag({ iat: Math.floor(Date.now() / 1000) - 900, exp: Math.floor(Date.now() / 1000) - 300 }), {}, 'invalid_grant', 'expired'],
    ['a lifetime of an hour', () => idJag({ exp: Math.floor(Date.now() / 1000) + 3600 }), {}, 'invalid_grant', 'lives longer than 600 s'],
    ['no jti', () => idJag({ jti: undefined }), {}, 'invalid_grant', 'claim jti is missing'],
    ['no iat', () => idJag({ iat: undefined }), {}, 'invalid_grant', 'claim iat is missing'],
    ['an account nobody has', () => idJag({ email: 'mallory@acme.example' }), {}, 'invalid_grant', 'no active account'],
    ['a resource of another server', () => idJag({ resource: 'https://other.example/mcp' }), {}, 'invalid_target', 'unknown resource'],
    ['a request for another resource than the ID-JAG names', () => idJag({ resource: MCP_RESOURCE }), { resource: ORIGIN }, 'invalid_target', 'not one the ID-JAG was issued for'],
    ['no scope both asserted and requested', () => idJag({ scope: 'mcp:read' }), { scope: 'cross_sync' }, 'invalid_scope', 'none of the requested scopes'],
    ['not a JWT', async () => 'not-a-jwt', {}, 'invalid_grant', 'not a JWT'],
  ])('refuses an ID-JAG with %s, and issues nothing', async (_, make, extra, error, reason) => {
    const before = await count('oauth_grants');
    const res = await exchange(await make(), extra);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe(error);
    expect(res.body.error_description).toContain(reason);
    expect(await count('oauth_grants')).toBe(before);
  });

  it('refuses a client the identity provider is not trusted for (unauthorized_client)', async () => {
    const other = await rest('POST', '/v1/oauth/clients', { client_id: 'ema-other', client_name: 'Other agent', redirect_uris: [], grant_types: [JWT_BEARER], token_endpoint_auth_method: 'client_secret_post' }, root.token);
    expect(other.status).toBe(201);
    const res = await token({ grant_type: JWT_BEARER, assertion: await idJag({ client_id: 'ema-other' }), client_id: 'ema-other', client_secret: other.body.client_secret });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'unauthorized_client', error_description: expect.stringContaining(IDP) });
  });

  it('refuses a client that is not authenticated, or not registered for the grant', async () => {
    expect((await exchange(await idJag(), {}, basic(AGENT, 'wrong-secret'))).status).toBe(401);
    const dynamic = (await registerClient({ token_endpoint_auth_method: 'none' })).body.client_id as string;
    const res = await token({ grant_type: JWT_BEARER, assertion: await idJag({ client_id: dynamic }), client_id: dynamic });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('unauthorized_client');
  });

  it('accepts a client that authenticates with private_key_jwt (ext-auth EMA §5)', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const clientJwk = { ...(await exportJWK(publicKey)), kid: 'signed-1', alg: 'ES256' };
    const signed = await rest('POST', '/v1/oauth/clients', { client_id: 'ema-signed', client_name: 'Signed agent', redirect_uris: [], grant_types: [JWT_BEARER], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [clientJwk] } }, root.token);
    expect(signed.status).toBe(201);
    const gamma = await rsaKey('gamma-1');
    expect((await rest('POST', '/v1/oauth/idps', { issuer: 'https://gamma.idp.example', jwks: { keys: [gamma.publicJwk] }, client_ids: ['ema-signed'] }, root.token)).status).toBe(201);
    const now = Math.floor(Date.now() / 1000);
    const clientAssertion = await new SignJWT({ jti: crypto.randomUUID() }).setProtectedHeader({ alg: 'ES256', kid: 'signed-1' }).setIssuer('ema-signed').setSubject('ema-signed').setAudience(ORIGIN).setIssuedAt(now).setExpirationTime(now + 60).sign(privateKey);
    const res = await token({
      grant_type: JWT_BEARER,
      assertion: await idJag({ iss: 'https://gamma.idp.example', client_id: 'ema-signed' }, {}, gamma),
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: clientAssertion,
    });
    expect(res.status).toBe(200);
    expect(decodeJwt(res.body.access_token)).toMatchObject({ sub: alice, client_id: 'ema-signed' });
  });

  it('refuses the ID-JAGs of an identity provider once it is no longer trusted', async () => {
    const other = await rsaKey('beta-1');
    const issuer = 'https://beta.idp.example';
    const created = await rest('POST', '/v1/oauth/idps', { issuer, jwks: { keys: [other.publicJwk] }, client_ids: [AGENT], account_claim: 'sub', scopes: ['mcp:read'] }, root.token);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ issuer, client_ids: [AGENT], account_claim: 'sub', scopes: ['mcp:read'], jwks_uri: null });
    // account_claim sub: the IdP's subject is the username; its scope ceiling caps what it can grant.
    const granted = await exchange(await idJag({ iss: issuer, sub: ALICE, email: undefined, scope: 'mcp:read mcp:write' }, {}, other));
    expect(granted.status).toBe(200);
    expect(granted.body.scope).toBe('mcp:read');
    expect((await rest('DELETE', `/v1/oauth/idps/${created.body.idp_id}`, undefined, root.token)).status).toBe(200);
    const refused = await exchange(await idJag({ iss: issuer, sub: ALICE }, {}, other));
    expect(refused.body.error_description).toContain('not a trusted identity provider');
  });
});

describe('oauth.idps.register', () => {
  it.each<[string, Record<string, unknown>, number, string]>([
    ['an http issuer', { issuer: 'http://idp.example', jwks_uri: 'https://idp.example/jwks.json' }, 400, 'https'],
    ['no keys', { issuer: 'https://keyless.idp.example' }, 400, 'needs jwks or jwks_uri'],
    ['a private key', { issuer: 'https://leaky.idp.example', jwks: { keys: [{ kty: 'RSA', n: 'n', e: 'AQAB', d: 'd' }] } }, 400, 'must be public keys'],
    ['a jwks_uri on a private address', { issuer: 'https://internal.idp.example', jwks_uri: 'https://10.0.0.5/jwks.json' }, 400, 'private'],
    ['an issuer already trusted', { issuer: IDP, jwks_uri: 'https://idp.example/jwks.json' }, 409, 'already trusted'],
  ])('refuses %s and stores nothing', async (_, body, status, reason) => {
    const before = await count('oauth_trusted_idps');
    const res = await rest('POST', '/v1/oauth/idps', { client_ids: [AGENT], ...body }, root.token);
    expect(res.status).toBe(status);
    expect(JSON.stringify(res.body)).toContain(reason);
    expect(await count('oauth_trusted_idps')).toBe(before);
  });

  it('lists the trusted identity providers', async () => {
    const res = await rest('GET', '/v1/oauth/idps', undefined, root.token);
    expect(res.status).toBe(200);
    expect(res.body.items.map((i: { idp_id: string }) => i.idp_id)).toContain(idpId);
  });
});

describe('/.well-known/oauth-authorization-server', () => {
  it('advertises the jwt-bearer grant and the ID-JAG profile', async () => {
    const meta = (await (await SELF.fetch(`${ORIGIN}/.well-known/oauth-authorization-server`)).json()) as Record<string, string[]>;
    expect(meta.grant_types_supported).toContain(JWT_BEARER);
    expect(meta.authorization_grant_profiles_supported).toEqual(['urn:ietf:params:oauth:grant-profile:id-jag']);
  });
});
