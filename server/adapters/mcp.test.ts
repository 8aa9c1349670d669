import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, apiKey, ORIGIN } from '../../test/workers/helpers';
import { isLegacyRequest } from '@modelcontextprotocol/server';
import * as mcp from './mcp';
import { plainlyLegacy } from './mcp';
import { MAX_BATCH, SERVED_VERSIONS } from './mcp-wire';

/**
 * /mcp on the wire, in both protocol eras: MCP 2026-07-28 (a `_meta` envelope on every request, no initialize)
 * and the 2025 versions (initialize, stateless JSON answers), and the JSON-RPC edges both must refuse.
 */
const MODERN = '2026-07-28';
const envelope = (version = MODERN) => ({
  'io.modelcontextprotocol/protocolVersion': version,
  'io.modelcontextprotocol/clientInfo': { name: 'wire-test', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
});

let key: string;
beforeAll(async () => {
  key = await apiKey(await admin());
});

interface Sent {
  status: number;
  headers: Headers;
  body: any;
}

async function post(body: unknown, headers: Record<string, string> = {}, token: string | null = key): Promise<Sent> {
  const res = await SELF.fetch(`${ORIGIN}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

/** A 2026-07-28 request: the envelope in `_meta`, and the standard headers that must agree with it. */
function modern(id: number, method: string, params: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const name: Record<string, string> = typeof params.name === 'string' ? { 'mcp-name': params.name } : {};
  return post(
    { jsonrpc: '2.0', id, method, params: { ...params, _meta: envelope() } },
    { 'mcp-protocol-version': MODERN, 'mcp-method': method, ...name, ...headers },
  );
}

const legacy = (body: unknown, version = '2025-11-25') => post(body, { 'mcp-protocol-version': version });

describe('MCP 2026-07-28 on /mcp', () => {
  it('answers server/discover with every version the endpoint serves, its capabilities and identity, not cacheable across callers', async () => {
    const { status, body } = await modern(1, 'server/discover');
    expect(status).toBe(200);
    expect(body.id).toBe(1);
    expect(body.result.supportedVersions).toEqual([...SERVED_VERSIONS]);
    expect(body.result.capabilities.tools).toBeDefined();
    expect(body.result).toMatchObject({ resultType: 'complete', ttlMs: 0, cacheScope: 'private' });
    expect(body.result._meta['io.modelcontextprotocol/serverInfo']).toMatchObject({ name: 'chittyauth' });
  });

  it('lists tools without initialize, marked private (the list depends on the caller) and with serverInfo', async () => {
    const { status, body } = await modern(2, 'tools/list');
    expect(status).toBe(200);
    expect(body.result.tools.map((t: { name: string }) => t.name)).toContain('whoami');
    expect(body.result).toMatchObject({ resultType: 'complete', cacheScope: 'private', ttlMs: 0 });
    expect(body.result._meta['io.modelcontextprotocol/serverInfo'].name).toBe('chittyauth');
  });

  it('calls a tool, and a failing call is a tool result naming the contract error', async () => {
    const ok = await modern(3, 'tools/call', { name: 'whoami', arguments: {} });
    expect(ok.body.result.isError).toBeUndefined();
    expect(ok.body.result.structuredContent.credential).toBe('api_key');
    const failed = await modern(4, 'tools/call', { name: 'get_account', arguments: { chitty_id: 'CHITTY-PEO-ZZZZZZZZZZ-ZZZ' } });
    expect(failed.body.result.isError).toBe(true);
    expect(failed.body.result.content[0].text).toMatch(/^NOT_FOUND \(404\): /);
    expect(failed.body.result.structuredContent).toBeUndefined();
    expect(failed.body.result._meta['cc.chitty/error']).toMatchObject({ code: 'NOT_FOUND', status: 404 });
  });

  it('refuses an unsupported version with -32022, HTTP 400, the request id and the supported list', async () => {
    const { status, body } = await post(
      { jsonrpc: '2.0', id: 5, method: 'tools/list', params: { _meta: envelope('2099-01-01') } },
      { 'mcp-protocol-version': '2099-01-01', 'mcp-method': 'tools/list' },
    );
    expect(status).toBe(400);
    expect(body.id).toBe(5);
    expect(body.error.code).toBe(-32022);
    expect(body.error.data).toEqual({ supported: [...SERVED_VERSIONS], requested: '2099-01-01' });
  });

  it('decodes a Base64-encoded Mcp-Name (a name that is no plain header value) before comparing it with the body', async () => {
    const encoded = `=?base64?${btoa(String.fromCharCode(...new TextEncoder().encode('ünïcode_tool')))}?=`;
    const agreeing = await modern(8, 'tools/call', { name: 'ünïcode_tool', arguments: {} }, { 'mcp-name': encoded });
    expect(agreeing.body.error.code).toBe(-32602); // an unknown tool, not a header mismatch
    const disagreeing = await modern(9, 'tools/call', { name: 'whoami', arguments: {} }, { 'mcp-name': encoded });
    expect(disagreeing.status).toBe(400);
    expect(disagreeing.body.error.code).toBe(-32020);
    const broken = await modern(10, 'tools/call', { name: 'whoami', arguments: {} }, { 'mcp-name': '=?base64?not base64!?=' });
    expect(broken.body.error.code).toBe(-32020);
  });

  it('refuses an Mcp-Name that disagrees with the body with -32020 and HTTP 400, and runs nothing', async () => {
    const { status, body } = await modern(6, 'tools/call', { name: 'whoami', arguments: {} }, { 'mcp-name': 'evil' });
    expect(status).toBe(400);
    expect(body.id).toBe(6);
    expect(body.error.code).toBe(-32020);
    expect(body.error.message).toContain('evil');
    expect(body.result).toBeUndefined();
  });

  it('refuses an Mcp-Method that disagrees with the body with -32020', async () => {
    const { status, body } = await modern(7, 'tools/list', {}, { 'mcp-method': 'tools/call' });
    expect(status).toBe(400);
    expect(body.error.code).toBe(-32020);
  });

  it('holds Mcp-Name to the field each method names (a taskId for tasks/get), and answers a method it does not serve with -32601', async () => {
    const { status, body } = await modern(13, 'tasks/get', { taskId: 'task-1' }, { 'mcp-name': 'task-1' });
    expect(status).toBe(404);
    expect(body.error.code).toBe(-32601);
    const mismatch = await modern(14, 'tasks/get', { taskId: 'task-1' }, { 'mcp-name': 'task-2' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error.code).toBe(-32020);
  });

  it('answers methods the revision removed (initialize, ping) and unknown ones with HTTP 404 and -32601, keeping the id', async () => {
    for (const [id, method] of [
      [8, 'initialize'],
      [9, 'ping'],
      [10, 'no/such-method'],
    ] as const) {
      const { status, body } = await modern(id, method);
      expect(status, method).toBe(404);
      expect(body, method).toMatchObject({ id, error: { code: -32601 } });
    }
  });

  it('answers malformed tool arguments with -32602 naming the field, never a raw schema dump', async () => {
    for (const [id, args] of [
      [11, []],
      [12, 'x'],
    ] as const) {
      const { body } = await modern(id, 'tools/call', { name: 'whoami', arguments: args });
      expect(body.id).toBe(id);
      expect(body.error.code).toBe(-32602);
      expect(body.error.message).toMatch(/"params\.arguments" must be an object/);
      expect(body.error.message).not.toContain('invalid_type');
    }
  });
});

describe('the 2025 versions on /mcp', () => {
  it('keep the initialize handshake and stateless JSON answers', async () => {
    const { status, headers, body } = await legacy({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'wire-test', version: '1' } },
    });
    expect(status).toBe(200);
    expect(headers.get('content-type')).toContain('application/json');
    expect(body.result.protocolVersion).toBe('2025-06-18');
    expect(body.result.serverInfo.name).toBe('chittyauth');
  });

  it('answers malformed params and arguments with -32602 naming the field', async () => {
    for (const [params, field] of [
      [[], '"params"'],
      [{ arguments: {} }, '"params.name"'],
      [{ name: 'whoami', arguments: ['a'] }, '"params.arguments"'],
      [{ name: 'whoami', arguments: 'a' }, '"params.arguments"'],
    ] as const) {
      const { status, body } = await legacy({ jsonrpc: '2.0', id: 2, method: 'tools/call', params });
      expect(status).toBe(200);
      expect(body.id).toBe(2);
      expect(body.error.code).toBe(-32602);
      expect(body.error.message).toContain(field);
    }
  });

  it('hold an Mcp-Name header to the body too', async () => {
    const { status, body } = await post({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'whoami', arguments: {} } }, { 'mcp-protocol-version': '2025-11-25', 'mcp-name': 'evil' });
    expect(status).toBe(400);
    expect(body).toMatchObject({ id: 3, error: { code: -32020 } });
  });

  it('answer an empty batch with one Invalid Request error', async () => {
    const { status, body } = await legacy([]);
    expect(status).toBe(400);
    expect(body).toMatchObject({ id: null, error: { code: -32600 } });
  });

  it('refuse batches for the versions that removed them (2025-06-18 on)', async () => {
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { jsonrpc: '2.0', id: 2, method: 'tools/list' },
    ];
    for (const version of ['2025-06-18', '2025-11-25']) {
      const { status, body } = await legacy(batch, version);
      expect(status, version).toBe(400);
      expect(body.error.code).toBe(-32600);
      expect(body.error.message).toContain('batches');
    }
  });

  it(`accept a 2025-03-26 batch of up to ${MAX_BATCH} messages and refuse a longer one`, async () => {
    const batch = (n: number) => Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', id: i + 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } }));
    const ok = await post(batch(MAX_BATCH));
    expect(ok.status).toBe(200);
    expect(ok.body).toHaveLength(MAX_BATCH);
    expect(ok.body.every((r: any) => r.result.structuredContent.credential === 'api_key')).toBe(true);
    const tooMany = await post(batch(MAX_BATCH + 1));
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toMatchObject({ code: -32600 });
    expect(tooMany.body.error.message).toContain(`at most ${MAX_BATCH}`);
  });
});

describe('the short cut past isLegacyRequest', () => {
  it('calls a request legacy only when the SDK does too', async () => {
    const bodies: unknown[] = [
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } },
      { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '1' } } },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {}, _meta: { progressToken: 1 } } },
      { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope() } },
      [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }],
      { jsonrpc: '2.0', id: 1, method: 'tools/list', params: null },
    ];
    const headers: Record<string, string>[] = [{}, { 'mcp-protocol-version': '2025-06-18' }, { 'mcp-protocol-version': '2025-11-25' }, { 'mcp-protocol-version': MODERN }, { 'mcp-protocol-version': '2099-01-01' }];
    let shortCuts = 0;
    for (const body of bodies) {
      for (const h of headers) {
        const request = new Request(`${ORIGIN}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...h }, body: JSON.stringify(body) });
        if (!plainlyLegacy(request, body)) continue;
        shortCuts++;
        expect(await isLegacyRequest(request, body), `${JSON.stringify(h)} ${JSON.stringify(body)}`).toBe(true);
      }
    }
    expect(shortCuts).toBeGreaterThanOrEqual(9);
  });
});

