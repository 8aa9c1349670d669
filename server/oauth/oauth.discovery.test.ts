import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { ORIGIN } from '../../test/workers/helpers';

/** RFC 8414 (authorization server metadata, also served as OpenID discovery) and RFC 9728 (protected resource metadata). */
const get = async (path: string) => {
  const res = await SELF.fetch(`${ORIGIN}${path}`);
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
};

describe.each(['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'])('%s', (path) => {
  it('names the issuer exactly and offers S256 only, iss in responses and metadata-document client ids', async () => {
    const { status, body } = await get(path);
    expect(status).toBe(200);
    // RFC 8414 §3.3: the issuer must be identical to the one the metadata was requested for.
    expect(body.issuer).toBe(ORIGIN);
    expect(body.code_challenge_methods_supported).toEqual(['S256']);
    expect(body.authorization_response_iss_parameter_supported).toBe(true);
    expect(body.client_id_metadata_document_supported).toBe(true);
    expect(body.response_types_supported).toEqual(['code']);
  });

  it('lists every endpoint under the issuer', async () => {
    const { body } = await get(path);
    expect(body).toMatchObject({
      authorization_endpoint: `${ORIGIN}/oauth/authorize`,
      token_endpoint: `${ORIGIN}/oauth/token`,
      registration_endpoint: `${ORIGIN}/oauth/register`,
      revocation_endpoint: `${ORIGIN}/oauth/revoke`,
      introspection_endpoint: `${ORIGIN}/oauth/introspect`,
      jwks_uri: `${ORIGIN}/.well-known/jwks.json`,
    });
    expect((await SELF.fetch(body.jwks_uri)).status).toBe(200);
  });
});

describe.each(['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource'])('%s', (path) => {
  it('describes the MCP resource, protected by this issuer', async () => {
    const { status, headers, body } = await get(path);
    expect(status).toBe(200);
    expect(headers.get('access-control-allow-origin')).toBe('*');
    // RFC 9728 §3.3: `resource` is exactly the resource identifier the metadata was fetched for.
    expect(body.resource).toBe(`${ORIGIN}/mcp`);
    expect(body.authorization_servers).toEqual([ORIGIN]);
    expect(body.bearer_methods_supported).toEqual(['header']);
  });
});
