/**
 * A recording HTTP proxy on loopback for end-to-end tests: forwards every request to one upstream origin
 * (e.g. server-everything) unchanged, streams the answer back as it arrives (SSE included), and records what
 * the upstream was sent and answered, so a test can prove what the gateway did toward the upstream (a DELETE
 * with the session id the upstream gave, say). Always call `close()`.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  path: string;
  /** The Mcp-Session-Id the request carried. */
  session: string | null;
  /** The JSON-RPC method of a POSTed message (or of a batch's first). */
  rpc?: string;
  headers: IncomingHttpHeaders;
  /** The upstream's status, and the Mcp-Session-Id it answered with (Streamable HTTP, on initialize). */
  status?: number;
  answeredSession?: string | null;
}

export interface RecordingProxy {
  /** http://127.0.0.1:<port> */
  origin: string;
  log: ProxiedRequest[];
  close(): Promise<void>;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and those fetch recomputes are not passed on. */
const DROP = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'proxy-connection', 'te', 'trailer']);
const DROP_RESPONSE = new Set([...DROP, 'content-encoding']);

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target).origin;
  const log: ProxiedRequest[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const entry: ProxiedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', session: (req.headers['mcp-session-id'] as string | undefined) ?? null, headers: req.headers };
    if (body.length > 0) {
      try {
        const parsed = JSON.parse(body.toString('utf8'));
        const first = Array.isArray(parsed) ? parsed[0] : parsed;
        if (typeof first?.method === 'string') entry.rpc = first.method;
      } catch {
        /* not JSON */
      }
    }
    log.push(entry);
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) if (!DROP.has(name) && value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    try {
      const answer = await fetch(`${upstream}${req.url}`, { method: req.method, headers, body: body.length > 0 ? body : undefined, signal: abort.signal, redirect: 'manual' });
      entry.status = answer.status;
      entry.answeredSession = answer.headers.get('mcp-session-id');
      const out: Record<string, string> = {};
      answer.headers.forEach((value, name) => {
        if (!DROP_RESPONSE.has(name)) out[name] = value;
      });
      res.writeHead(answer.status, out);
      const reader = answer.body?.getReader();
      for (let chunk = await reader?.read(); chunk && !chunk.done; chunk = await reader!.read()) res.write(chunk.value);
      res.end();
    } catch (error) {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(abort.signal.aborted ? undefined : `proxy: ${String(error)}`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
