import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';
import accessKey from './test/fixtures/cf-access-key.json' with { type: 'json' };

/** Client ID Metadata Documents served by https://client.example (server/oauth/oauth.clients.test.ts). */
const CIMD_ORIGIN = 'https://client.example';
const cimdDocument = (clientId: string, extra: Record<string, unknown> = {}) => ({
  client_id: clientId,
  client_name: 'Example CIMD Client',
  redirect_uris: ['http://127.0.0.1:33418/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  token_endpoint_auth_method: 'none',
  ...extra,
});
const CIMD_DOCUMENTS: Record<string, unknown> = {
  '/client.json': cimdDocument(`${CIMD_ORIGIN}/client.json`),
  // Claims to be another client than the URL it is served from.
  '/mismatch.json': cimdDocument(`${CIMD_ORIGIN}/someone-else.json`),
  // Valid, but larger than the 5 KiB a document may be.
  '/oversized.json': cimdDocument(`${CIMD_ORIGIN}/oversized.json`, { padding: 'x'.repeat(6 * 1024) }),
};

/**
 * The third parties a Worker under test may call, answered here instead of on the internet:
 * Cloudflare Access's team JWKS and a few Client ID Metadata Documents. Anything else is refused,
 * so no test reaches the network.
 */
async function thirdParties(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (url.origin === accessKey.team && url.pathname === '/cdn-cgi/access/certs') {
    return Response.json({ keys: [accessKey.public] });
  }
  if (url.origin === CIMD_ORIGIN && url.pathname in CIMD_DOCUMENTS) {
    return Response.json(CIMD_DOCUMENTS[url.pathname], { headers: { 'cache-control': 'no-store' } });
  }
  return new Response(`no network in tests: ${request.url}`, { status: 502 });
}

/**
 * Two projects:
 * - workers: the Worker in workerd with a real local D1 (migrations applied per test file);
 * - node: generated-artifact drift, OpenAPI validation and end-to-end tests against `wrangler dev`.
 */
export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest(async () => ({
            main: './server/index.ts',
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                TEST_MIGRATIONS: await readD1Migrations('./migrations'),
                ISSUER: 'http://chittyauth.test',
                ENCRYPTION_KEY: 'test-encryption-key-0123456789abcdef0123456789',
                SETUP_TOKEN: 'test-setup-token',
                ENVIRONMENT: 'test',
                CF_ACCESS_TEAM_DOMAIN: accessKey.team,
                CF_ACCESS_AUD: accessKey.aud,
              },
              outboundService: thirdParties,
            },
          })),
        ],
        test: {
          name: 'workers',
          include: ['server/**/*.test.ts', 'test/workers/**/*.test.ts'],
          setupFiles: ['./test/workers/setup.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'node',
          include: ['test/node/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
