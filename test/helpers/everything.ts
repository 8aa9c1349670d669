/**
 * A real upstream MCP server for end-to-end tests: the reference "everything" server
 * (@modelcontextprotocol/server-everything) on its Streamable HTTP transport, at
 * http://127.0.0.1:<free port>/mcp, or on the legacy HTTP+SSE transport of MCP 2024-11-05 (`sse`), at
 * http://127.0.0.1:<free port>/sse. Its transport reads the port from PORT. Always call `stop()`.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort, root } from '../../scripts/local-server.mjs';

export interface EverythingServer {
  /** The MCP endpoint, http://127.0.0.1:<port>/mcp (or /sse for the legacy transport) */
  url: string;
  logs(): string;
  stop(): Promise<void>;
}

const BIN = join(root, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');

/** What each transport logs once it listens. */
const READY = { streamableHttp: (port: number) => `listening on port ${port}`, sse: (port: number) => `Server is running on port ${port}` };

export async function startEverything(timeoutMs = 60_000, transport: 'streamableHttp' | 'sse' = 'streamableHttp'): Promise<EverythingServer> {
  const port = await freePort();
  // Own process group, so stop() also ends anything it spawned.
  const child = spawn(process.execPath, [BIN, transport], { cwd: root, env: { ...process.env, PORT: String(port) }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const onData = (chunk: Buffer) => (log = (log + chunk.toString()).slice(-64 * 1024));
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  };
  const onExit = () => kill('SIGKILL');
  process.once('exit', onExit);
  const stop = async () => {
    process.removeListener('exit', onExit);
    if (!exited) {
      kill('SIGTERM');
      await Promise.race([exit, new Promise((r) => setTimeout(r, 5_000).unref())]);
    }
    if (!exited) kill('SIGKILL');
  };

  const url = `http://127.0.0.1:${port}/${transport === 'sse' ? 'sse' : 'mcp'}`;
  // Any HTTP answer proves the server is up: GET /mcp (it wants a session), or / for the legacy transport
  // (GET /sse would open a session).
  const probe = transport === 'sse' ? `http://127.0.0.1:${port}/` : url;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`server-everything exited before it was ready:\n${log}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`server-everything did not listen on ${port} within ${timeoutMs / 1000} s:\n${log}`);
    }
    if (log.includes(READY[transport](port))) {
      const res = await fetch(probe, { method: 'GET', signal: AbortSignal.timeout(5_000) }).catch(() => null);
      if (res) {
        await res.body?.cancel();
        break;
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, logs: () => log, stop };
}
