import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../env';

/**
 * Live sync updates: one Durable Object per user (named by ChittyID) holds that user's open
 * `GET /v1/sync/stream` connections and fans events out to them. A change is written to D1 first and
 * published here after; a device that was offline catches up with a pull (the stream is a nudge, the
 * change log is the truth). The object keeps nothing in storage: after a restart the devices reconnect.
 */
export type SyncEvent =
  | { type: 'state_changed'; server_id: string; revision: number; cursor: string; device_id: string | null; fields: string[] }
  | { type: 'force_sync'; device_id: string | null }
  | { type: 'device_removed'; device_id: string }
  | { type: 'session_terminated'; session_id: string; device_id: string | null };

export interface Publication {
  event: SyncEvent;
  /** Streams to end after the event: those of a removed device, or opened with an ended session. */
  close?: { device_id?: string; session_ids?: string[] };
}

interface Stream {
  id: number;
  device: string | null;
  session: string | null;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  heartbeat: ReturnType<typeof setInterval>;
}

const encoder = new TextEncoder();
const DEFAULT_HEARTBEAT_MS = 25_000;

export class SyncHub extends DurableObject<Env> {
  #streams = new Map<number, Stream>();
  #next = 0;

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/stream') return this.#open(url, request.signal);
    if (url.pathname === '/publish' && request.method === 'POST') {
      const { event, close } = (await request.json()) as Publication;
      return Response.json({ delivered: await this.#publish(event, close) });
    }
    return new Response('not found', { status: 404 });
  }

  #open(url: URL, signal: AbortSignal): Response {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const id = ++this.#next;
    const writer = writable.getWriter();
    const interval = Math.max(50, Number(this.env.SYNC_HEARTBEAT_MS ?? DEFAULT_HEARTBEAT_MS) || DEFAULT_HEARTBEAT_MS);
    const stream: Stream = {
      id,
      device: url.searchParams.get('device'),
      session: url.searchParams.get('session'),
      writer,
      // A comment line keeps proxies and clients from timing the connection out (HTML, server-sent events §9.2.6).
      heartbeat: setInterval(() => void this.#write(stream, ': keep-alive\n\n'), interval),
    };
    this.#streams.set(id, stream);
    signal.addEventListener('abort', () => this.#drop(stream));
    // `retry` tells EventSource how long to wait before reconnecting; `ready` says the stream is live.
    void this.#write(stream, `retry: 3000\nevent: ready\ndata: ${JSON.stringify({ device_id: stream.device })}\n\n`);
    return new Response(readable, { headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' } });
  }

  async #publish(event: SyncEvent, close: Publication['close']): Promise<number> {
    const frame = `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
    const results = await Promise.all([...this.#streams.values()].map((s) => this.#write(s, frame)));
    for (const s of [...this.#streams.values()]) {
      if ((close?.device_id && s.device === close.device_id) || (s.session && close?.session_ids?.includes(s.session))) await this.#drop(s);
    }
    return results.filter(Boolean).length;
  }

  async #write(stream: Stream, text: string): Promise<boolean> {
    try {
      await stream.writer.write(encoder.encode(text));
      return true;
    } catch {
      await this.#drop(stream); // the client went away
      return false;
    }
  }

  async #drop(stream: Stream): Promise<void> {
    if (!this.#streams.delete(stream.id)) return;
    clearInterval(stream.heartbeat);
    await stream.writer.close().catch(() => {});
  }
}

const hubOf = (env: Env, chittyId: string) => env.SYNC_HUB.get(env.SYNC_HUB.idFromName(chittyId));

/**
 * Sends an event to the user's open streams; how many received it. A failure to publish is logged, never
 * thrown: the change is already in D1, and devices catch up with a pull.
 */
export async function publish(env: Env, chittyId: string, publication: Publication): Promise<number> {
  try {
    const res = await hubOf(env, chittyId).fetch('https://sync-hub/publish', { method: 'POST', body: JSON.stringify(publication) });
    return ((await res.json()) as { delivered: number }).delivered;
  } catch (error) {
    console.error('sync publish failed', error);
    return 0;
  }
}

/** Opens a stream for one of the user's devices (or none) and one credential's session (or none). */
export function openStream(env: Env, chittyId: string, o: { deviceId: string | null; sessionId: string | null; signal: AbortSignal }): Promise<Response> {
  const url = new URL('https://sync-hub/stream');
  if (o.deviceId) url.searchParams.set('device', o.deviceId);
  if (o.sessionId) url.searchParams.set('session', o.sessionId);
  return hubOf(env, chittyId).fetch(url, { signal: o.signal });
}
