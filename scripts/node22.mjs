// Test tools that need Node 22 (the MCP conformance suite, the MCP Inspector CLI) live in their own package,
// tools/node22, with Node 22 itself from the npm registry (the `node` package), so the project still installs
// and runs on Node 20 with --engine-strict. `node scripts/node22.mjs` installs that package (npm ci) when its
// lock changed or it is missing; tests import node22Tools() for the binaries' paths.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'tools', 'node22');
const bin = join(dir, 'node_modules', '.bin');
const stamp = join(dir, 'node_modules', '.lock-installed');

export function node22Tools() {
  return {
    /** Node 22 binary from the `node` npm package. */
    node: join(bin, 'node'),
    /** The conformance CLI's entry script: run it with `node`. */
    conformance: join(dir, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js'),
    /** The MCP Inspector's launcher: run it with `node`, then `--cli URL ...`. */
    inspector: join(dir, 'node_modules', '@modelcontextprotocol', 'inspector', 'clients', 'launcher', 'build', 'index.js'),
  };
}

export function installNode22Tools() {
  const lock = readFileSync(join(dir, 'package-lock.json'), 'utf8');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === lock && existsSync(node22Tools().node)) return;
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: 'inherit' });
  writeFileSync(stamp, lock);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) installNode22Tools();
