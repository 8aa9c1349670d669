import { createExecutionContext, env, SELF, waitOnExecutionContext } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import worker from '../index';
import type { Env } from '../env';
import { admin, apiKey, direct, ORIGIN, rest, type Caller } from '../../test/workers/helpers';
import { base32Encode, gatewayHost, gatewayHostKind, gatewayOrigin } from './hostname';

/**
 * Hostname routes, {base32(domain)}-enc.{GATEWAY_DOMAIN}: the URL /encode gives can be followed as it is (scheme
 * and port of the issuer), and a host the gateway cannot serve answers a 404 that says why, never ChittyAuth's
 * own endpoints under another name. The Worker's tests run with GATEWAY_DOMAIN gw.chittyauth.test.
 */
const GW = 'gw.chittyauth.test';
let root: Caller;

beforeAll(async () => {
  root = await admin();
});

/** A request to the Worker with any Host (SELF.fetch takes the host from the URL as well). */
async function at(url: string, init: RequestInit = {}, overrides: Partial<Env> = {}) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(url, init) as Parameters<typeof worker.fetch>[0], { ...env, ...overrides } as unknown as Env, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as { error?: string; message?: string } & Record<string, unknown> };
}

const initialize = { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }) };

describe('gatewayOrigin', () => {
  it.each([
    ['http://127.0.0.1:8787', 'mcp.example.com', 'gw.localhost', `http://${base32Encode('mcp.example.com')}-enc.gw.localhost:8787`],
    ['https://auth.example.com', 'mcp.example.com', 'gateway.example.com', `https://${base32Encode('mcp.example.com')}-enc.gateway.example.com`],
    ['http://localhost:9000', 'mcp.example.com:8443', 'gw.localhost', `http://${base32Encode('mcp.example.com:8443')}-enc.gw.localhost:9000`],
  ])('takes the scheme and port of the issuer %s', (issuer, domain, gateway, origin) => {
    expect(gatewayOrigin(issuer, domain, gateway)).toBe(origin);
  });
});

describe('gatewayHostKind', () => {
  const issuer = 'http://chittyauth.test';
  const encoded = gatewayHost('mcp.example', GW);
  it.each([
    ['an encoded host under GATEWAY_DOMAIN', `${encoded}:8787`, GW, { kind: 'route', domain: 'mcp.example' }],
    ['GATEWAY_DOMAIN itself', GW, GW, { kind: 'not_encoded', host: GW }],
    ['a plain name under GATEWAY_DOMAIN', `www.${GW}`, GW, { kind: 'not_encoded', host: `www.${GW}` }],
    ['a label that is not base32', `not_base32!-enc.${GW}`, GW, { kind: 'not_encoded', host: `not_base32!-enc.${GW}` }],
    ['two labels before GATEWAY_DOMAIN', `a.${encoded}`, GW, { kind: 'not_encoded', host: `a.${encoded}` }],
    ['an encoded label on another domain', `${base32Encode('mcp.example')}-enc.elsewhere.test`, GW, { kind: 'other_domain', host: `${base32Encode('mcp.example')}-enc.elsewhere.test`, domain: 'mcp.example' }],
    ['an encoded label with GATEWAY_DOMAIN unset', encoded, undefined, { kind: 'other_domain', host: encoded, domain: 'mcp.example' }],
    ['the issuer’s own host', 'chittyauth.test', GW, null],
    ['another name of the Worker', 'auth.example.com', GW, null],
  ])('%s', (_, host, gateway, kind) => {
    expect(gatewayHostKind(host, gateway, issuer)).toEqual(kind);
  });

  it('serves the issuer’s host as ChittyAuth even when it lies under GATEWAY_DOMAIN', () => {
    expect(gatewayHostKind('auth.example.com:443', 'example.com', 'https://auth.example.com')).toBeNull();
  });
});

