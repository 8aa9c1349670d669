import { env, SELF } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { getDb } from '../db/schema';
import type { Env } from '../env';
import { signJwt } from '../jwt/tokens';
import { admin, ADMIN_PASSWORD, apiKey, auditHead, auditSince, callTool, count, mcp, ORIGIN, rest } from '../../test/workers/helpers';
import { authorizeAsBrowser, Browser, fullFlow, MCP_RESOURCE, REDIRECT, registerClient, token } from '../../test/workers/oauth-helpers';

/**
 * /mcp as an OAuth resource server (MCP authorization spec, RFC 6750, RFC 9728 §5.1): what it answers to
 * missing, broken, expired, misplaced, foreign and under-scoped credentials.
 */
const METADATA = `${ORIGIN}/.well-known/oauth-protected-resource/mcp`;
const LIST = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });

function post(headers: Record<string, string>, path = '/mcp', body = LIST) {
  return SELF.fetch(`${ORIGIN}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers },
    body,
  });
}

/** The parameters of a `Bearer k="v", ...` challenge. */
function challenge(res: Response): Record<string, string> {
  const header = res.headers.get('www-authenticate') ?? '';
  expect(header).toMatch(/^Bearer /);
  return Object.fromEntries([...header.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

const browser = new Browser();
let clientId: string;
/** An OAuth access token for the admin, for the MCP resource, with mcp:read and mcp:write. */
let accessToken: string;

beforeAll(async () => {
  await admin();
  const flow = await fullFlow('mcp:read mcp:write', { browser });
  clientId = flow.clientId;
  accessToken = flow.tokens.body.access_token;
});

describe('/mcp', () => {
  it('answers 200 to a valid OAuth access token for the MCP resource', async () => {
    const res = await mcp('tools/list', {}, accessToken);
    expect(res.status).toBe(200);
    expect(res.body.result.tools.length).toBeGreaterThan(0);
  });

  it('answers 401 with a challenge naming the resource metadata and scopes when no token is sent', async () => {
    const res = await post({});
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${METADATA}", scope="mcp:read mcp:write"`);
    // Browser clients must be able to read the challenge.
    expect(res.headers.get('access-control-expose-headers')).toMatch(/WWW-Authenticate/i);
  });

  it.each([
    ['a random word', 'Bearer garbage'],
    ['three dots of nothing', 'Bearer a.b.c'],
    ['an unsigned JWT (alg none)', `Bearer eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.`],
    ['an unknown API key', 'Bearer chitty_0000000000000000000000000000'],
    ['an unknown refresh token', 'Bearer crt_0000000000000000000000000000'],
    ['characters a bearer token cannot have', 'Bearer ab$cd'],
    ['another scheme', 'Basic YWRtaW46YWRtaW4='],
  ])('answers 401 invalid_token (never 500) to %s', async (_, authorization) => {
    const res = await post({ authorization });
    expect(res.status).toBe(401);
    expect(challenge(res)).toMatchObject({ error: 'invalid_token', resource_metadata: METADATA });
  });

  it('answers 401 invalid_token to a token whose signature was altered', async () => {
    const [h, p, s] = accessToken.split('.');
    const flipped = `${s!.slice(0, 10)}${s![10] === 'A' ? 'B' : 'A'}${s!.slice(11)}`;
    const res = await post({ authorization: `Bearer ${h}.${p}.${flipped}` });
    expect(res.status).toBe(401);
    expect(challenge(res).error).toBe('invalid_token');
  });

  it('answers 401 invalid_token to an expired access token', async () => {
    const claims = decodeJwt(accessToken);
    const { token } = await signJwt(env as unknown as Env, getDb(env.DB), {
      typ: 'at+jwt',
      subject: claims.sub!,
      audience: MCP_RESOURCE,
      expiresIn: -30,
      claims: { client_id: claims.client_id, scope: claims.scope, gid: claims.gid },
    });
    const res = await post({ authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(challenge(res)).toMatchObject({ error: 'invalid_token', error_description: 'the access token is expired' });
  });

  it('refuses a token in the query string, even a valid one (OAuth 2.1 §5.1.1)', async () => {
    const res = await post({}, `/mcp?access_token=${accessToken}`);
    expect(res.status).toBe(400);
    expect(challenge(res).error).toBe('invalid_request');
    const alsoInHeader = await post({ authorization: `Bearer ${accessToken}` }, `/mcp?access_token=${accessToken}`);
    expect(alsoInHeader.status).toBe(400);
  });

  it.each(['https://evil.example', 'http://chittyauth.test.evil.example', 'null'])('refuses 403 a request from the foreign Origin %s', async (origin) => {
    const res = await post({ authorization: `Bearer ${accessToken}`, origin });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: 'forbidden_origin' });
  });

  it('accepts a request from its own origin', async () => {
    expect((await post({ authorization: `Bearer ${accessToken}`, origin: ORIGIN })).status).toBe(200);
  });

  it('answers 403 insufficient_scope naming mcp:write when the grants allow a tool but the token scope does not', async () => {
    const readOnly = (await fullFlow('mcp:read', { clientId, browser })).tokens.body.access_token;
    expect(decodeJwt(readOnly).scope).toBe('mcp:read');
    const keysBefore = await count('api_keys');
    const res = await post({ authorization: `Bearer ${readOnly}` }, '/mcp', JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'generate_api_key', arguments: { name: 'should not exist' } } }));
    expect(res.status).toBe(403);
    expect(challenge(res)).toMatchObject({ error: 'insufficient_scope', scope: 'mcp:write', resource_metadata: METADATA });
    expect(await count('api_keys')).toBe(keysBefore);
    // The same token may still do what mcp:read allows.
    const read = await callTool('check_permission', { permission: 'api_keys:generate' }, readOnly);
    expect(read.body.result.structuredContent).toMatchObject({ allowed: true });
  });

  it('audits an insufficient_scope refusal as the same denied event the guard writes through /v1', async () => {
    const root = await admin();
    const readKey = await apiKey(root, ['mcp:read']);
    const events = async (call: () => Promise<{ status: number }>) => {
      const head = await auditHead();
      const status = (await call()).status;
      return { status, events: (await auditSince(head)).map(({ actor, action, outcome, door, detail }) => ({ actor, action, outcome, door, detail: JSON.parse(detail) })) };
    };
    const viaMcp = await events(() => callTool('generate_api_key', { name: 'should not exist' }, readKey));
    const viaRest = await events(() => rest('POST', '/v1/api-keys', { name: 'should not exist' }, readKey));
    expect(viaMcp.status).toBe(403);
    expect(viaRest.status).toBe(403);
    const denied = { actor: root.chittyId, action: 'apiKeys.create', outcome: 'denied', detail: { code: 'FORBIDDEN', permission: 'api_keys:generate', credential: expect.stringMatching(/^key_/) } };
    expect(viaMcp.events).toEqual([{ ...denied, door: 'mcp' }]);
    expect(viaRest.events).toEqual([{ ...denied, door: 'rest' }]);
    expect(viaMcp.events[0]!.detail.credential).toBe(viaRest.events[0]!.detail.credential);
  });

  it('refuses 401 a sign-in token, whose audience is the API and not the MCP resource', async () => {
    const signIn = await rest('POST', '/v1/accounts/sign-in', { username: 'admin', password: ADMIN_PASSWORD });
    expect(decodeJwt(signIn.body.access_token).aud).toBe(ORIGIN);
    expect((await rest('GET', '/v1/accounts/me', undefined, signIn.body.access_token)).status).toBe(200);
    const res = await post({ authorization: `Bearer ${signIn.body.access_token}` });
    expect(res.status).toBe(401);
    expect(challenge(res).error).toBe('invalid_token');
  });

  it('refuses 401 an OAuth access token issued for the API resource (RFC 8707)', async () => {
    const apiClient = (await registerClient()).body.client_id as string;
    const flow = await authorizeAsBrowser({ clientId: apiClient, resource: ORIGIN, browser });
    const t = await token({ grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier, client_id: apiClient, redirect_uri: REDIRECT });
    expect(t.status).toBe(200);
    expect(decodeJwt(t.body.access_token).aud).toBe(ORIGIN);
    // It is good where it was issued for, and nowhere else.
    expect((await rest('GET', '/v1/accounts/me', undefined, t.body.access_token)).status).toBe(200);
    const res = await post({ authorization: `Bearer ${t.body.access_token}` });
    expect(res.status).toBe(401);
    expect(challenge(res).error).toBe('invalid_token');
  });
});
