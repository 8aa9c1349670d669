import { expect } from 'vitest';

/**
 * The client side of an MCP WebSocket in workerd tests (the gateway's tunnel, MCP over WebSocket at /mcp):
 * collects JSON-RPC messages, answers the server's heartbeat pings (or not, or with an error, as a test asks),
 * and resolves `closed` with the close code and reason.
 */
export class TestSocket {
  readonly messages: any[] = [];
  readonly pings: string[] = [];
  readonly closed: Promise<{ code: number; reason: string; at: number }>;
  private waiters: (() => void)[] = [];

  constructor(
    readonly ws: WebSocket,
    private readonly answerPings: boolean | 'with an error' = true,
  ) {
    ws.accept();
    this.closed = new Promise((resolve) => ws.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason, at: Date.now() })));
    ws.addEventListener('message', (e) => {
      const m = JSON.parse(e.data as string);
      if (m.method === 'ping' && typeof m.id === 'string') {
        this.pings.push(m.id);
        if (this.answerPings === 'with an error') ws.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } }));
        else if (this.answerPings) ws.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {} }));
        return;
      }
      this.messages.push(m);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  async until<T>(find: () => T | undefined): Promise<T> {
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async request(id: number | string, method: string, params: unknown = {}) {
    this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    return this.until(() => this.messages.find((m) => m.id === id));
  }

  /** The 2025 handshake: initialize, then notifications/initialized. */
  async initialize(version = '2025-06-18', id: number | string = 'init') {
    const init = await this.request(id, 'initialize', { protocolVersion: version, capabilities: {}, clientInfo: { name: 'ws-test', version: '1' } });
    expect(init.result.protocolVersion).toBe(version);
    this.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    return init;
  }
}