describe('GET /encode and gateway.encode', () => {
  it('returns a URL with the issuer’s scheme and port, which reaches the hostname route as it is', async () => {
    const key = await apiKey(root);
    const overrides = { ISSUER: 'http://127.0.0.1:8787', GATEWAY_DOMAIN: 'gw.localhost' };
    const plain = await at(`http://127.0.0.1:8787/encode?domain=mcp.example`, {}, overrides);
    const host = `${base32Encode('mcp.example')}-enc.gw.localhost`;
    expect(plain.body).toEqual({ domain: 'mcp.example', host, url: `http://${host}:8787/mcp` });
    const procedure = await direct('GET', '/v1/gateway/encode?domain=mcp.example', undefined, key, overrides);
    expect(procedure.status).toBe(200);
    expect(procedure.body).toMatchObject({ domain: 'mcp.example', host, url: `http://${host}:8787/mcp` });
    // Followed as given (host and port), the URL is the route's resource: its 401 points at its own metadata.
    const reg = await rest('POST', '/v1/servers/register', { server_id: `encode-${crypto.randomUUID().slice(0, 6)}`, name: 'Encoded', endpoints: { mcp: 'https://mcp.example/mcp' }, auth: { type: 'none' } }, root.token);
    expect(reg.status).toBe(200);
    const ctx = createExecutionContext();
    const res = await worker.fetch(new Request(plain.body.url as string, initialize) as Parameters<typeof worker.fetch>[0], { ...env, ...overrides } as unknown as Env, ctx);
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain(`resource_metadata="http://${host}:8787/.well-known/oauth-protected-resource/mcp"`);
  });

  it('answers 503 on both doors when GATEWAY_DOMAIN is not set', async () => {
    const key = await apiKey(root);
    expect((await at(`${ORIGIN}/encode?domain=mcp.example`, {}, { GATEWAY_DOMAIN: undefined })).status).toBe(503);
    expect((await direct('GET', '/v1/gateway/encode?domain=mcp.example', undefined, key, { GATEWAY_DOMAIN: undefined })).status).toBe(503);
  });
});

describe('hosts the gateway cannot serve', () => {
  it('answers a 404 naming the domain for an encoded host no registered server is on, never ChittyAuth’s /mcp', async () => {
    const host = gatewayHost('nobody.example', GW);
    for (const path of ['/mcp', '/.well-known/oauth-protected-resource/mcp', '/health', '/v1/gateway/encode?domain=mcp.example']) {
      const res = await at(`http://${host}${path}`, path === '/mcp' ? initialize : {});
      expect(res.status, path).toBe(404);
      expect(res.type).toBe('application/json');
      expect(res.body.error).toBe('not_found');
      expect(res.body.message).toContain('No MCP server on nobody.example is registered in the portal');
      expect(res.body.message).toContain(host);
    }
    // The same request on ChittyAuth's own host is ChittyAuth's MCP endpoint (a 401 challenge), for contrast.
    expect((await SELF.fetch(`${ORIGIN}/mcp`, initialize)).status).toBe(401);
  });

  it.each([
    ['GATEWAY_DOMAIN itself', GW],
    ['a name under it that is not an encoded label', `www.${GW}`],
    ['a name under it whose label is not base32', `hello-enc.${GW}`],
  ])('answers a 404 for %s, saying what the gateway serves there', async (_, host) => {
    for (const path of ['/mcp', '/health', '/.well-known/oauth-authorization-server']) {
      const res = await at(`http://${host}${path}`, path === '/mcp' ? initialize : {});
      expect(res.status, `${host}${path}`).toBe(404);
      expect(res.body.error).toBe('not_found');
      expect(res.body.message).toContain(`${host} is not a gateway hostname route`);
      expect(res.body.message).toContain(`{base32(upstream domain)}-enc.${GW}`);
    }
  });

  it('answers a 404 for an encoded host on another domain, naming the domain it is configured for', async () => {
    const host = `${base32Encode('mcp.example')}-enc.elsewhere.test`;
    const res = await at(`http://${host}/mcp`, initialize);
    expect(res.status).toBe(404);
    expect(res.body.message).toBe(`${host} names the upstream mcp.example as a gateway hostname route, but this gateway's hostname routes are under ${GW}`);
    const unset = await at(`http://${gatewayHost('mcp.example', GW)}/mcp`, initialize, { GATEWAY_DOMAIN: undefined });
    expect(unset.status).toBe(404);
    expect(unset.body.message).toContain('hostname routes are not configured here (GATEWAY_DOMAIN is not set)');
  });
});
