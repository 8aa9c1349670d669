/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in tools/node22) against a real
 * `wrangler dev`: the server scenarios MCP 2025-11-25 and 2026-07-28 require of /mcp, and the
 * authorization-server scenarios against ChittyAuth's OAuth endpoints. The checks that cannot apply are the
 * suite's expected-failures baseline (test/conformance/not-applicable.ts, each with its reason); any other
 * failure, or a listed check that starts passing, fails the suite's run and this test. docs/conformance.md is
 * rendered from the run and must match the committed file (`UPDATE_CONFORMANCE=1 npm run conformance` rewrites it).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, root } from '../../scripts/local-server.mjs';
import { node22Tools } from '../../scripts/node22.mjs';
import { NOT_APPLICABLE } from '../conformance/not-applicable';
import { startAuthProxy, type AuthProxy } from '../helpers/auth-proxy';
import { authorizeAsBrowser } from '../helpers/oauth-forms';
import { startTestServer, type Caller, type TestServer } from '../helpers/server';

const SUITE_VERSION = JSON.parse(readFileSync(join(root, 'tools/node22/node_modules/@modelcontextprotocol/conformance/package.json'), 'utf8')).version as string;
const DOC = join(root, 'docs/conformance.md');
const REQUIREMENTS = ['2025-11-25', '2026-07-28'] as const;
/**
 * The auth scenarios MCP 2026-07-28 requires of a client (`conformance list`), run with ChittyAuth's gateway as
 * the OAuth client of the suite's mock server (test/conformance/gateway-client.ts drives it). The extension
 * scenarios (client_credentials, ID-JAG, DPoP, workload identity) are for non-interactive clients, which the
 * gateway is not; the 2025-03-26 back-compatibility ones are not in the 2026-07-28 set.
 */
const CLIENT_SCENARIOS = [
  'auth/metadata-default',
  'auth/metadata-var1',
  'auth/metadata-var2',
  'auth/metadata-var3',
  'auth/basic-cimd',
  'auth/scope-from-www-authenticate',
  'auth/scope-from-scopes-supported',
  'auth/scope-omitted-when-undefined',
  'auth/scope-step-up',
  'auth/scope-retry-limit',
  'auth/token-endpoint-auth-basic',
  'auth/token-endpoint-auth-post',
  'auth/token-endpoint-auth-none',
  'auth/pre-registration',
  'auth/resource-mismatch',
  'auth/offline-access-scope',
  'auth/offline-access-not-supported',
  'auth/authorization-server-migration',
  'auth/iss-supported',
  'auth/iss-not-advertised',
  'auth/iss-supported-missing',
  'auth/iss-wrong-issuer',
  'auth/iss-unexpected',
  'auth/iss-normalized',
  'auth/metadata-issuer-mismatch',
];

interface Check {
  id: string;
  status: string;
  errorMessage?: string;
}
interface ScenarioResult {
  scenario: string;
  checks: Check[];
}
interface Run {
  exitCode: number | null;
  output: string;
  results: ScenarioResult[];
}

let server: TestServer;
let admin: Caller;
let proxy: AuthProxy;
let work: string;
const runs: Record<string, Run> = {};

/** Runs the suite's CLI with Node 22; `onLine` sees its output as it comes (the authorization leg waits for a browser). */
function conformance(args: string[], outDir: string, onLine?: (line: string) => void): Promise<Run> {
  const tools = node22Tools();
  return new Promise((resolve, reject) => {
    const child = spawn(tools.node, [tools.conformance, ...args, '-o', outDir], { env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let pending = '';
    const take = (chunk: Buffer) => {
      output += chunk;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) onLine?.(line);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ exitCode, output, results: readResults(outDir) }));
  });
}

/** Each scenario's checks, from `<outDir>/<leg>-<scenario>-<timestamp>/checks.json`. */
function readResults(outDir: string, prefix = ''): ScenarioResult[] {
  if (!existsSync(outDir)) return [];
  return readdirSync(outDir)
    .flatMap((dir) => {
      // Client scenarios (auth/...) are saved one folder down.
      if (dir === 'auth') return readResults(join(outDir, dir), 'auth/');
      const leg = prefix ? dir : dir.replace(/^(authorization-server-|server-)/, '');
      const scenario = prefix + leg.replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
      const file = join(outDir, dir, 'checks.json');
      return [{ scenario, checks: existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Check[]) : [] }];
    })
    .sort((a, b) => a.scenario.localeCompare(b.scenario));
}

