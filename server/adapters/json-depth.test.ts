import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, apiKey, callTool, ORIGIN, type Caller } from '../../test/workers/helpers';
import { MAX_JSON_DEPTH } from '../../contract/schemas';

/**
 * Free-form JSON nested far deeper than any real document: each door parses it (JSON.parse has no depth limit)
 * and must refuse it with a 400 naming the field, before any recursive code (the RPC deserializer, the sync
 * merge's canonical form) can exhaust the stack. Sent as raw bodies, so no client library walks it first.
 */
const deep = (depth: number) => '{"a":'.repeat(depth) + '{}' + '}'.repeat(depth);
const DEPTH = 30_000;

let root: Caller;
let key: string;
beforeAll(async () => {
  root = await admin();
  key = await apiKey(root);
});

const post = (path: string, body: string, method = 'POST') =>
  SELF.fetch(`${ORIGIN}${path}`, { method, headers: { authorization: `Bearer ${root.token}`, 'content-type': 'application/json' }, body });

describe(`JSON nested ${DEPTH} levels deep`, () => {
  it('is a 400 naming the document on REST (sync.push)', async () => {
    const res = await post('/v1/sync/state/deep-test', `{"base_revision":0,"document":${deep(DEPTH)}}`, 'PUT');
    const body = (await res.json()) as { message: string };
    expect(res.status, JSON.stringify(body)).toBe(400);
    expect(body.message).toContain('document');
    expect(body.message).toContain(`${MAX_JSON_DEPTH} levels`);
  });

  it('is a 400 naming the claims on REST (jwt.generate)', async () => {
    const res = await post('/v1/jwt', `{"claims":${deep(DEPTH)}}`);
    const body = (await res.json()) as { message: string };
    expect(res.status, JSON.stringify(body)).toBe(400);
    expect(body.message).toContain('claims');
  });

  it('is a 400 on RPC, whose deserializer never sees the depth', async () => {
    const res = await post('/rpc/jwt/generate', `{"json":{"claims":${deep(DEPTH)}}}`);
    const text = await res.text();
    expect(res.status, text.slice(0, 500)).toBe(400);
    expect(text).toContain('claims');
  });

  it('is a tool error on MCP', async () => {
    const res = await SELF.fetch(`${ORIGIN}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
      body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"generate_jwt","arguments":{"claims":${deep(DEPTH)}}}}`,
    });
    const text = await res.text();
    expect(res.status, text.slice(0, 500)).toBe(200);
    const body = JSON.parse(text);
    expect(body.result?.isError, text.slice(0, 500)).toBe(true);
    expect(body.result.content[0].text).toMatch(/^BAD_REQUEST \(400\): .*claims/);
  });

  it(`is accepted at ${MAX_JSON_DEPTH} levels`, async () => {
    const res = await callTool('generate_jwt', { claims: JSON.parse(deep(MAX_JSON_DEPTH - 1)) }, key);
    expect(res.body.result.isError ?? false, JSON.stringify(res.body).slice(0, 500)).toBe(false);
  });
});
