// The one cheap MCP tool the benchmark calls, `echo`, on the MCP SDK's low-level Server: served the same way by
// the loopback upstream (bench/upstream, Node) and by the peer (bench/peer, a Worker), so that both do the same work.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const ECHO = {
  name: 'echo',
  description: 'Returns its input',
  inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
};

export function echoServer(name) {
  const server = new Server({ name, version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [ECHO] }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    if (request.params.name !== 'echo') throw new Error(`unknown tool ${request.params.name}`);
    return { content: [{ type: 'text', text: String(request.params.arguments?.text ?? '') }] };
  });
  return server;
}
