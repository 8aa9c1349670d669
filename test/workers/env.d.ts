// The bindings tests see through `import { env } from 'cloudflare:test'` (vitest.config.ts sets them).
declare namespace Cloudflare {
  interface Env {
    DB: D1Database;
    TEST_MIGRATIONS: import('cloudflare:test').D1Migration[];
    ISSUER: string;
    ENCRYPTION_KEY: string;
    SETUP_TOKEN: string;
    ENVIRONMENT: string;
  }
}