/** The suite's baseline counts a warning as a failure, and so does this page. */
const failed = (c: Check) => c.status === 'FAILURE' || c.status === 'WARNING';
const reasonFor = (scenario: string, check: Check) => NOT_APPLICABLE[`${scenario}:${check.id}`] ?? NOT_APPLICABLE[scenario];

function renderDoc(): string {
  const lines = [
    '# MCP conformance',
    '',
    `Generated by \`test/e2e/conformance.test.ts\` from a run of the official MCP conformance suite (\`@modelcontextprotocol/conformance\` ${SUITE_VERSION}) against \`wrangler dev\`; \`npm test\` runs it and fails if this page no longer matches. Regenerate with \`UPDATE_CONFORMANCE=1 npm run conformance\`.`,
    '',
    'The suite reaches `/mcp` through a loopback proxy that adds an API key, as a host with a configured bearer token would: `/mcp` answers every unauthenticated request with 401 (the OAuth flow itself is covered by the authorization-server scenarios and the e2e tests). A check marked *n/a* cannot apply to ChittyAuth, for the reason given; it is the suite\'s expected-failures baseline, so a new failure, or an n/a check that starts passing, fails CI.',
    '',
  ];
  for (const [leg, title] of [
    ...REQUIREMENTS.map((r) => [r, `Server scenarios required by MCP ${r} (\`conformance server --requirements ${r}\`)`] as const),
    ['authorization', 'Authorization-server scenarios (`conformance authorization`)'] as const,
    ['client', 'Client scenarios: the gateway as the OAuth client of an upstream (`conformance client --scenario auth/...`, the auth scenarios MCP 2026-07-28 requires)'] as const,
  ]) {
    const run = runs[leg]!;
    lines.push(`## ${title}`, '', '| Scenario | Result | Checks passed (distinct) | Not applicable |', '|---|---|---|---|');
    for (const { scenario, checks: all } of run.results) {
      // INFO entries are the suite's log of messages, not checks.
      const checks = all.filter((c) => c.status !== 'INFO');
      const bad = checks.filter(failed);
      // Counted by check id: the suite repeats a check for each request it sees (a step-up retry, say), and how
      // many requests a client makes varies with timing, so raw counts would not be a stable page.
      const ids = new Set(checks.map((c) => c.id));
      const badIds = new Set(bad.map((c) => c.id));
      const result = bad.length === 0 ? 'pass' : bad.every((c) => reasonFor(scenario, c)) ? 'n/a' : '**fail**';
      const notes = [...new Set(bad.map((c) => `\`${c.id}\`: ${reasonFor(scenario, c) ?? '**unexplained failure**'}`))].join('<br>');
      lines.push(`| \`${scenario}\` | ${result} | ${ids.size - badIds.size}/${ids.size} | ${notes} |`);
    }
    lines.push('');
  }
  lines.push(
    '## Authorization extension scenarios that test clients',
    '',
    'The suite\'s `auth/client-credentials-jwt`, `auth/client-credentials-basic` and `auth/enterprise-managed-authorization` are *client* scenarios (`conformance list` puts them there): the suite plays a mock MCP server and authorization server and checks the client under test, so they cannot run against ChittyAuth\'s authorization server. The same requests, from the authorization server\'s side, are covered by:',
    '',
    '| Scenario | What ChittyAuth must accept | Tests |',
    '|---|---|---|',
    '| `auth/client-credentials-jwt` | `client_credentials` with a `private_key_jwt` assertion (RFC 7523 §2.2) | `server/oauth/oauth.assertion.test.ts`; the v2 SDK\'s `PrivateKeyJwtProvider` in `test/e2e/oauth-sdk-providers.test.ts` |',
    '| `auth/client-credentials-basic` | `client_credentials` with `client_secret_basic` | `server/oauth/oauth.token.test.ts` |',
    '| `auth/enterprise-managed-authorization` | the `jwt-bearer` grant with an ID-JAG from a trusted identity provider | `server/oauth/oauth.id-jag.test.ts`; the v2 SDK\'s `CrossAppAccessProvider` in `test/e2e/oauth-sdk-providers.test.ts` |',
    '',
  );
  return lines.join('\n');
}

