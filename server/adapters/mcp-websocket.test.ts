import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { resourceToken } from '../../test/workers/gateway-helpers';
import { admin, apiKey, auditHead, auditSince, mcpSessionToken, ORIGIN, rest, user, type Caller } from '../../test/workers/helpers';
import { endSockets, SOCKET_HUB_ORIGIN, socketHubOf } from '../auth/live-sockets';
import type { Env } from '../env';
import { CONNECT_PATH, SOCKET_INFO_HEADER, type SocketInfo } from './mcp-sockets';
import { TestSocket } from '../../test/workers/ws-client';

/**
 * MCP over WebSocket at /mcp (mcp-websocket.ts, mcp-sockets.ts): refused before the upgrade as the HTTP door
 * refuses, the same tools, guard, audit and errors over the socket, and closed when its credential ends.
 * vitest.config.ts sets a 0.4 s heartbeat.
 */
const MCP = `${ORIGIN}/mcp`;
const envelope = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'ws-test', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};


const upgrade = (headers: Record<string, string>, url = MCP) => SELF.fetch(url, { headers: { upgrade: 'websocket', 'sec-websocket-protocol': 'mcp', ...headers } });

async function connect(token: string, answerPings: boolean | 'with an error' = true) {
  const res = await upgrade({ authorization: `Bearer ${token}` });
  expect(res.status).toBe(101);
  expect(res.headers.get('sec-websocket-protocol')).toBe('mcp');
  return new TestSocket(res.webSocket!, answerPings);
}

/** An API key with its id. */
async function keyFor(caller: Caller, body: Record<string, unknown> = {}) {
  const res = await rest('POST', '/v1/api-keys', { name: 'ws key', ...body }, caller.token);
  expect(res.status).toBe(201);
  return { key: res.body.api_key as string, id: res.body.key_id as string };
}

let root: Caller;
let rootKey: string;
beforeAll(async () => {
  root = await admin();
  rootKey = await apiKey(root);
});

