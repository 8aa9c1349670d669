// Types of scripts/local-server.mjs for TypeScript callers (test/helpers/server.ts).
import type { ChildProcess } from 'node:child_process';

/** The repository root (where wrangler.toml lives). */
export const root: string;

/** A fresh high-entropy secret: `bytes` random bytes (default 32), base64url. */
export function generateSecret(bytes?: number): string;

/** Writes `<dir>/.dev.vars` with fresh ENCRYPTION_KEY and SETUP_TOKEN if absent; never overwrites. */
export function ensureDevVars(dir?: string): { path: string; created: boolean; vars: Record<string, string> };

/** Parses `<dir>/.dev.vars`. */
export function readDevVars(dir?: string): Record<string, string>;

/** `wrangler d1 migrations apply DB --local [--persist-to X]`, non-interactively; resolves with its output. */
export function migrate(options?: { persistTo?: string; inherit?: boolean }): Promise<string>;

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number>;

export interface StartOptions {
  /** Default: a free random port. */
  port?: number;
  /** Local state directory (default .wrangler/state). */
  persistTo?: string;
  /** Extra `--var KEY:VALUE` variables; ISSUER is always the server's URL. */
  vars?: Record<string, string | undefined>;
  /** 'inherit' forwards wrangler's output; 'buffer' (default) keeps it for logs(). */
  output?: 'inherit' | 'buffer';
  /** How long to wait for GET /health to answer 200 (default 60 s). */
  timeoutMs?: number;
  /** Another wrangler configuration file (default: the repository's wrangler.toml). */
  config?: string;
  /** wrangler's log level (WRANGLER_LOG), e.g. 'warn' to stop the per-request log lines. */
  logLevel?: 'debug' | 'info' | 'log' | 'warn' | 'error' | 'none';
  /** A script run instead of wrangler's CLI with the same `dev` arguments (bench/serve.mjs). */
  launcher?: string;
}

export interface LocalServer {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  pid: number;
  child: ChildProcess;
  /** Resolves when wrangler exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
  /** wrangler's output so far (the last 256 KiB). */
  logs(): string;
  /** Ends wrangler's whole process group (wrangler and workerd). Idempotent. */
  stop(): Promise<void>;
}

/** Starts `wrangler dev` on 127.0.0.1 and waits until GET /health answers 200. */
export function startWrangler(options?: StartOptions): Promise<LocalServer>;

/** POST /v1/accounts/bootstrap: `created: true` on 201, `created: false` on 409 (an admin exists); throws otherwise. */
export function bootstrapAdmin(
  url: string,
  setupToken: string,
  username: string,
  password: string,
): Promise<{ created: true; account: Record<string, unknown> } | { created: false }>;
