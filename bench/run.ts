/**
 * `npm run bench`: what ChittyAuth costs per request, on this machine, in one run.
 *
 * 1. Builds the Worker the way `wrangler deploy` does (minified) and reports its size (wrangler's own
 *    "gzip" figure; static assets are not part of it) and its startup (wrangler check startup's CPU profile).
 * 2. Serves ChittyAuth with `wrangler dev` (workerd) on a fresh, migrated and seeded local D1; serves the
 *    ceiling Worker (bench/ceiling: answers 200 at once) and the peer (bench/peer: the same MCP tool behind
 *    @cloudflare/workers-oauth-provider) the same way; starts the loopback MCP upstream (bench/upstream).
 * 3. Drives every scenario with autocannon at a fixed concurrency for a fixed time after a warm-up, and
 *    reports requests/s, p50 and p99 latency, the ratio to the ceiling and to the peer.
 * 4. Writes bench/results.json and bench/results.md, prints the table, and refreshes the figures in
 *    README.md (between the bench markers).
 *
 * Settings (environment): BENCH_CONNECTIONS (20), BENCH_DURATION (10 s), BENCH_WARMUP (3 s),
 * BENCH_ONLY (comma-separated scenario ids, for working on one; the results files are then not written),
 * BENCH_DEVTOOLS=1 (serve with the plain `wrangler dev` CLI and its devtools inspector; see bench/serve.mjs),
 * BENCH_HOLD=1 (seed, then keep the servers up for profiling by hand; bench/out/hold.json says where).
 */
import autocannon from 'autocannon';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { bootstrapAdmin, freePort, generateSecret, migrate, root, startWrangler, type LocalServer } from '../scripts/local-server.mjs';
import { authorizeAsBrowser } from '../test/helpers/oauth-forms';

const started = performance.now();
const int = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const CONNECTIONS = int('BENCH_CONNECTIONS', 20);
const DURATION_S = int('BENCH_DURATION', 10);
const WARMUP_S = int('BENCH_WARMUP', 3);
/** BENCH_DEVTOOLS=1: the plain `wrangler dev` CLI, whose devtools inspector reports every subrequest (see bench/serve.mjs). */
const DEVTOOLS = process.env.BENCH_DEVTOOLS === '1';
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : null;

const benchDir = join(root, 'bench');
const outDir = join(benchDir, 'out');
const wranglerBin = join(root, 'node_modules/wrangler/bin/wrangler.js');
const wranglerEnv = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_HIDE_BANNER: 'true', WRANGLER_SEND_METRICS: 'false', CI: 'true' };

const say = (text: string) => console.log(`\x1b[36m[bench]\x1b[0m ${text}`);
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const otherWorkerds = (own: number[]) => {
  const ps = spawnSync('ps', ['-eo', 'pid=,stat=,comm=']).stdout.toString();
  const ownSet = new Set(own);
  return ps
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([pid, stat, comm]) => comm === 'workerd' && !stat?.startsWith('Z') && !ownSet.has(Number(pid))).length;
};
/** The pids of a process group's members (wrangler and its workerd, esbuild). */
const groupPids = (pgid: number) =>
  spawnSync('ps', ['-eo', 'pid=,pgid=']).stdout.toString().split('\n').map((l) => l.trim().split(/\s+/).map(Number)).filter(([, g]) => g === pgid).map(([p]) => p!);

// ------------------------------------------------------------------------------------------------------
// Build: bundle size and startup
// ------------------------------------------------------------------------------------------------------

interface BundleInfo {
  config: string;
  /** wrangler's "Total Upload" (the minified Worker script, without static assets). */
  upload_kib: number;
  /** wrangler's "gzip" figure for the same upload: what the Workers size limit is measured on. */
  gzip_kib: number;
  /** The same script gzipped here at level 9, as a cross-check. */
  gzip9_kib: number;
}

function buildBundle(name: string, config: string): BundleInfo {
  const dir = join(outDir, 'build', name);
  rmSync(dir, { recursive: true, force: true });
  const res = spawnSync(process.execPath, [wranglerBin, 'deploy', '--dry-run', '--minify', '--outdir', dir, '--config', config], { cwd: root, env: wranglerEnv, encoding: 'utf8' });
  const output = `${res.stdout}${res.stderr}`;
  if (res.status !== 0) throw new Error(`wrangler deploy --dry-run (${name}) failed:\n${output}`);
  const m = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(output);
  if (!m) throw new Error(`no "Total Upload" line in wrangler's output:\n${output}`);
  const script = readdirSync(dir)
    .filter((f) => /\.(m?js|wasm)$/.test(f))
    .map((f) => readFileSync(join(dir, f)));
  const gzip9 = script.reduce((n, b) => n + gzipSync(b, { level: 9 }).byteLength, 0);
  // Relative to the repository, so the committed results name no path of the machine they were made on.
  return { config: relative(root, config), upload_kib: Number(m[1]), gzip_kib: Number(m[2]), gzip9_kib: round(gzip9 / 1024) };
}

interface StartupProfile {
  /** From the profile's first to its last sample: module evaluation of the Worker. */
  profile_ms: number;
  /** Samples that were not (idle) or (program): time spent running the Worker's code at startup. */
  busy_ms: number;
}

