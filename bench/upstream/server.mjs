// The benchmark's loopback upstream: a tiny MCP server (the MCP SDK's low-level Server on node:http,
// Streamable HTTP, stateless, JSON responses) with one cheap tool, `echo`. bench/run.ts starts it as a
// child process, registers it in ChittyAuth's portal and calls it both directly and through /gw/{server}/mcp.
//
//   node bench/upstream/server.mjs [port]     # prints "listening <url>" once it accepts requests
import { createServer } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { echoServer } from '../echo.mjs';

const http = createServer(async (req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  if (req.url !== '/mcp' || req.method !== 'POST') {
    res.writeHead(req.url === '/mcp' ? 405 : 404, { 'content-type': 'application/json' }).end('{"error":"POST /mcp"}');
    return;
  }
  try {
    // Stateless: a server and a transport per request, as the SDK's stateless examples do.
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => transport.close());
    await echoServer('bench-upstream').connect(transport);
    await transport.handleRequest(req, res);
  } catch (error) {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(error) }));
  }
});
http.keepAliveTimeout = 60_000;

http.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${http.address().port}`);
});
const stop = () => http.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
