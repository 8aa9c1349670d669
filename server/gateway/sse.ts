/**
 * Server-sent events, filtered as they pass: each event is forwarded as soon as it is complete, and a
 * tools/list result inside one has the tools the user may not call removed. Nothing is buffered beyond
 * the event being read.
 */
export type ToolFilter = (toolName: string) => boolean;

type ToolsResult = { tools?: { name: string }[]; cacheScope?: unknown; ttlMs?: unknown };

/**
 * A tools/list result cut down to the tools this user may call. The list now depends on the user, so a
 * 2026-07-28 cache hint the upstream gave for everyone (`cacheScope: "public"`) becomes `"private"`
 * (MCP 2026-07-28 "Caching": a result that varies by caller must not be shared).
 */
export function filterToolsResult(result: ToolsResult, allow: ToolFilter): void {
  if (!Array.isArray(result.tools)) return;
  result.tools = result.tools.filter((t) => allow(t.name));
  if ('cacheScope' in result || 'ttlMs' in result) result.cacheScope = 'private';
}

function filterEvent(event: string, allow: ToolFilter): string {
  const lines = event.split('\n');
  const dataLines = lines.filter((l) => l.startsWith('data:'));
  if (dataLines.length === 0) return event;
  const data = dataLines.map((l) => l.slice(5).replace(/^ /, '')).join('\n');
  let parsed: { result?: ToolsResult };
  try {
    parsed = JSON.parse(data);
  } catch {
    return event;
  }
  if (!Array.isArray(parsed.result?.tools)) return event;
  filterToolsResult(parsed.result!, allow);
  return [...lines.filter((l) => !l.startsWith('data:')), `data: ${JSON.stringify(parsed)}`].join('\n');
}

export function filterToolsInSse(body: ReadableStream<Uint8Array>, allow: ToolFilter): ReadableStream<Uint8Array> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let buffer = '';
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n/g, '\n');
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          controller.enqueue(encoder.encode(`${filterEvent(buffer.slice(0, end), allow)}\n\n`));
          buffer = buffer.slice(end + 2);
        }
      },
      flush(controller) {
        if (buffer) controller.enqueue(encoder.encode(filterEvent(buffer, allow)));
      },
    }),
  );
}