/** `wrangler check startup`: a CPU profile of the Worker's startup phase, taken in a local workerd. */
function startupProfile(config: string, name: string): StartupProfile {
  const file = join(outDir, `${name}-startup.cpuprofile`);
  const res = spawnSync(process.execPath, [wranglerBin, 'check', 'startup', '--config', config, '--outfile', file, '--args=--minify'], { cwd: root, env: wranglerEnv, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`wrangler check startup failed:\n${res.stdout}${res.stderr}`);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { startTime: number; endTime: number; nodes: { id: number; callFrame: { functionName: string } }[]; samples: number[]; timeDeltas: number[] };
  const name_ = new Map(profile.nodes.map((n) => [n.id, n.callFrame.functionName]));
  let busy = 0;
  let first = -1;
  let last = 0;
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i]!;
    const fn = name_.get(id);
    if (fn === '(idle)' || fn === '(program)') return;
    if (first < 0) first = t - profile.timeDeltas[i]!;
    last = t;
    busy += profile.timeDeltas[i]!;
  });
  return { profile_ms: round((last - Math.max(first, profile.startTime)) / 1000, 1), busy_ms: round(busy / 1000, 1) };
}

// ------------------------------------------------------------------------------------------------------
// Servers
// ------------------------------------------------------------------------------------------------------

const servers: LocalServer[] = [];
let upstreamChild: ChildProcess | undefined;

async function serve(what: string, options: Parameters<typeof startWrangler>[0]): Promise<{ server: LocalServer; startupMs: number }> {
  const t0 = performance.now();
  const server = await startWrangler({ logLevel: 'warn', timeoutMs: 90_000, launcher: DEVTOOLS ? undefined : join(benchDir, 'serve.mjs'), ...options });
  const startupMs = round(performance.now() - t0, 0);
  servers.push(server);
  say(`${what}: ${server.url} (wrangler dev answered /health with 200 after ${startupMs} ms)`);
  return { server, startupMs };
}

function startUpstream(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(benchDir, 'upstream/server.mjs')], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    upstreamChild = child;
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`the upstream exited (${code}) before listening: ${out}`)));
  });
}

async function stopAll() {
  upstreamChild?.kill('SIGTERM');
  await Promise.all(servers.map((s) => s.stop()));
}

// ------------------------------------------------------------------------------------------------------
// HTTP helpers for the setup
// ------------------------------------------------------------------------------------------------------

async function call(base: string, method: string, path: string, body?: unknown, token?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const form = body instanceof URLSearchParams;
  const res = await fetch(`${base}${path}`, {
    method,
    redirect: 'manual',
    headers: {
      accept: 'application/json',
      ...(body === undefined ? {} : { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : form ? body.toString() : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

async function must(what: string, status: number, p: Promise<{ status: number; body: any; headers: Headers }>) {
  const res = await p;
  if (res.status !== status) throw new Error(`${what}: expected HTTP ${status}, got ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`);
  return res.body;
}

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
const toolsCall = (name: string, args: Record<string, unknown>) => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } });
/** The same call in MCP 2026-07-28: the envelope in `_meta`, and the routing headers. */
const MODERN_ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
const modernHeaders = (tool: string) => ({ 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': tool });
const modernToolsCall = (name: string, args: Record<string, unknown>) => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args, _meta: MODERN_ENVELOPE } });

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

function authorizeUrl(base: string, p: Record<string, string>) {
  const url = new URL(`${base}/oauth/authorize`);
  for (const [k, v] of Object.entries({ response_type: 'code', code_challenge_method: 'S256', state: randomBytes(8).toString('hex'), ...p })) url.searchParams.set(k, v);
  return url;
}

// ------------------------------------------------------------------------------------------------------
// Measuring
// ------------------------------------------------------------------------------------------------------

interface Target {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Dynamic requests (a fresh code or refresh token each time). */
  requests?: autocannon.Request[];
}

interface Measurement {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  duration_s: number;
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
}

const percentile = (sorted: Float64Array, p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);

/**
 * One autocannon run. Latencies are taken from autocannon's per-response timings (a float in ms) rather
 * than its histogram, which rounds to whole milliseconds; only 2xx responses count, as in autocannon.
 */
function load(target: Target, connections: number, seconds: number): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    let latencies = new Float64Array(1 << 16);
    let n = 0;
    const instance = autocannon(
      {
        url: target.url,
        method: target.method ?? 'GET',
        headers: target.headers,
        body: target.body,
        requests: target.requests,
        connections,
        pipelining: 1,
        duration: seconds,
        timeout: 10,
      },
      (error, result) => {
        if (error) return reject(error);
        const sorted = latencies.subarray(0, n).sort();
        const ok = result['2xx'];
        resolve({
          requests: ok + result.non2xx,
          ok,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          duration_s: round(result.duration, 3),
          rps: round(ok / result.duration, 1),
          p50_ms: round(percentile(sorted, 50), 3),
          p90_ms: round(percentile(sorted, 90), 3),
          p99_ms: round(percentile(sorted, 99), 3),
          max_ms: round(sorted.length ? sorted[sorted.length - 1]! : NaN, 3),
        });
      },
    );
    instance.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) => {
      if (status < 200 || status > 299) return;
      if (n === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[n++] = responseTime;
    });
  });
}