beforeAll(async () => {
  server = await startTestServer();
  admin = await server.admin();
  proxy = await startAuthProxy(server.url, { authorization: `Bearer ${await server.apiKey(admin)}` });
  work = mkdtempSync(join(tmpdir(), 'chittyauth-conformance-'));
  // The baseline in the suite's own format (JSON is YAML): every not-applicable check.
  const keys = Object.keys(NOT_APPLICABLE);
  writeFileSync(join(work, 'expected-failures.yaml'), JSON.stringify({ server: keys.filter((k) => !k.startsWith('auth/')), client: keys.filter((k) => k.startsWith('auth/')) }));
});

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the MCP conformance suite', () => {
  for (const requirement of REQUIREMENTS) {
    it(`passes every server scenario MCP ${requirement} requires, but the ones that cannot apply`, async () => {
      const run = await conformance(
        ['server', '--url', `${proxy.url}/mcp`, '--requirements', requirement, '--expected-failures', join(work, 'expected-failures.yaml'), '--timeout', '10000'],
        join(work, requirement),
      );
      runs[requirement] = run;
      expect(run.results.length, run.output.slice(-3000)).toBeGreaterThan(20);
      const unexplained = run.results.flatMap(({ scenario, checks }) => checks.filter((c) => failed(c) && !reasonFor(scenario, c)).map((c) => `${scenario}:${c.id}: ${c.errorMessage}`));
      expect(unexplained).toEqual([]);
      // The suite's own verdict against the baseline: no unexpected failure and no stale entry.
      expect(run.exitCode, run.output.slice(-3000)).toBe(0);
    }, 600_000);
  }

  it('passes the authorization-server scenarios: metadata, and the authorization code grant with PKCE and a resource', async () => {
    const port = await freePort();
    const redirect = `http://127.0.0.1:${port}/callback`;
    const registered = await server.rest('POST', '/oauth/register', { client_name: 'MCP conformance suite', redirect_uris: [redirect], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] });
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
    let browsed: Promise<void> | undefined;
    const run = await conformance(
      ['authorization', '--url', server.url, '--client-id', registered.body.client_id, '--resource', `${server.url}/mcp`, '--port', String(port)],
      join(work, 'authorization'),
      (line) => {
        // The suite prints the authorization URL for a person to open; this plays the person.
        if (!browsed && line.startsWith(`${server.url}/oauth/authorize?`)) {
          browsed = authorizeAsBrowser(line.trim(), admin).then(async (trip) => {
            expect(trip.location.href.startsWith(redirect)).toBe(true);
            await (await fetch(trip.location)).text();
          });
        }
      },
    );
    await browsed;
    runs.authorization = run;
    expect(run.results.map((r) => r.scenario)).toEqual(['authorization-code-grant', 'authorization-server-metadata-endpoint']);
    const failures = run.results.flatMap(({ scenario, checks }) => checks.filter(failed).map((c) => `${scenario}:${c.id}: ${c.errorMessage}`));
    expect(failures, run.output.slice(-3000)).toEqual([]);
  }, 600_000);

  it('passes the auth client scenarios of MCP 2026-07-28 with the gateway as the client, but the ones that cannot apply', async () => {
    const driver = `${process.execPath} ${join(root, 'node_modules/tsx/dist/cli.mjs')} ${join(root, 'test/conformance/gateway-client.ts')}`;
    process.env.CHITTYAUTH_URL = server.url;
    process.env.CHITTYAUTH_API_KEY = await server.apiKey(admin);
    process.env.CHITTYAUTH_USERNAME = admin.username;
    process.env.CHITTYAUTH_PASSWORD = admin.password;
    const outDir = join(work, 'client');
    const exits: (number | null)[] = [];
    let output = '';
    // Six at a time: each scenario is its own mock server and authorization server on a free port.
    const queue = [...CLIENT_SCENARIOS];
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        for (let scenario = queue.shift(); scenario; scenario = queue.shift()) {
          const run = await conformance(['client', '--command', driver, '--scenario', scenario, '--expected-failures', join(work, 'expected-failures.yaml'), '--timeout', '60000'], outDir);
          exits.push(run.exitCode);
          if (run.exitCode !== 0) output += `\n--- ${scenario}\n${run.output.slice(-2000)}`;
        }
      }),
    );
    const results = readResults(outDir);
    runs.client = { exitCode: Math.max(...exits.map((e) => e ?? 1)), output, results };
    expect(results.map((r) => r.scenario).sort()).toEqual([...CLIENT_SCENARIOS].sort());
    const unexplained = results.flatMap(({ scenario, checks }) => checks.filter((c) => failed(c) && !reasonFor(scenario, c)).map((c) => `${scenario}:${c.id}: ${c.errorMessage}`));
    expect(unexplained, output).toEqual([]);
    expect(runs.client.exitCode, output).toBe(0);
  }, 600_000);

  it('docs/conformance.md is the page this run renders', () => {
    const rendered = renderDoc();
    if (process.env.UPDATE_CONFORMANCE) writeFileSync(DOC, rendered);
    expect(readFileSync(DOC, 'utf8')).toBe(rendered);
  });
});
