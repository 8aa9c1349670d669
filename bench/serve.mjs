// `wrangler dev` for the benchmark: the same local dev server (wrangler's own startWorker: its bundling, its
// proxy Worker, miniflare and workerd), started with the arguments `wrangler dev` takes, but with the devtools
// inspector off. `wrangler dev` always attaches an inspector with the Network domain enabled, which reports
// every subrequest of the Worker (each D1 query, each fetch) with its body to wrangler; that costs the Worker
// about 3 ms per D1 query on this machine, a cost production does not have. scripts/local-server.mjs starts
// this file instead of wrangler when asked to (`launcher`), so everything else stays the same.
//
//   node bench/serve.mjs dev --ip 127.0.0.1 --port 8787 [--config f] [--persist-to d] [--var K:V ...] [--inspector-port n]
import { unstable_startWorker } from 'wrangler';

const args = process.argv.slice(2);
if (args[0] !== 'dev') throw new Error('usage: serve.mjs dev [wrangler dev options]');
const options = { vars: {} };
for (let i = 1; i < args.length; i++) {
  const [name, value] = [args[i], args[i + 1]];
  if (name === '--ip') options.ip = value;
  else if (name === '--port') options.port = Number(value);
  else if (name === '--config') options.config = value;
  else if (name === '--persist-to') options.persistTo = value;
  else if (name === '--var') {
    const at = value.indexOf(':');
    options.vars[value.slice(0, at)] = value.slice(at + 1);
  } else if (name === '--inspector-port') options.inspectorPort = Number(value);
  else throw new Error(`serve.mjs: unsupported option ${name}`);
  i++;
}

const worker = await unstable_startWorker({
  config: options.config ?? 'wrangler.toml',
  bindings: Object.fromEntries(Object.entries(options.vars).map(([k, v]) => [k, { type: 'plain_text', value: v }])),
  dev: {
    server: { hostname: options.ip ?? '127.0.0.1', port: options.port ?? 8787 },
    // BENCH_INSPECTOR=1 keeps it, for profiling by hand (bench/run.ts BENCH_HOLD).
    inspector: process.env.BENCH_INSPECTOR === '1' ? { hostname: '127.0.0.1', port: options.inspectorPort } : false,
    persist: options.persistTo,
    liveReload: false,
    logLevel: process.env.WRANGLER_LOG ?? 'log',
  },
});
await worker.ready;
console.log(`Ready on ${await worker.url}`);

const stop = async () => {
  await worker.dispose().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
