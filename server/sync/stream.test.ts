import { describe, expect, it } from 'vitest';
import { rest, user } from '../../test/workers/helpers';
import { device, openStream, pull, push } from '../../test/workers/sync-helpers';

const server = () => `live-${crypto.randomUUID().slice(0, 8)}`;

describe('GET /v1/sync/stream', () => {
  it('delivers a push from one device to the other’s open stream, and the same change to its next pull', async () => {
    const u = await user();
    const laptop = await device(u, 'Laptop');
    const phone = await device(u, 'Phone', 'mobile');
    const s = server();
    const cursor = (await pull(phone.token)).body.next_cursor;
    const stream = await openStream(phone.token);
    try {
      const pushed = await push(laptop.token, s, 0, { draft: 'hello' });
      expect(pushed.status).toBe(200);
      const event = await stream.next(1000);
      expect(event).toEqual({ event: 'state_changed', data: { type: 'state_changed', server_id: s, revision: 1, cursor: expect.any(String), device_id: laptop.deviceId, fields: ['draft'] } });
      const pulled = await pull(phone.token, cursor);
      expect(pulled.body.changes).toMatchObject([{ server_id: s, revision: 1, cursor: event!.data.cursor }]);
      expect(pulled.body.documents).toMatchObject([{ server_id: s, document: { draft: 'hello' } }]);
    } finally {
      await stream.close();
    }
  });

  it('sends force_sync and remote session termination live, and keeps the connection alive', async () => {
    const u = await user();
    const laptop = await device(u, 'Laptop');
    const phone = await device(u, 'Phone', 'mobile');
    const onLaptop = await openStream(laptop.token);
    const onPhone = await openStream(phone.token);
    try {
      expect((await rest('POST', '/v1/sync/force', { device_id: phone.deviceId }, laptop.token)).body).toEqual({ delivered: 2 });
      expect(await onPhone.next()).toEqual({ event: 'force_sync', data: { type: 'force_sync', device_id: phone.deviceId } });
      expect((await onLaptop.next())?.event).toBe('force_sync');

      // The laptop ends the phone's session: both hear it, and the phone's stream (opened with it) closes.
      expect((await rest('DELETE', `/v1/sessions/${phone.sessionId}`, undefined, laptop.token)).status).toBe(200);
      expect(await onPhone.next()).toEqual({ event: 'session_terminated', data: { type: 'session_terminated', session_id: phone.sessionId, device_id: phone.deviceId } });
      expect(await onPhone.next()).toBeNull();
      expect((await onLaptop.next())?.event).toBe('session_terminated');

      // Keep-alive comments (every SYNC_HEARTBEAT_MS, 200 ms in tests) while nothing happens.
      await expect(onLaptop.next(700)).rejects.toThrow('no event');
      expect(onLaptop.keepAlives()).toBeGreaterThan(0);
    } finally {
      await onLaptop.close();
      await onPhone.close();
    }
  });

  it('tells every device when one is removed, and closes the removed device’s stream', async () => {
    const u = await user();
    const laptop = await device(u, 'Laptop');
    const phone = await device(u, 'Phone', 'mobile');
    const onLaptop = await openStream(laptop.token);
    const onPhone = await openStream(phone.token);
    try {
      expect((await rest('DELETE', `/v1/devices/${phone.deviceId}`, undefined, laptop.token)).status).toBe(200);
      expect(await onPhone.next()).toEqual({ event: 'device_removed', data: { type: 'device_removed', device_id: phone.deviceId } });
      expect(await onPhone.next()).toBeNull();
      expect((await onLaptop.next())?.data).toEqual({ type: 'device_removed', device_id: phone.deviceId });
      // Its token cannot open a new stream.
      expect((await rest('GET', '/v1/sync/stream', undefined, phone.token)).status).toBe(401);
    } finally {
      await onLaptop.close();
      await onPhone.close();
    }
  });

  it('reaches only the same user’s devices, and refuses bad requests before streaming', async () => {
    const [alice, bob] = [await user(), await user()];
    const bobs = await openStream(bob.token);
    try {
      await push(alice.token, server(), 0, { a: 1 });
      await expect(bobs.next(500)).rejects.toThrow('no event');
    } finally {
      await bobs.close();
    }
    expect((await rest('GET', '/v1/sync/stream')).status).toBe(401);
    expect((await rest('GET', '/v1/sync/stream', undefined, 'not-a-token')).status).toBe(401);
    const foreign = (await rest('POST', '/v1/devices', { name: 'Bob', type: 'web', bind_session: false }, bob.token)).body.device_id;
    const wrong = await rest('GET', `/v1/sync/stream?device_id=${foreign}`, undefined, alice.token);
    expect(wrong.status).toBe(400);
    expect(wrong.body.message).toContain('device_id');
    expect((await rest('POST', '/v1/sync/stream', {}, alice.token)).status).toBe(405);
  });
});