describe('GET /mcp with Upgrade: websocket, before the upgrade', () => {
  it('answers the HTTP door’s 401 challenge, with no socket, without a credential or with a bad one', async () => {
    const none = await upgrade({});
    expect(none.status).toBe(401);
    expect(none.webSocket).toBeNull();
    expect(none.headers.get('www-authenticate')).toContain(`resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource/mcp"`);
    expect(none.headers.get('www-authenticate')).not.toContain('error=');
    const http = await SELF.fetch(MCP, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
    expect(none.headers.get('www-authenticate')).toBe(http.headers.get('www-authenticate'));

    for (const token of ['chitty_not-a-real-key', 'not.a.jwt']) {
      const bad = await upgrade({ authorization: `Bearer ${token}` });
      expect(bad.status).toBe(401);
      expect(bad.webSocket).toBeNull();
      expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
    // A sign-in token is for the API, not for the MCP resource (RFC 8707): refused here as on the HTTP door.
    const wrongAudience = await upgrade({ authorization: `Bearer ${root.token}` });
    expect(wrongAudience.status).toBe(401);
    const bySubprotocol = await upgrade({ 'sec-websocket-protocol': 'mcp, bearer.chitty_not-a-real-key' });
    expect(bySubprotocol.status).toBe(401);
  });

  it('refuses a revoked API key before the upgrade', async () => {
    const { key, id } = await keyFor(root);
    expect((await rest('DELETE', `/v1/api-keys/${id}`, undefined, root.token)).status).toBe(200);
    const res = await upgrade({ authorization: `Bearer ${key}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('refuses a token in the URL, a foreign Origin and a handshake without the mcp subprotocol, even with a valid credential', async () => {
    const inUrl = await upgrade({}, `${MCP}?access_token=${rootKey}`);
    expect(inUrl.status).toBe(400);
    expect(inUrl.webSocket).toBeNull();
    expect(inUrl.headers.get('www-authenticate')).toContain('error="invalid_request"');
    expect(inUrl.headers.get('www-authenticate')).toContain('query string');
    const withBoth = await upgrade({ authorization: `Bearer ${rootKey}` }, `${MCP}?access_token=${rootKey}`);
    expect(withBoth.status).toBe(400);

    const foreign = await upgrade({ authorization: `Bearer ${rootKey}`, origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    expect(foreign.webSocket).toBeNull();
    expect((await foreign.json()) as object).toMatchObject({ error: 'forbidden_origin' });

    const noProtocol = await SELF.fetch(MCP, { headers: { upgrade: 'websocket', authorization: `Bearer ${rootKey}` } });
    expect(noProtocol.status).toBe(400);
    expect(await noProtocol.text()).toContain('subprotocol');
  });

  it('accepts the issuer’s own Origin, and a bearer.<token> subprotocol (browsers), answering with mcp only', async () => {
    const same = await upgrade({ authorization: `Bearer ${rootKey}`, origin: ORIGIN });
    expect(same.status).toBe(101);
    new TestSocket(same.webSocket!).ws.close(1000, 'done');
    const res = await upgrade({ 'sec-websocket-protocol': `mcp, bearer.${rootKey}` });
    expect(res.status).toBe(101);
    expect(res.headers.get('sec-websocket-protocol')).toBe('mcp');
    const s = new TestSocket(res.webSocket!);
    const list = await s.request(1, 'tools/list');
    expect(list.result.tools.length).toBeGreaterThan(0);
    s.ws.close(1000, 'done');
  });
});

describe('MCP over the socket', () => {
  it('serves a 2025 client: initialize, tools/list filtered by grants, a succeeding and a failing tools/call with the contract’s error', async () => {
    const someone = await user(['user']);
    const s = await connect(await apiKey(someone));
    await s.initialize('2025-06-18');
    const names = (await s.request(2, 'tools/list')).result.tools.map((t: { name: string }) => t.name);
    expect(names).toContain('whoami');
    expect(names).not.toContain('disable_account'); // an admin tool, hidden as on the HTTP door

    const me = await s.request(3, 'tools/call', { name: 'whoami', arguments: {} });
    expect(me.result.isError).toBeFalsy();
    expect(me.result.structuredContent).toMatchObject({ chitty_id: someone.chittyId, credential: 'api_key' });

    const missing = await s.request(4, 'tools/call', { name: 'get_account', arguments: { chitty_id: 'CHITTY-PEO-ZZZZZZZZZZ-ZZZ' } });
    expect(missing.result.isError).toBe(true);
    expect(missing.result.content[0].text).toMatch(/^(NOT_FOUND|FORBIDDEN) \(40[34]\)/);
    expect(missing.result._meta['cc.chitty/error']).toMatchObject({ code: expect.any(String), status: expect.any(Number) });

    // The same JSON-RPC refusals as the HTTP door: bad params (-32602), an unknown tool, a frame that is not JSON.
    expect((await s.request(5, 'tools/call', { name: 'whoami', arguments: [] })).error.code).toBe(-32602);
    expect((await s.request(6, 'tools/call', { name: 'no_such_tool', arguments: {} })).error.code).toBe(-32602);
    s.ws.send('not json');
    expect(await s.until(() => s.messages.find((m) => m.error?.code === -32700))).toBeTruthy();
    s.ws.close(1000, 'done');
  });

  it('serves a 2026-07-28 client: per-request _meta envelope, no initialize, the headers derived from the frame', async () => {
    const s = await connect(rootKey);
    const discover = await s.request(1, 'server/discover', { _meta: envelope });
    expect(discover.result.supportedVersions).toContain('2026-07-28');
    const list = await s.request(2, 'tools/list', { _meta: envelope });
    expect(list.result.tools.map((t: { name: string }) => t.name)).toContain('disable_account');
    const me = await s.request(3, 'tools/call', { name: 'whoami', arguments: {}, _meta: envelope });
    expect(me.result.structuredContent).toMatchObject({ chitty_id: root.chittyId });
    const unsupported = await s.request(4, 'tools/list', { _meta: { ...envelope, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } });
    expect(unsupported.error.code).toBe(-32022);
    // A name that is no plain header value travels Base64-encoded in the derived Mcp-Name: the tool is unknown, the headers agree.
    for (const [id, name] of [[5, 'ünïcode_tool'], [6, ' padded ']] as const) {
      const unknown = await s.request(id, 'tools/call', { name, arguments: {}, _meta: envelope });
      expect(unknown.error.code, JSON.stringify(unknown)).toBe(-32602);
      expect(unknown.error.message).toContain(name);
    }
    s.ws.close(1000, 'done');
  });

  it('audits a call over the socket as the HTTP door does (door mcp, the caller, the procedure)', async () => {
    const someone = await user(['user']);
    const s = await connect(await apiKey(someone));
    const before = await auditHead();
    const created = await s.request(1, 'tools/call', { name: 'generate_api_key', arguments: { name: 'made over ws' } });
    expect(created.result.isError).toBeFalsy();
    const events = await auditSince(before);
    expect(events).toContainEqual(expect.objectContaining({ actor: someone.chittyId, action: 'apiKeys.create', door: 'mcp', outcome: 'success', target: created.result.structuredContent.key_id }));
    s.ws.close(1000, 'done');
  });

  it('closes a binary frame with 1003', async () => {
    const s = await connect(rootKey);
    s.ws.send(new Uint8Array([1, 2, 3]));
    expect((await s.closed).code).toBe(1003);
  });
});

describe('the socket ends with its credential', () => {
  it('closes with 4401 within a second of its API key being revoked through /v1', async () => {
    const someone = await user(['user']);
    const { key, id } = await keyFor(someone);
    const s = await connect(key);
    const other = await connect(await apiKey(someone)); // the same user's other key stays connected
    expect((await s.request(1, 'tools/call', { name: 'whoami', arguments: {} })).result.isError).toBeFalsy();
    const before = await auditHead();
    const revokedAt = Date.now();
    expect((await rest('DELETE', `/v1/api-keys/${id}`, undefined, someone.token)).status).toBe(200);
    const closed = await s.closed;
    expect(closed.code).toBe(4401);
    expect(closed.reason).toBe('credential revoked');
    expect(closed.at - revokedAt).toBeLessThan(1000);
    // The revocation itself closed it (not the periodic re-check), and says so in its audit event.
    const revoke = (await auditSince(before)).find((e) => e.action === 'apiKeys.revoke');
    expect(JSON.parse(revoke!.detail)).toMatchObject({ sockets_closed: 1 });
    expect((await other.request(2, 'tools/call', { name: 'whoami', arguments: {} })).result.isError).toBeFalsy();
    other.ws.close(1000, 'done');
    // Reconnecting with the revoked key is refused before the upgrade.
    expect((await upgrade({ authorization: `Bearer ${key}` })).status).toBe(401);
  });

  it('refuses, in the hub, an upgrade with a credential it was told had ended (one another isolate’s cache still let through)', async () => {
    const someone = await user(['user']);
    const { key, id } = await keyFor(someone);
    const info: SocketInfo = { token: key, chittyId: someone.chittyId, credentialId: id, grantId: null, expiresAt: null, origin: null, ip: null, userAgent: null, protocolVersion: null, lastSeen: Date.now(), ping: null, pings: 0 };
    const hubConnect = () => socketHubOf(env as unknown as Env, someone.chittyId).fetch(`${SOCKET_HUB_ORIGIN}${CONNECT_PATH}`, { headers: { upgrade: 'websocket', [SOCKET_INFO_HEADER]: JSON.stringify(info) } });
    const accepted = await hubConnect();
    expect(accepted.status).toBe(101);
    const open = new TestSocket(accepted.webSocket!);
    expect(await endSockets(env as unknown as Env, someone.chittyId, { credentials: [id], reason: 'credential revoked' })).toBe(1);
    expect((await open.closed).code).toBe(4401);
    const refused = await hubConnect();
    expect(refused.status).toBe(401);
    expect(refused.webSocket).toBeNull();
    expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('closes when the socket revokes its own key with the revoke_api_key tool', async () => {
    const someone = await user(['user']);
    const { key, id } = await keyFor(someone);
    const s = await connect(key);
    s.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'revoke_api_key', arguments: { key_id: id } } }));
    const closed = await s.closed;
    expect(closed).toMatchObject({ code: 4401, reason: 'credential revoked' });
  });

  it('closes a session-bound socket when the session is revoked or the password is changed, and every socket of an account that is disabled', async () => {
    const someone = await user(['user']);
    const currentSession = async (token: string) => (await rest('GET', '/v1/sessions', undefined, token)).body.items.find((x: { current: boolean }) => x.current).session_id as string;
    const sessionId = await currentSession(someone.token);
    const bySession = await connect(await mcpSessionToken(someone.chittyId, sessionId));
    const byKey = await connect(await apiKey(someone));
    const before = await auditHead();
    expect((await rest('DELETE', `/v1/sessions/${sessionId}`, undefined, root.token)).status).toBe(200);
    expect(await bySession.closed).toMatchObject({ code: 4401, reason: 'credential revoked' });
    expect(JSON.parse((await auditSince(before)).find((e) => e.action === 'sessions.revoke')!.detail)).toMatchObject({ sockets_closed: 1 });

    // A password change ends every session (their ids unknown to it): the hub authenticates each socket again.
    const signIn = await rest('POST', '/v1/accounts/sign-in', { username: someone.username, password: someone.password });
    const second = await connect(await mcpSessionToken(someone.chittyId, await currentSession(signIn.body.access_token)));
    expect((await rest('PUT', `/v1/accounts/${someone.chittyId}/password`, { new_password: 'another long enough password' }, root.token)).status).toBe(200);
    expect(await second.closed).toMatchObject({ code: 4401, reason: 'credential revoked' });

    expect((await rest('POST', `/v1/accounts/${someone.chittyId}/disable`, {}, root.token)).status).toBe(200);
    expect(await byKey.closed).toMatchObject({ code: 4401, reason: 'account disabled' });
  });

  it('closes an OAuth socket when its grant is revoked: announced by grant id at once, through /v1 and through RFC 7009 revocation', async () => {
    const someone = await user(['user']);
    const gidOf = (token: string) => JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))).gid as string;
    const announced = await resourceToken(MCP, someone);
    const s = await connect(announced);
    expect((await s.request(1, 'tools/call', { name: 'whoami', arguments: {} })).result.structuredContent).toMatchObject({ credential: 'access_token' });
    // What a grant revocation announces: the grant's id closes every socket of its access tokens.
    expect(await endSockets(env as unknown as Env, someone.chittyId, { credentials: [gidOf(announced)], reason: 'credential revoked' })).toBe(1);
    expect(await s.closed).toMatchObject({ code: 4401, reason: 'credential revoked' });

    // DELETE /v1/oauth/grants/{id} announces the grant: the socket is closed when the call answers.
    const viaApi = await resourceToken(MCP, someone);
    const t = await connect(viaApi);
    const head = await auditHead();
    expect((await rest('DELETE', `/v1/oauth/grants/${gidOf(viaApi)}`, undefined, someone.token)).status).toBe(200);
    // Closed by the revocation itself (the hub reports it), not left to the periodic re-check.
    const event = (await auditSince(head)).find((e) => e.action === 'oauth.grants.revoke');
    expect(JSON.parse(event!.detail)).toMatchObject({ sockets_closed: 1 });
    expect(await t.closed).toMatchObject({ code: 4401, reason: 'credential revoked' });
  });

  it('closes with 4401 when the credential expires', async () => {
    const { key } = await keyFor(root, { expires_in: 1 });
    const s = await connect(key);
    const closed = await s.closed;
    expect(closed).toMatchObject({ code: 4401, reason: 'credential expired' });
  });
});

describe('heartbeat', () => {
  it('pings a silent client and closes with 4408 when it does not answer', async () => {
    const s = await connect(rootKey, false);
    const closed = await s.closed;
    expect(closed.code).toBe(4408);
    expect(s.pings).toEqual(['chittyauth-heartbeat-1']);
  });

  it.each([[true], ['with an error' as const]])('stays open while the client answers its pings (answer: %s)', async (answer) => {
    const s = await connect(rootKey, answer);
    while (s.pings.length < 3) await new Promise((r) => setTimeout(r, 100));
    expect(s.pings).toEqual(['chittyauth-heartbeat-1', 'chittyauth-heartbeat-2', 'chittyauth-heartbeat-3']);
    expect((await s.request(9, 'tools/list')).result.tools.length).toBeGreaterThan(0);
    s.ws.close(1000, 'done');
  });
});
