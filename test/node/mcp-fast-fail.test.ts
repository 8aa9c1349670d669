import { specTypeSchemas } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { FAST_FAIL, installMcpFastFail } from '../../server/adapters/mcp-fast-fail';

/**
 * server/adapters/mcp-fast-fail.ts replaces the safeParse of five MCP SDK schemas with one that answers "no"
 * without building zod's error when a required field is plainly missing. It must answer exactly as zod does,
 * for every message shape the SDK sorts, and the error (when read) must be zod's own.
 */
const MESSAGES: unknown[] = [
  { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '1' } } },
  { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} },
  { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } },
  { jsonrpc: '2.0', id: 'x', method: 'tools/list' },
  { jsonrpc: '2.0', method: 'notifications/initialized' },
  { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } },
  { jsonrpc: '2.0', id: 3, result: {} },
  { jsonrpc: '2.0', id: 3, result: { content: [] } },
  { jsonrpc: '2.0', id: 4, error: { code: -32601, message: 'Method not found' } },
  { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } },
  { jsonrpc: '2.0', id: 5, error: 'not an object' },
  { jsonrpc: '1.0', id: 6, method: 'tools/list' },
  { id: 7, method: 'tools/list' },
  { jsonrpc: '2.0', id: 8, method: 42 },
  { jsonrpc: '2.0', id: 9, result: null },
  {},
  [],
  null,
  undefined,
  'tools/list',
  42,
];

describe('the MCP SDK schema fast-fail', () => {
  it('answers every message exactly as zod does, and reads as zod when the error is asked for', () => {
    const before = FAST_FAIL.map(([name]) => {
      const schema = specTypeSchemas[name] as unknown as { safeParse: (v: unknown) => { success: boolean; error?: { issues: unknown[] } } };
      return MESSAGES.map((m) => {
        const r = schema.safeParse(m);
        return { success: r.success, issues: r.success ? undefined : r.error!.issues };
      });
    });
    installMcpFastFail();
    FAST_FAIL.forEach(([name], i) => {
      const schema = specTypeSchemas[name] as unknown as { safeParse: (v: unknown) => { success: boolean; error?: { issues: unknown[] } } };
      MESSAGES.forEach((m, j) => {
        const r = schema.safeParse(m);
        expect(r.success, `${name} on ${JSON.stringify(m)}`).toBe(before[i]![j]!.success);
        if (!r.success) expect(r.error!.issues, `${name} on ${JSON.stringify(m)}`).toEqual(before[i]![j]!.issues);
      });
    });
  });

  it('installs once, and the guards the SDK uses still tell the shapes apart', () => {
    installMcpFastFail();
    installMcpFastFail();
    const is = (name: (typeof FAST_FAIL)[number][0], m: unknown) => (specTypeSchemas[name] as unknown as { safeParse: (v: unknown) => { success: boolean } }).safeParse(m).success;
    expect(is('JSONRPCRequest', { jsonrpc: '2.0', id: 1, method: 'tools/list' })).toBe(true);
    expect(is('JSONRPCResultResponse', { jsonrpc: '2.0', id: 1, method: 'tools/list' })).toBe(false);
    expect(is('JSONRPCResultResponse', { jsonrpc: '2.0', id: 1, result: {} })).toBe(true);
    expect(is('JSONRPCErrorResponse', { jsonrpc: '2.0', id: 1, error: { code: 1, message: 'm' } })).toBe(true);
  });
});
