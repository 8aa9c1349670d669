import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';
import accessKey from './test/fixtures/cf-access-key.json' with { type: 'json' };
import { thirdParties } from './test/fixtures/third-parties';

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
                GATEWAY_DOMAIN: 'gw.chittyauth.test',
                // Sync streams send their keep-alive often here, so a test sees one.
                SYNC_HEARTBEAT_MS: '200',
                // Short, so WebSocket heartbeat tests need not wait 30 s.
                GATEWAY_WS_HEARTBEAT_SECONDS: '0.4',
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
