/**
 * JSON-RPC checks the MCP SDK does not make, applied to every /mcp request before it reaches the SDK, in
 * either protocol era. Each refusal is a JSON-RPC error that keeps the request's `id` and names what is wrong.
 */

/** Every protocol version /mcp serves, newest first (the 2025 ones through the initialize handshake). */
export const SERVED_VERSIONS = ['2026-07-28', '2025-11-25', '2025-06-18', '2025-03-26'] as const;

/**
 * JSON-RPC batches exist only in MCP 2025-03-26 (removed in 2025-06-18, "Removed support for JSON-RPC
 * batching"). A 2025-03-26 client sends no MCP-Protocol-Version header (the header came in 2025-06-18, whose
 * transport says to assume 2025-03-26 without it), so a batch is accepted only without the header or with that
 * version, and then of at most this many messages.
 */
export const MAX_BATCH = 10;

/** A tool result whose JSON exceeds this many bytes is refused as a tool error rather than sent. */
export const MAX_TOOL_RESULT_BYTES = 1 << 20;

type Message = { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };

const idOf = (m: unknown): string | number | null => {
  const id = m && typeof m === 'object' ? (m as Message).id : undefined;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
};

function rpcError(status: number, id: string | number | null, code: number, message: string, data?: unknown): Response {
  return new Response(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message, ...(data === undefined ? {} : { data }) } }), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

/** -32602 for a tools/call whose params the SDK would reject with a raw schema dump: which field, and what it is. */
function invalidParams(m: Message): string | null {
  if (m.method !== 'tools/call') return null;
  if (!isObject(m.params)) return `Invalid params: "params" must be an object with "name" and "arguments", not ${kind(m.params)}`;
  const { name, arguments: args } = m.params;
  if (typeof name !== 'string' || name === '') return `Invalid params: "params.name" must be the tool's name (a non-empty string), not ${kind(name)}`;
  if (args !== undefined && !isObject(args)) return `Invalid params: "params.arguments" must be an object of the tool's arguments, not ${kind(args)}`;
  return null;
}

/**
 * The body field the Mcp-Name header mirrors, for the methods that have one (MCP 2026-07-28 Streamable HTTP
 * "Standard Headers": tools/call and prompts/get name, resources/read uri, the tasks methods' taskId).
 */
const NAMED: Record<string, string> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri', 'tasks/get': 'taskId', 'tasks/update': 'taskId', 'tasks/cancel': 'taskId' };
export const mcpNameField = (method: unknown): string | undefined => (typeof method === 'string' && Object.hasOwn(NAMED, method) ? NAMED[method] : undefined);

/**
 * MCP 2026-07-28 Streamable HTTP, value encoding of Mcp-Name and Mcp-Param-*: a value that is not safe printable
 * ASCII (non-ASCII, control characters, leading or trailing space, empty, or itself shaped like the sentinel) is
 * sent as `=?base64?<Base64 of its UTF-8>?=`; anything else as it is.
 */
const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;
export function encodeHeaderValue(value: string): string {
  const plain = value.length > 0 && value === value.trim() && /^[\t\x20-\x7e]*$/.test(value) && !(value.startsWith('=?base64?') && value.endsWith('?='));
  if (plain) return value;
  let binary = '';
  for (const byte of new TextEncoder().encode(value)) binary += String.fromCharCode(byte);
  return `=?base64?${btoa(binary)}?=`;
}

/** The value an encoded header carries, or undefined when its Base64 or UTF-8 is not valid. */
export function decodeHeaderValue(value: string): string | undefined {
  if (!(value.startsWith('=?base64?') && value.endsWith('?='))) return value;
  const b64 = SENTINEL.exec(value)?.[1];
  if (b64 === undefined || b64.length % 4 !== 0) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
}

/**
 * Mcp-Method / Mcp-Name, when a request carries them, must agree with its body: intermediaries route and
 * authorize on them (MCP 2026-07-28 Streamable HTTP: a mismatch is HTTP 400 with -32020). The SDK checks
 * 2026-07-28 requests; a 2025 request that sends the headers is held to them too rather than run as its body says.
 */
function headerMismatch(request: Request, m: Message): string | null {
  const method = request.headers.get('mcp-method');
  if (method !== null && method !== m.method) return `the Mcp-Method header names "${method}" but the body's method is "${String(m.method)}"`;
  const name = request.headers.get('mcp-name');
  const field = mcpNameField(m.method);
  if (name === null || field === undefined) return null;
  const named = isObject(m.params) ? m.params[field] : undefined;
  if (decodeHeaderValue(name) !== named) return `the Mcp-Name header names "${name}" but the body's params.${field} is ${typeof named === 'string' ? `"${named}"` : 'missing'}`;
  return null;
}

/** The refusal for a parsed /mcp body, or null when it may go to the SDK. */
export function refuseMessage(request: Request, body: unknown): Response | null {
  if (Array.isArray(body)) {
    // JSON-RPC 2.0 §6: an empty array is one Invalid Request error.
    if (body.length === 0) return rpcError(400, null, -32600, 'Invalid Request: an empty batch');
    const version = request.headers.get('mcp-protocol-version');
    if (version !== null && version !== '2025-03-26') {
      return rpcError(400, null, -32600, `Invalid Request: JSON-RPC batches are not part of MCP ${version} (removed in 2025-06-18); send one message per request`);
    }
    if (body.length > MAX_BATCH) return rpcError(400, null, -32600, `Invalid Request: a batch may hold at most ${MAX_BATCH} messages (this one holds ${body.length})`);
    for (const m of body) {
      const invalid = isObject(m) ? invalidParams(m) : null;
      if (invalid) return rpcError(200, idOf(m), -32602, invalid);
    }
    return null;
  }
  if (!isObject(body)) return null;
  const mismatch = headerMismatch(request, body);
  if (mismatch) return rpcError(400, idOf(body), -32020, `Bad Request: the request headers and body disagree: ${mismatch}`);
  const invalid = invalidParams(body);
  return invalid ? rpcError(200, idOf(body), -32602, invalid) : null;
}

/** CORS preflight: the MCP headers browser clients send, including any Mcp-Param-* header a tool declares. */
const ALLOWED = new Set(['authorization', 'content-type', 'accept', 'mcp-protocol-version', 'mcp-session-id', 'last-event-id', 'mcp-method', 'mcp-name']);
export function allowedRequestHeaders(requested: string | null): string {
  const extra = (requested ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => /^mcp-param-[a-z0-9-]+$/.test(h));
  return [...ALLOWED, ...new Set(extra)].join(', ');
}
