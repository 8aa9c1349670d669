/**
 * Server-sent events as they pass through the gateway, one complete event at a time (HTML Living Standard,
 * "Server-sent events" §9.2.5/§9.2.6: lines end in CRLF, LF or CR; a blank line ends an event; `data` lines
 * join with LF; lines starting with ':' are comments). Each event is handed to `map` as soon as it is complete
 * and whatever it returns is sent on; nothing is buffered beyond the event being read.
 */
export interface SseEvent {
  /** The `event` field; absent means `message`. */
  event?: string;
  data: string;
  /** Every other line as received (id, retry, comments), kept in order. */
  rest: string[];
}

export function parseEvent(block: string): SseEvent | null {
  let event: string | undefined;
  const data: string[] = [];
  const rest: string[] = [];
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else rest.push(line);
  }
  return data.length === 0 && event === undefined ? null : { event, data: data.join('\n'), rest };
}

export function formatEvent(e: SseEvent): string {
  return [...e.rest, ...(e.event !== undefined ? [`event: ${e.event}`] : []), ...e.data.split('\n').map((l) => `data: ${l}`)].join('\n') + '\n\n';
}

/**
 * `map` answers the text to send for one event (possibly rewritten), '' to drop it, or null to end the stream
 * there (the upstream's stream is cancelled).
 */
export function mapSseEvents(body: ReadableStream<Uint8Array>, map: (e: SseEvent) => Promise<string | null> | string | null): ReadableStream<Uint8Array> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let buffer = '';
  let ended = false;
  const emit = async (block: string, controller: TransformStreamDefaultController<Uint8Array>) => {
    if (ended) return;
    const parsed = parseEvent(block);
    const out = parsed ? await map(parsed) : `${block}\n\n`;
    if (out === null) {
      ended = true;
      controller.terminate();
    } else if (out) controller.enqueue(encoder.encode(out));
  };
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      async transform(chunk, controller) {
        // A CR at the end of a chunk may be half of a CRLF: keep it until the next chunk decides.
        buffer += decoder.decode(chunk, { stream: true });
        const held = buffer.endsWith('\r') ? '\r' : '';
        let text = (held ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, '\n');
        let end: number;
        while ((end = text.indexOf('\n\n')) >= 0) {
          await emit(text.slice(0, end), controller);
          text = text.slice(end + 2);
        }
        buffer = text + held;
      },
      async flush(controller) {
        const text = buffer.replace(/\r\n?/g, '\n').replace(/\n+$/, '');
        if (text) await emit(text, controller);
      },
    }),
  );
}
