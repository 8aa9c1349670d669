/**
 * Cross-device sync against a real `wrangler dev`: state pushed from one device survives a restart of the
 * server (local D1 on disk), and a device that comes back pulls it, with a live stream working again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

describe('sync state across a wrangler dev restart', () => {
  it('is still there, at the same revision, and keeps merging', async () => {
    const alice = await server.account(['user']);
    const laptop = await server.rest('POST', '/v1/devices', { name: 'Laptop', type: 'claude_desktop' }, alice.token);
    expect(laptop.status).toBe(201);
    const pushed = await server.rest('PUT', '/v1/sync/state/notes', { base_revision: 0, document: { theme: 'dark', open: ['a.md'] } }, alice.token);
    expect(pushed.status).toBe(200);
    expect(pushed.body.revision).toBe(1);
    const key = await server.apiKey(alice);

    await server.restart();

    // The sign-in session, the API key, the device and the state all survived.
    expect((await server.rest('GET', '/v1/devices', undefined, alice.token)).body.items).toMatchObject([{ device_id: laptop.body.device_id, name: 'Laptop' }]);
    const state = await server.rest('GET', '/v1/sync/state/notes', undefined, key);
    expect(state.status).toBe(200);
    expect(state.body).toMatchObject({ revision: 1, document: { theme: 'dark', open: ['a.md'] }, updated_by_device: laptop.body.device_id });
    const pulled = await server.rest('GET', '/v1/sync/changes', undefined, key);
    expect(pulled.body.changes).toMatchObject([{ server_id: 'notes', revision: 1, fields: ['open', 'theme'] }]);

    // A live stream after the restart hears the next change.
    const controller = new AbortController();
    const stream = await fetch(`${server.url}/v1/sync/stream`, { headers: { authorization: `Bearer ${key}` }, signal: controller.signal });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    const merged = await server.rest('PUT', '/v1/sync/state/notes', { base_revision: 1, document: { theme: 'dark', open: ['a.md', 'b.md'] } }, alice.token);
    expect(merged.body.revision).toBe(2);
    let text = '';
    while (!text.includes('event: state_changed')) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += new TextDecoder().decode(chunk.value);
    }
    controller.abort();
    expect(text).toContain('"revision":2');
  });
});