interface Scenario {
  id: string;
  title: string;
  /** What is measured and how it authenticates, for the results. */
  detail: string;
  connections: number;
  /** Prepares the target (and checks one request by hand, so a broken scenario fails loudly). */
  prepare: () => Promise<Target>;
  /** Checked after the run: problems seen in response bodies. */
  after?: () => string | null;
}

interface ScenarioResult extends Measurement {
  id: string;
  title: string;
  detail: string;
  connections: number;
  warmup_s: number;
  vs_ceiling: number | null;
  vs_peer: number | null;
  problem: string | null;
}

// ------------------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------------------

async function main() {
  rmSync(join(outDir, 'state'), { recursive: true, force: true });
  rmSync(join(outDir, 'peer-state'), { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const ownPids = () => servers.flatMap((s) => groupPids(s.pid));
  const conditions = { other_workerd_at_start: otherWorkerds([]), loadavg_at_start: loadavg().map((l) => round(l)) };
  say(`machine: ${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}; other workerd processes running: ${conditions.other_workerd_at_start}; load average ${conditions.loadavg_at_start.join(' ')}`);
  say(`settings: ${CONNECTIONS} connections, ${WARMUP_S} s warm-up, ${DURATION_S} s measured per scenario`);

  // 1. Build.
  say('building (wrangler deploy --dry-run --minify) ...');
  const bundles = {
    chittyauth: buildBundle('chittyauth', join(root, 'wrangler.toml')),
    peer: buildBundle('peer', join(benchDir, 'peer/wrangler.toml')),
    ceiling: buildBundle('ceiling', join(benchDir, 'ceiling/wrangler.toml')),
  };
  say(`ChittyAuth bundle: ${bundles.chittyauth.upload_kib} KiB minified, ${bundles.chittyauth.gzip_kib} KiB gzip (peer: ${bundles.peer.gzip_kib} KiB gzip)`);
  const profile = startupProfile(join(root, 'wrangler.toml'), 'chittyauth');
  const peerProfile = startupProfile(join(benchDir, 'peer/wrangler.toml'), 'peer');
  say(`Worker startup (CPU profile of the startup phase): ChittyAuth ${profile.busy_ms} ms busy of ${profile.profile_ms} ms; peer ${peerProfile.busy_ms} ms of ${peerProfile.profile_ms} ms`);

  // 2. Servers.
  const upstream = await startUpstream();
  say(`upstream MCP server (Node, MCP SDK): ${upstream}/mcp`);
  const stateDir = join(outDir, 'state');
  await migrate({ persistTo: stateDir });
  const setupToken = generateSecret();
  const { server: chitty, startupMs: chittyStartup } = await serve('ChittyAuth', {
    persistTo: stateDir,
    vars: { ENCRYPTION_KEY: generateSecret(), SETUP_TOKEN: setupToken, ENVIRONMENT: 'development' },
  });
  const { server: ceiling, startupMs: ceilingStartup } = await serve('ceiling', { config: join(benchDir, 'ceiling/wrangler.toml'), vars: { UPSTREAM_URL: `${upstream}/mcp` } });
  const { server: peer, startupMs: peerStartup } = await serve('peer', { config: join(benchDir, 'peer/wrangler.toml'), persistTo: join(outDir, 'peer-state') });

  // 3. Seed ChittyAuth through its own API: an admin, a user, a service (an OAuth client with a ChittyID of its
  //    own), their credentials, the upstream in the registry, OAuth grants for /mcp and for the gateway route.
  const base = chitty.url;
  say('seeding ChittyAuth ...');
  const admin = { username: 'bench-admin', password: `admin ${generateSecret(12)}` };
  const user = { username: 'bench-user', password: `user ${generateSecret(12)}` };
  await bootstrapAdmin(base, setupToken, admin.username, admin.password);
  const adminToken = (await must('admin sign-in', 200, call(base, 'POST', '/v1/accounts/sign-in', admin))).access_token as string;
  await must('create the user', 201, call(base, 'POST', '/v1/accounts', { ...user, roles: ['user'] }, adminToken));
  const userToken = (await must('user sign-in', 200, call(base, 'POST', '/v1/accounts/sign-in', user))).access_token as string;
  const userApiKey = (await must('user API key', 201, call(base, 'POST', '/v1/api-keys', { name: 'bench user key' }, userToken))).api_key as string;

  const service = await must('service client', 201, call(base, 'POST', '/v1/oauth/clients', { client_id: 'bench-service', client_name: 'Bench service', redirect_uris: [], grant_types: ['client_credentials'], scopes: ['chittyos:services'] }, adminToken));
  await must('service role', 201, call(base, 'POST', '/v1/permissions/grants', { chitty_id: service.chitty_id, role: 'readonly' }, adminToken));
  const serviceJwt = (
    await must(
      'service token (client_credentials)',
      200,
      call(base, 'POST', '/oauth/token', new URLSearchParams({ grant_type: 'client_credentials', scope: 'chittyos:services', resource: base }), undefined, {
        authorization: `Basic ${Buffer.from(`${service.client_id}:${service.client_secret}`).toString('base64')}`,
      }),
    )
  ).access_token as string;
  const serviceApiKey = (await must('service API key', 201, call(base, 'POST', '/v1/api-keys', { chitty_id: service.chitty_id, name: 'bench service key', scopes: ['chittyos:services'] }, adminToken))).api_key as string;

  const SERVER_ID = 'bench-echo';
  // The load is one user on one server, far beyond the default limits: the benchmark measures the gateway's
  // work with its limiter counting every call (each is allowed), not a flood of 429s.
  const BENCH_RATE_LIMITS = { per_user: { requests: 1_000_000, window_seconds: 1 }, per_server: { requests: 1_000_000, window_seconds: 1 } };
  await must('register the upstream', 200, call(base, 'POST', '/v1/servers/register', { server_id: SERVER_ID, name: 'Bench echo', endpoints: { mcp: `${upstream}/mcp` }, auth: { type: 'none' }, rate_limits: BENCH_RATE_LIMITS }, adminToken));

  const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
  const client = await must('dynamic client registration', 201, call(base, 'POST', '/oauth/register', { client_name: 'Bench MCP client', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], scope: 'mcp:read mcp:write' }));
  const clientId = client.client_id as string;
  const flow = pkce();
  const exchange = (code: string, resource: string) =>
    must('code exchange', 200, call(base, 'POST', '/oauth/token', new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: flow.verifier, client_id: clientId, redirect_uri: redirectUri, resource })));
  const oauthTokens = async (resource: string, scope: string) => {
    const trip = await authorizeAsBrowser(authorizeUrl(base, { client_id: clientId, redirect_uri: redirectUri, scope, code_challenge: flow.challenge, resource }), user, 'approve');
    const code = trip.location.searchParams.get('code');
    if (!code) throw new Error(`no code in ${trip.location}`);
    return { tokens: await exchange(code, resource), cookies: trip.setCookies };
  };
  const mcpResource = `${base}/mcp`;
  const gwResource = `${base}/gw/${SERVER_ID}/mcp`;
  const mcpGrant = await oauthTokens(mcpResource, 'mcp:read mcp:write');
  const mcpToken = mcpGrant.tokens.access_token as string;
  const gwToken = (await oauthTokens(gwResource, 'mcp:read mcp:write')).tokens.access_token as string;
  // The user's browser session: with consent remembered, GET /oauth/authorize answers with a code at once.
  const sessionCookie = mcpGrant.cookies
    .map((c) => c.split(';')[0]!)
    .filter((c) => c.includes('=') && !c.endsWith('='))
    .join('; ');

  // Peer: dynamic registration, its /authorize (approves at once), the code exchange.
  const peerFlow = pkce();
  const peerClient = await must('peer registration', 201, call(peer.url, 'POST', '/register', { client_name: 'Bench', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] }));
  const peerAuth = await call(peer.url, 'GET', `/authorize?${new URLSearchParams({ response_type: 'code', client_id: peerClient.client_id, redirect_uri: redirectUri, scope: 'mcp:read', code_challenge: peerFlow.challenge, code_challenge_method: 'S256', state: 'x', resource: `${peer.url}/mcp` })}`);
  const peerCode = new URL(peerAuth.headers.get('location') ?? 'http://x/').searchParams.get('code');
  if (!peerCode) throw new Error(`peer /authorize: ${peerAuth.status} ${JSON.stringify(peerAuth.body).slice(0, 300)}`);
  const peerToken = (await must('peer token', 200, call(peer.url, 'POST', '/token', new URLSearchParams({ grant_type: 'authorization_code', code: peerCode, code_verifier: peerFlow.verifier, client_id: peerClient.client_id, redirect_uri: redirectUri, resource: `${peer.url}/mcp` })))).access_token as string;

  if (process.env.BENCH_HOLD) {
    // For profiling by hand: keep the seeded servers up and say how to reach them.
    const hold = { chittyauth: base, ceiling: ceiling.url, peer: peer.url, upstream, serviceJwt, serviceApiKey, userApiKey, mcpToken, gwToken, peerToken, serverId: SERVER_ID, inspectorArgs: servers.map((s) => s.logs().match(/inspector[^\n]*/i)?.[0] ?? null) };
    writeFileSync(join(outDir, 'hold.json'), JSON.stringify(hold, null, 2));
    say('BENCH_HOLD: servers are up; see bench/out/hold.json. Ctrl-C (SIGINT) stops them.');
    await new Promise(() => {});
  }

  // 4. Scenarios.
  const check = async (what: string, res: Promise<{ status: number; body: any }>, ok: (body: any) => boolean) => {
    const r = await res;
    if (r.status !== 200 || !ok(r.body)) throw new Error(`${what}: unexpected answer ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
  };
  const post = (url: string, headers: Record<string, string>, body: string): Target => ({ url, method: 'POST', headers, body });
  const echoText = (body: any) => body?.result?.content?.[0]?.text === 'bench';

  // Token endpoint: codes come from the real authorization endpoint (the user's session, consent remembered),
  // each its own grant; every exchange's refresh token joins the pool the refresh scenario rotates through.
  const codes: string[] = [];
  const refreshPool: string[] = [];
  let tokenProblems = 0;
  let codesRanOut = 0;
  const CODE_BATCH = int('BENCH_CODES', 0);
  async function mintCodes(count: number) {
    const url = authorizeUrl(base, { client_id: clientId, redirect_uri: redirectUri, scope: 'mcp:read', code_challenge: flow.challenge, resource: mcpResource }).toString();
    let next = 0;
    const worker = async () => {
      while (next++ < count) {
        const res = await fetch(url, { redirect: 'manual', headers: { cookie: sessionCookie } });
        await res.body?.cancel();
        const code = new URL(res.headers.get('location') ?? 'http://x/').searchParams.get('code');
        if (res.status !== 303 || !code) throw new Error(`GET /oauth/authorize with a session: expected 303 with a code, got ${res.status} ${res.headers.get('location')}`);
        codes.push(code);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  }
  const tokenRequest = (body: () => string | null): autocannon.Request[] => [
    {
      method: 'POST',
      path: '/oauth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      setupRequest: (req) => ({ ...req, body: body() ?? 'grant_type=authorization_code&code=exhausted' }),
      onResponse: (status, body) => {
        try {
          const parsed = JSON.parse(body) as { access_token?: string; refresh_token?: string };
          if (status === 200 && parsed.access_token && parsed.refresh_token) refreshPool.push(parsed.refresh_token);
          else tokenProblems++;
        } catch {
          tokenProblems++;
        }
      },
    },
  ];

  const scenarios: Scenario[] = [
    {
      id: 'ceiling',
      title: 'ceiling: bare Worker, 200 at once',
      detail: 'bench/ceiling under wrangler dev: the most this machine, runtime and load generator do together',
      connections: CONNECTIONS,
      prepare: async () => ({ url: `${ceiling.url}/` }),
    },
    {
      id: 'validate_token',
      title: 'POST /v1/tokens/validate (JWT)',
      detail: 'a service authenticated with its OAuth JWT (client_credentials, aud = API) validates a user’s OAuth JWT access token',
      connections: CONNECTIONS,
      prepare: async () => {
        const t = post(`${base}/v1/tokens/validate`, { 'content-type': 'application/json', authorization: `Bearer ${serviceJwt}` }, JSON.stringify({ token: mcpToken }));
        await check('validate_token', call(base, 'POST', '/v1/tokens/validate', { token: mcpToken }, serviceJwt), (b) => b.active === true && b.token_type === 'access_token');
        return t;
      },
    },
    {
      id: 'validate_api_key',
      title: 'POST /v1/api-keys/validate (validate_api_key)',
      detail: 'a service authenticated with its API key validates a user’s API key',
      connections: CONNECTIONS,
      prepare: async () => {
        await check('validate_api_key', call(base, 'POST', '/v1/api-keys/validate', { api_key: userApiKey }, serviceApiKey), (b) => b.valid === true);
        return post(`${base}/v1/api-keys/validate`, { 'content-type': 'application/json', authorization: `Bearer ${serviceApiKey}` }, JSON.stringify({ api_key: userApiKey }));
      },
    },
    {
      id: 'mcp_tools_call',
      title: 'MCP tools/call at /mcp (OAuth)',
      detail: 'tools/call validate_token on the caller’s own token, with an OAuth access token for /mcp: authentication, permission check, MCP',
      connections: CONNECTIONS,
      prepare: async () => {
        const body = toolsCall('validate_token', { token: mcpToken });
        await check('mcp tools/call', call(base, 'POST', '/mcp', JSON.parse(body), mcpToken, MCP_HEADERS), (b) => b?.result?.structuredContent?.active === true);
        return post(`${base}/mcp`, { ...MCP_HEADERS, authorization: `Bearer ${mcpToken}` }, body);
      },
    },
    {
      id: 'mcp_tools_call_2026',
      title: 'MCP tools/call at /mcp, protocol 2026-07-28 (OAuth)',
      detail: 'the same call as a 2026-07-28 client sends it (the _meta envelope, Mcp-Method / Mcp-Name), through the v2 SDK’s per-request entry',
      connections: CONNECTIONS,
      prepare: async () => {
        const body = modernToolsCall('validate_token', { token: mcpToken });
        await check('mcp tools/call 2026-07-28', call(base, 'POST', '/mcp', JSON.parse(body), mcpToken, modernHeaders('validate_token')), (b) => b?.result?.structuredContent?.active === true);
        return post(`${base}/mcp`, { ...modernHeaders('validate_token'), authorization: `Bearer ${mcpToken}` }, body);
      },
    },
    {
      id: 'gateway',
      title: `gateway: tools/call via /gw/${SERVER_ID}/mcp`,
      detail: 'tools/call echo through the gateway to the loopback upstream, with an OAuth access token for the route',
      connections: CONNECTIONS,
      prepare: async () => {
        const body = toolsCall('echo', { text: 'bench' });
        await check('gateway tools/call', call(base, 'POST', `/gw/${SERVER_ID}/mcp`, JSON.parse(body), gwToken, MCP_HEADERS), echoText);
        return post(`${base}/gw/${SERVER_ID}/mcp`, { ...MCP_HEADERS, authorization: `Bearer ${gwToken}` }, body);
      },
    },
    {
      id: 'upstream',
      title: 'upstream direct: tools/call',
      detail: 'the same tools/call sent straight to the upstream (Node, MCP SDK), no ChittyAuth',
      connections: CONNECTIONS,
      prepare: async () => {
        const body = toolsCall('echo', { text: 'bench' });
        await check('upstream tools/call', call(upstream, 'POST', '/mcp', JSON.parse(body), undefined, MCP_HEADERS), echoText);
        return post(`${upstream}/mcp`, MCP_HEADERS, body);
      },
    },
    {
      id: 'gateway_c1',
      title: 'gateway, one connection',
      detail: 'as gateway, one request at a time: the latency the gateway adds, without queueing',
      connections: 1,
      prepare: async () => post(`${base}/gw/${SERVER_ID}/mcp`, { ...MCP_HEADERS, authorization: `Bearer ${gwToken}` }, toolsCall('echo', { text: 'bench' })),
    },
    {
      id: 'upstream_c1',
      title: 'upstream direct, one connection',
      detail: 'as upstream, one request at a time',
      connections: 1,
      prepare: async () => post(`${upstream}/mcp`, MCP_HEADERS, toolsCall('echo', { text: 'bench' })),
    },
    {
      id: 'forward_c1',
      title: 'bare forwarding Worker, one connection',
      detail: 'the same tools/call through bench/ceiling’s POST /forward: one fetch to the upstream, no checks: what the runtime’s proxy hop costs by itself',
      connections: 1,
      prepare: async () => {
        await check('forward tools/call', call(ceiling.url, 'POST', '/forward', JSON.parse(toolsCall('echo', { text: 'bench' })), undefined, MCP_HEADERS), echoText);
        return post(`${ceiling.url}/forward`, MCP_HEADERS, toolsCall('echo', { text: 'bench' }));
      },
    },
    {
      id: 'ceiling_c1',
      title: 'ceiling, one connection',
      detail: 'as ceiling, one request at a time: what the local runtime’s two hops (wrangler’s proxy Worker, then the Worker) cost by themselves',
      connections: 1,
      prepare: async () => ({ url: `${ceiling.url}/` }),
    },
    {
      id: 'token_code',
      title: 'POST /oauth/token: authorization_code',
      detail: 'code exchange with PKCE by a public (dynamically registered) client; each code its own grant, issued by GET /oauth/authorize',
      connections: CONNECTIONS,
      prepare: async () => {
        // Enough codes for the warm-up and the run at a generous rate (codes live 60 s, so not too many).
        const count = CODE_BATCH || Math.max(2000, Math.ceil((rpsOf('validate_api_key') ?? 1500) * 0.9 * (WARMUP_S + DURATION_S)));
        const t0 = performance.now();
        await mintCodes(count);
        say(`  minted ${codes.length} authorization codes in ${round((performance.now() - t0) / 1000, 1)} s`);
        return {
          url: base,
          requests: tokenRequest(() => {
            const code = codes.pop();
            if (!code) {
              codesRanOut++;
              return null;
            }
            return new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: flow.verifier, client_id: clientId, redirect_uri: redirectUri, resource: mcpResource }).toString();
          }),
        };
      },
      after: () => (codesRanOut ? `ran out of codes ${codesRanOut} times (those requests failed)` : tokenProblems ? `${tokenProblems} answers without tokens` : null),
    },
    {
      id: 'token_refresh',
      title: 'POST /oauth/token: refresh_token',
      detail: 'refresh with rotation; each connection keeps rotating the refresh tokens it is given',
      connections: CONNECTIONS,
      prepare: async () => {
        tokenProblems = 0;
        if (refreshPool.length < CONNECTIONS * 2) throw new Error(`only ${refreshPool.length} refresh tokens from the code exchanges`);
        refreshPool.splice(0, refreshPool.length - CONNECTIONS * 2);
        return {
          url: base,
          requests: tokenRequest(() => {
            const token = refreshPool.shift();
            return token ? new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: clientId }).toString() : null;
          }),
        };
      },
      after: () => (tokenProblems ? `${tokenProblems} answers without tokens` : null),
    },
    {
      id: 'peer_mcp',
      title: 'peer: MCP tools/call (workers-oauth-provider)',
      detail: 'tools/call echo at the peer’s /mcp with its OAuth access token: the provider’s token check (KV), then the same MCP SDK server',
      connections: CONNECTIONS,
      prepare: async () => {
        const body = toolsCall('echo', { text: 'bench' });
        await check('peer tools/call', call(peer.url, 'POST', '/mcp', JSON.parse(body), peerToken, MCP_HEADERS), echoText);
        return post(`${peer.url}/mcp`, { ...MCP_HEADERS, authorization: `Bearer ${peerToken}` }, body);
      },
    },
    {
      id: 'peer_auth',
      title: 'peer: authenticated GET, no MCP',
      detail: 'GET /mcp/me at the peer: the provider’s token check and a small JSON answer, nothing else',
      connections: CONNECTIONS,
      prepare: async () => {
        await check('peer GET /mcp/me', call(peer.url, 'GET', '/mcp/me', undefined, peerToken), (b) => b.user === 'bench-user');
        return { url: `${peer.url}/mcp/me`, headers: { authorization: `Bearer ${peerToken}` } };
      },
    },
  ];

  const results: ScenarioResult[] = [];
  const rpsOf = (id: string) => results.find((r) => r.id === id)?.rps;
  for (const s of scenarios) {
    if (ONLY && !ONLY.has(s.id)) continue;
    const target = await s.prepare();
    say(`${s.id}: warm-up ${WARMUP_S} s, then ${DURATION_S} s at ${s.connections} connection(s) ...`);
    if (WARMUP_S > 0) await load(target, s.connections, WARMUP_S);
    const m = await load(target, s.connections, DURATION_S);
    const problem = [m.non2xx ? `${m.non2xx} non-2xx answers` : null, m.errors ? `${m.errors} errors (${m.timeouts} timeouts)` : null, s.after?.() ?? null].filter(Boolean).join('; ') || null;
    results.push({ id: s.id, title: s.title, detail: s.detail, connections: s.connections, warmup_s: WARMUP_S, ...m, vs_ceiling: null, vs_peer: null, problem });
    say(`  ${m.rps} req/s, p50 ${m.p50_ms} ms, p99 ${m.p99_ms} ms${problem ? `  \x1b[31m${problem}\x1b[0m` : ''}`);
  }
  const ceilingRps = rpsOf('ceiling');
  const peerRps = rpsOf('peer_mcp');
  for (const r of results) {
    r.vs_ceiling = ceilingRps ? round(r.rps / ceilingRps, 3) : null;
    r.vs_peer = peerRps ? round(r.rps / peerRps, 2) : null;
  }
  const conditionsEnd = { other_workerd_at_end: otherWorkerds(ownPids()), loadavg_at_end: loadavg().map((l) => round(l)) };
  await stopAll();

  // 5. Targets.
  const get = (id: string) => results.find((r) => r.id === id);
  const targets = [
    target('Authenticated MCP tools/call ≥ 50% of the ceiling’s requests/s', get('mcp_tools_call')?.vs_ceiling, (v) => v >= 0.5, (v) => `${round(v * 100, 1)}%`),
    target('Authenticated MCP tools/call, protocol 2026-07-28, ≥ 50% of the ceiling’s requests/s', get('mcp_tools_call_2026')?.vs_ceiling, (v) => v >= 0.5, (v) => `${round(v * 100, 1)}%`),
    target('Token validation (POST /v1/tokens/validate) ≥ 70% of the ceiling', get('validate_token')?.vs_ceiling, (v) => v >= 0.7, (v) => `${round(v * 100, 1)}%`),
    target('API key validation (validate_api_key) ≥ 70% of the ceiling', get('validate_api_key')?.vs_ceiling, (v) => v >= 0.7, (v) => `${round(v * 100, 1)}%`),
    target(
      'Gateway adds ≤ 1 ms at p50 over the upstream called directly (one connection)',
      diff(get('gateway_c1')?.p50_ms, get('upstream_c1')?.p50_ms),
      (v) => v <= 1,
      (v) => `+${round(v, 2)} ms`,
    ),
    target(
      'For reading the line above: the gateway’s addition less the local runtime’s own two hops (ceiling p50, one connection)',
      diff(diff(get('gateway_c1')?.p50_ms, get('upstream_c1')?.p50_ms), get('ceiling_c1')?.p50_ms),
      (v) => v <= 1,
      (v) => `+${round(v, 2)} ms`,
      true,
    ),
    target(
      'For reading the line above: the gateway’s addition over a bare Worker that only forwards to the upstream (one connection)',
      diff(get('gateway_c1')?.p50_ms, get('forward_c1')?.p50_ms),
      (v) => v <= 1,
      (v) => `+${round(v, 2)} ms`,
      true,
    ),
    target(
      `Gateway adds ≤ 1 ms at p50 over the upstream called directly (${CONNECTIONS} connections)`,
      diff(get('gateway')?.p50_ms, get('upstream')?.p50_ms),
      (v) => v <= 1,
      (v) => `+${round(v, 2)} ms`,
    ),
    target('Authenticated MCP tools/call ≥ 1.5× the peer’s MCP tools/call', get('mcp_tools_call')?.vs_peer, (v) => v >= 1.5, (v) => `${v}×`),
    target('Authenticated MCP tools/call, protocol 2026-07-28, ≥ 1.5× the peer’s MCP tools/call', get('mcp_tools_call_2026')?.vs_peer, (v) => v >= 1.5, (v) => `${v}×`),
    target('Worker bundle ≤ 300 KiB gzip (minified, without static assets)', bundles.chittyauth.gzip_kib, (v) => v <= 300, (v) => `${v} KiB`),
  ];

  const wall = round((performance.now() - started) / 1000, 1);
  const report = {
    generated_at: new Date().toISOString(),
    wall_time_s: wall,
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model ?? null, node: process.version, wrangler: wranglerVersion(), platform: `${process.platform} ${process.arch}` },
    settings: {
      connections: CONNECTIONS,
      warmup_s: WARMUP_S,
      duration_s: DURATION_S,
      load_generator: `autocannon ${autocannonVersion()} (in-process, pipelining 1)`,
      server: DEVTOOLS ? 'wrangler dev (CLI, devtools inspector attached)' : 'wrangler dev’s server (startWorker, devtools inspector off: bench/serve.mjs)',
    },
    conditions: { ...conditions, ...conditionsEnd },
    bundle: bundles,
    startup: {
      chittyauth_wrangler_dev_ms: chittyStartup,
      ceiling_wrangler_dev_ms: ceilingStartup,
      peer_wrangler_dev_ms: peerStartup,
      chittyauth_worker_startup: profile,
      peer_worker_startup: peerProfile,
    },
    scenarios: results,
    targets,
  };
  const markdown = renderMarkdown(report);
  console.log(`\n${markdown}`);
  if (ONLY) {
    say('BENCH_ONLY is set: bench/results.json, bench/results.md and README.md are left as they were.');
    return;
  }
  writeFileSync(join(benchDir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(benchDir, 'results.md'), `${markdown}\n`);
  updateReadme(markdown);
  say(`wrote bench/results.json and bench/results.md; README.md updated. Wall time ${wall} s.`);
}

const diff = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : a - b);

/** A target and whether this run met it; `info`: a figure shown to read another target by, not a target. */
function target(name: string, value: number | null | undefined, ok: (v: number) => boolean, show: (v: number) => string, info = false) {
  if (value === null || value === undefined || Number.isNaN(value)) return { target: name, value: null, shown: 'not measured', met: false as boolean | null };
  return { target: name, value, shown: show(value), met: info ? null : ok(value) };
}

function wranglerVersion() {
  return JSON.parse(readFileSync(join(root, 'node_modules/wrangler/package.json'), 'utf8')).version as string;
}
function autocannonVersion() {
  return JSON.parse(readFileSync(join(root, 'node_modules/autocannon/package.json'), 'utf8')).version as string;
}

type Report = {
  generated_at: string;
  wall_time_s: number;
  machine: { cpus: number; cpu_model: string | null; node: string; wrangler: string };
  settings: { connections: number; warmup_s: number; duration_s: number; load_generator: string; server: string };
  conditions: { other_workerd_at_start: number; other_workerd_at_end: number; loadavg_at_start: number[]; loadavg_at_end: number[] };
  bundle: Record<string, BundleInfo>;
  startup: { chittyauth_wrangler_dev_ms: number; ceiling_wrangler_dev_ms: number; peer_wrangler_dev_ms: number; chittyauth_worker_startup: StartupProfile; peer_worker_startup: StartupProfile };
  scenarios: ScenarioResult[];
  targets: ReturnType<typeof target>[];
};

function renderMarkdown(r: Report): string {
  const f = (n: number | null, d = 2) => (n === null || Number.isNaN(n) ? '–' : n.toFixed(d));
  const lines = [
    `Measured ${r.generated_at.slice(0, 16).replace('T', ' ')} UTC on ${r.machine.cpus} × ${r.machine.cpu_model}, Node ${r.machine.node}, wrangler ${r.machine.wrangler} (workerd), served by ${r.settings.server}; ${r.settings.load_generator}: ${r.settings.warmup_s} s warm-up, then ${r.settings.duration_s} s per scenario. Other workerd processes on the machine: ${r.conditions.other_workerd_at_start} at the start, ${r.conditions.other_workerd_at_end} at the end. Wall time ${r.wall_time_s} s.`,
    '',
    '| scenario | conns | req/s | p50 ms | p99 ms | × ceiling | × peer |',
    '|---|--:|--:|--:|--:|--:|--:|',
    ...r.scenarios.map((s) => `| ${s.title}${s.problem ? ` ⚠ ${s.problem}` : ''} | ${s.connections} | ${s.rps.toFixed(0)} | ${f(s.p50_ms)} | ${f(s.p99_ms)} | ${s.vs_ceiling === null ? '–' : `${(s.vs_ceiling * 100).toFixed(1)}%`} | ${s.vs_peer === null ? '–' : `${s.vs_peer.toFixed(2)}×`} |`),
    '',
    `Bundle (wrangler deploy --dry-run --minify, without static assets): ChittyAuth ${r.bundle.chittyauth!.upload_kib} KiB, **${r.bundle.chittyauth!.gzip_kib} KiB gzip**; peer ${r.bundle.peer!.gzip_kib} KiB gzip. ` +
      `Startup: wrangler dev answered /health ${r.startup.chittyauth_wrangler_dev_ms} ms after it was spawned (ceiling ${r.startup.ceiling_wrangler_dev_ms} ms, peer ${r.startup.peer_wrangler_dev_ms} ms); ` +
      `the Worker's own startup (wrangler check startup CPU profile) ${r.startup.chittyauth_worker_startup.busy_ms} ms (peer ${r.startup.peer_worker_startup.busy_ms} ms).`,
    '',
    '| target | measured | met |',
    '|---|--:|:-:|',
    ...r.targets.map((t) => `| ${t.target} | ${t.shown} | ${t.met === null ? '(info)' : t.met ? 'yes' : '**no**'} |`),
  ];
  return lines.join('\n');
}

function updateReadme(markdown: string) {
  const path = join(root, 'README.md');
  if (!existsSync(path)) return;
  const text = readFileSync(path, 'utf8');
  const start = '<!-- bench:start -->';
  const end = '<!-- bench:end -->';
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) return;
  writeFileSync(path, `${text.slice(0, i + start.length)}\n${markdown}\n${text.slice(j)}`);
}

process.on('SIGINT', () => {
  void stopAll().then(() => process.exit(130));
});

main().then(
  () => process.exit(0),
  async (error) => {
    console.error(error);
    await stopAll();
    process.exit(1);
  },
);
