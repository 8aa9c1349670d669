import { SELF } from 'cloudflare:test';
import { expect } from 'vitest';
import { ORIGIN, rest, type Caller } from './helpers';

/** One of a user's devices: registered, and signed in on it (its own session, bound to it). */
export interface Device {
  deviceId: string;
  token: string;
  sessionId: string;
}

export async function device(owner: Caller & { username: string; password: string }, name: string, type = 'claude_desktop'): Promise<Device> {
  const made = await rest('POST', '/v1/devices', { name, type, bind_session: false }, owner.token);
  expect(made.status).toBe(201);
  const signIn = await rest('POST', '/v1/accounts/sign-in', { username: owner.username, password: owner.password, device_id: made.body.device_id });
  expect(signIn.status).toBe(200);
  return { deviceId: made.body.device_id, token: signIn.body.access_token, sessionId: signIn.body.session_id };
}

export const push = (token: string, serverId: string, base_revision: number, document: Record<string, unknown>) =>
  rest('PUT', `/v1/sync/state/${serverId}`, { base_revision, document }, token);

export const pull = (token: string, cursor?: string) => rest('GET', `/v1/sync/changes${cursor ? `?cursor=${cursor}` : ''}`, undefined, token);

/** An open GET /v1/sync/stream, read event by event. */
export interface EventStream {
  response: Response;
  /** The next event (after `ready`), or null when the stream ended; fails after `ms`. */
  next(ms?: number): Promise<{ event: string; data: any } | null>;
  close(): Promise<void>;
  /** Keep-alive comments seen so far. */
  keepAlives(): number;
}

export async function openStream(token: string, query = ''): Promise<EventStream> {
  const controller = new AbortController();
  const response = await SELF.fetch(`${ORIGIN}/v1/sync/stream${query}`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: controller.signal });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let keepAlives = 0;
  const next = async (ms = 2000): Promise<{ event: string; data: any } | null> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = frame.split('\n');
        const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
        const data = lines.find((l) => l.startsWith('data: '))?.slice(6);
        if (!event) {
          if (lines.some((l) => l.startsWith(': keep-alive'))) keepAlives++;
          continue;
        }
        return { event, data: data ? JSON.parse(data) : null };
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no event on the sync stream in time');
      const chunk = await Promise.race([reader.read(), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), left))]);
      if (chunk === 'timeout') throw new Error('no event on the sync stream in time');
      if (chunk.done) return null;
      buffer += decoder.decode(chunk.value, { stream: true });
    }
  };
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  expect((await next())?.event).toBe('ready');
  return {
    response,
    next,
    keepAlives: () => keepAlives,
    close: async () => {
      controller.abort();
      await reader.cancel().catch(() => {});
    },
  };
}
