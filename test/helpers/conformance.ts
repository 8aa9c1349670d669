/**
 * Runs the official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in tools/node22 with
 * Node 22 from npm) and reports what it found, for the conformance tests of each leg (server, authorization
 * server, gateway as a client).
 *
 * Each leg's test:
 *   1. calls `runConformance(['server', '--url', ..., '--requirements', '2026-07-28'])` (any CLI arguments);
 *   2. calls `writeConformanceReport(...)`, which writes `docs/conformance/<leg>.md` from the run (every scenario
 *      with pass/fail and, for the ones listed as not applicable, the reason);
 *   3. calls `unexpected(...)` and expects it to be empty: a scenario that fails and is not listed as not
 *      applicable fails the test, and so does a listed one that now passes (the list must stay true).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { node22Tools } from '../../scripts/node22.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ConformanceCheck {
  id: string;
  name: string;
  description?: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED' | string;
  errorMessage?: string;
}

export interface ScenarioResult {
  scenario: string;
  passed: boolean;
  checks: ConformanceCheck[];
}

export interface ConformanceRun {
  scenarios: ScenarioResult[];
  /** The CLI's combined output (stdout and stderr). */
  output: string;
  exitCode: number | null;
}

/** Runs the conformance CLI with `args` under Node 22 and collects every scenario's checks. */
export async function runConformance(
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string>; onOutput?: (chunk: string) => void } = {},
): Promise<ConformanceRun> {
  const tools = node22Tools();
  const out = mkdtempSync(join(tmpdir(), 'chittyauth-conformance-'));
  try {
    const child = spawn(tools.node, [tools.conformance, ...args, '-o', out], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      options.onOutput?.(text);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
    const exitCode = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    clearTimeout(timer);
    return { scenarios: readResults(out), output, exitCode };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function readResults(out: string): ScenarioResult[] {
  const results: ScenarioResult[] = [];
  for (const entry of readdirSync(out, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    let checks: ConformanceCheck[];
    try {
      checks = JSON.parse(readFileSync(join(out, entry.name, 'checks.json'), 'utf8'));
    } catch {
      continue;
    }
    // Directory names are `<leg>-<scenario>-<ISO time>`.
    const scenario = entry.name.replace(/^(server|client|authorization)-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
    const failed = checks.some((c) => c.status === 'FAILURE' || c.status === 'WARNING');
    results.push({ scenario, passed: !failed && checks.some((c) => c.status === 'SUCCESS'), checks });
  }
  return results.sort((a, b) => a.scenario.localeCompare(b.scenario));
}

/** Failing scenarios that are not listed as not applicable, and listed ones that passed (a stale list). */
export function unexpected(run: ConformanceRun, notApplicable: Record<string, string>): string[] {
  const problems: string[] = [];
  for (const result of run.scenarios) {
    const listed = result.scenario in notApplicable;
    if (!result.passed && !listed) {
      const failures = result.checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
      problems.push(`${result.scenario} fails: ${failures.map((c) => `${c.id}: ${c.errorMessage ?? c.description ?? ''}`).join('; ')}`);
    }
    if (result.passed && listed) problems.push(`${result.scenario} passes but is listed as not applicable`);
  }
  return problems;
}

/**
 * Writes docs/conformance/<leg>.md: how the leg was run, then every scenario with its outcome. Scenarios in
 * `notApplicable` carry their one-line reason.
 */
export function writeConformanceReport(
  leg: string,
  title: string,
  how: string,
  run: ConformanceRun,
  notApplicable: Record<string, string>,
): void {
  const version = JSON.parse(
    readFileSync(join(root, 'tools/node22/node_modules/@modelcontextprotocol/conformance/package.json'), 'utf8'),
  ).version as string;
  const passed = run.scenarios.filter((s) => s.passed).length;
  const lines = [
    `# ${title}`,
    '',
    `Generated by the conformance test from its last run (\`@modelcontextprotocol/conformance\` ${version}); do not edit.`,
    '',
    how,
    '',
    `${passed} of ${run.scenarios.length} scenarios pass; every other one is listed as not applicable with its reason.`,
    '',
    '| scenario | result | checks passed | note |',
    '|---|---|--:|---|',
    ...run.scenarios.map((s) => {
      const ok = s.checks.filter((c) => c.status === 'SUCCESS').length;
      const note = notApplicable[s.scenario] ?? '';
      return `| \`${s.scenario}\` | ${s.passed ? 'pass' : note ? 'not applicable' : '**fail**'} | ${ok}/${s.checks.length} | ${note} |`;
    }),
    '',
  ];
  mkdirSync(join(root, 'docs/conformance'), { recursive: true });
  writeFileSync(join(root, 'docs/conformance', `${leg}.md`), lines.join('\n'));
}
