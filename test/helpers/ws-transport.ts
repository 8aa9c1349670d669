/**
 * An MCP client transport over a `ws` WebSocket, as Node MCP clients use one: one JSON-RPC message per text
 * frame. What the SDK's Client needs of a transport, for /mcp's and the gateway tunnel's WebSocket tests.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type WebSocket from 'ws';

export class WebSocketTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  /** Every message received, in order. */
  readonly received: Record<string, any>[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const message = JSON.parse(String(data));
      this.received.push(message);
      this.onmessage?.(message);
    });
    ws.on('close', () => this.onclose?.());
    ws.on('error', (error) => this.onerror?.(error));
  }

  async start() {}

  async send(message: JSONRPCMessage) {
    this.ws.send(JSON.stringify(message));
  }

  async close() {
    this.ws.close(1000, 'done');
  }
}