describe('CORS preflight on /mcp', () => {
  it('allows the 2026-07-28 routing headers and any Mcp-Param-* header a browser client asks for', async () => {
    const res = await SELF.fetch(`${ORIGIN}/mcp`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:6274', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, mcp-method, mcp-name, mcp-param-region, x-evil' },
    });
    expect(res.status).toBe(204);
    const allowed = res.headers.get('access-control-allow-headers')!.split(', ');
    expect(allowed).toEqual(expect.arrayContaining(['authorization', 'mcp-protocol-version', 'mcp-method', 'mcp-name', 'mcp-param-region']));
    expect(allowed).not.toContain('x-evil');
  });
});

describe('the direct tools/call path answers exactly as the SDK does', () => {
  const call = (name: string, args: unknown, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}) => post({ jsonrpc: '2.0', id: 'x-1', method: 'tools/call', params: { name, arguments: args }, ...extra }, headers);
  const cases: [string, () => Promise<Sent>][] = [
    ['a succeeding tool', () => call('whoami', {})],
    ['a tool error (not found)', () => call('get_account', { chitty_id: 'CHITTY-PEO-ZZZZZZZZZZ-ZZZ' })],
    ['a tool error (bad arguments)', () => call('get_account', { chitty_id: 42 })],
    ['a numeric id and no arguments', () => post({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'whoami' } })],
    ['each 2025 version header', () => call('whoami', {}, { 'mcp-protocol-version': '2025-03-26' })],
    ['the 2024-11-05 header', () => call('whoami', {}, { 'mcp-protocol-version': '2024-11-05' })],
    ['an unknown tool (left to the SDK)', () => call('no_such_tool', {})],
    ['an Accept without SSE (left to the SDK)', () => call('whoami', {}, { accept: 'application/json' })],
    ['a content type that is not JSON (left to the SDK)', () => call('whoami', {}, { 'content-type': 'text/plain' })],
    ['an extra top-level field (left to the SDK)', () => call('whoami', {}, {}, { extra: true })],
  ];
  for (const [what, send] of cases) {
    it(what, async () => {
      mcp.setDirectToolsCall(false);
      const before = mcp.directAnswers;
      const viaSdk = await send();
      expect(mcp.directAnswers).toBe(before);
      mcp.setDirectToolsCall(true);
      const direct = await send();
      expect({ status: direct.status, type: direct.headers.get('content-type'), body: direct.body }).toEqual({ status: viaSdk.status, type: viaSdk.headers.get('content-type'), body: viaSdk.body });
    });
  }

  it('answers the plain calls itself (and no others)', async () => {
    const before = mcp.directAnswers;
    await call('whoami', {});
    expect(mcp.directAnswers).toBe(before + 1);
    await call('no_such_tool', {});
    await call('whoami', {}, { accept: 'application/json' });
    expect(mcp.directAnswers).toBe(before + 1);
  });
});
