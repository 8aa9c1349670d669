import { encodeHeaderValue, isObject, mcpNameField, SERVED_VERSIONS } from '../adapters/mcp-wire';
import { formatEvent, mapSseEvents, parseEvent } from './sse-events';

/**
 * Protocol bridging at the gateway: a client and an upstream that speak different MCP generations still talk.
 *
 * - A 2025 client (initialize handshake, Mcp-Session-Id) in front of an upstream that serves only 2026-07-28
 *   ("to modern"): the gateway answers `initialize` itself from the upstream's `server/discover`, keeps what the
 *   handshake declared (version, client capabilities, client info) in the session id it hands out (sealed by the
 *   proxy to the user and route, so no state is stored), and sends every later request as a 2026-07-28 request:
 *   the `_meta` envelope, `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and the tool's `Mcp-Param-*` headers
 *   (2026-07-28 Basic "_meta", Streamable HTTP "Standard Headers" and "Schema Extension").
 * - A 2026-07-28 client in front of an upstream that serves only 2025 ("to legacy"): the gateway holds one
 *   upstream session per user and declared client capabilities (initialize + notifications/initialized, 2025
 *   Lifecycle), answers `server/discover` from its initialize result, and marks every result with the
 *   `resultType` (and list results with the cache hints) a 2026-07-28 client requires.
 *
 * When both sides share a generation the request passes through untouched. What each upstream speaks is
 * learned once per isolate: a `server/discover` probe (a 2025 server refuses it) for 2026 clients, the upstream's
 * own -32022 refusal of a 2025 `initialize` for 2025 clients (so dual-era upstreams keep full 2025 sessions).
 *
 * What cannot cross: a 2026 `input_required` result (multi round-trip input) to a 2025 client becomes a clear
 * error; a 2025 upstream's requests to the client (sampling, elicitation, roots) during a 2026 client's call are
 * answered -32601 on the client's behalf, since a 2026 client has no channel to receive them; batches.
 */
export const MODERN = '2026-07-28';
const LEGACY_VERSIONS: readonly string[] = SERVED_VERSIONS.filter((v) => v !== MODERN);
const LATEST_LEGACY = LEGACY_VERSIONS[0]!;
const META_VERSION = 'io.modelcontextprotocol/protocolVersion';
const META_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';
const META_CLIENT = 'io.modelcontextprotocol/clientInfo';
const META_SERVER = 'io.modelcontextprotocol/serverInfo';
/** The list results 2026-07-28 gives cache hints on (Basic "Caching"). */
const CACHEABLE = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read', 'server/discover']);
/** Marks a gateway-held session id as bridge state rather than an upstream's session. */
const BRIDGE_SESSION = 'bridge:';
/** Session ids travel in a header: what the handshake declared is dropped beyond this size (capabilities become {}). */
const MAX_SESSION_STATE = 4096;
const ERA_TTL_MS = 10 * 60_000;
const SESSION_TTL_MS = 5 * 60_000;
const MAX_SESSIONS = 1000;

type Rpc = { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown };

export interface Hop {
  method: string;
  headers: Headers;
  body?: string;
}

export interface RelayContext {
  serverId: string;
  chittyId: string;
  /** The route's registered name, for messages. */
  serverName: string;
  request: Request;
  /** The parsed POST body when it is one message; null for a batch or a body-less request. */
  message: Rpc | null;
  body?: string;
  /** What the client's Mcp-Session-Id unsealed to: an upstream session id, or bridge state. */
  session: string | null;
  /** The client's headers the gateway passes on (routing, version, content negotiation): no credential, no session. */
  forwarded: Headers;
  /** Sends one HTTP request to the upstream with the upstream's credential for this user. */
  send(hop: Hop): Promise<Response>;
  background(p: Promise<unknown>): void;
}

/** What the 2025 handshake declared, carried in the bridge session. */
interface Declared {
  v: string;
  cc: Record<string, unknown>;
  ci?: Record<string, unknown>;
}

const eras = new Map<string, { legacyOnly: boolean; rejectsLegacy: boolean; until: number }>();

function era(serverId: string) {
  const known = eras.get(serverId);
  return known && known.until > Date.now() ? known : undefined;
}

function learn(serverId: string, fact: { legacyOnly?: boolean; rejectsLegacy?: boolean }) {
  const known = era(serverId);
  eras.set(serverId, { legacyOnly: fact.legacyOnly ?? known?.legacyOnly ?? false, rejectsLegacy: fact.rejectsLegacy ?? known?.rejectsLegacy ?? false, until: Date.now() + ERA_TTL_MS });
}

/** Forgets what upstreams speak and the sessions held with them (tests; a server re-registered elsewhere). */
export function forgetBridgeState(serverId?: string) {
  if (serverId === undefined) {
    eras.clear();
    sessions.clear();
    paramHeaders.clear();
    return;
  }
  eras.delete(serverId);
  paramHeaders.delete(serverId);
  for (const key of sessions.keys()) if (key.startsWith(`${serverId}\n`)) sessions.delete(key);
}

/** A session id the bridge holds for a 2025 client (no upstream session behind it). */
export const isBridgeSession = (session: string) => session.startsWith(BRIDGE_SESSION);

const metaOf = (m: Rpc | null): Record<string, unknown> => (isObject(m?.params) && isObject(m.params._meta) ? m.params._meta : {});

/** A 2026-07-28 client: its MCP-Protocol-Version header, or the `_meta` envelope it MUST send on every request. */
export const isModernClient = (request: Request, m: Rpc | null) => request.headers.get('mcp-protocol-version') === MODERN || metaOf(m)[META_VERSION] === MODERN;

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const rpcError = (id: unknown, code: number, message: string) => json({ jsonrpc: '2.0', id: id ?? null, error: { code, message } });
const isRequest = (m: Rpc) => m.id !== undefined && m.id !== null && typeof m.method === 'string';

/** The first JSON-RPC response in an answer, JSON or SSE (for the short answers the bridge reads itself). */
async function readAnswer(res: Response): Promise<Rpc | null> {
  const text = await res.text();
  const pick = (v: unknown): Rpc | null => (isObject(v) && ('result' in v || 'error' in v) ? (v as Rpc) : null);
  if ((res.headers.get('content-type') ?? '').includes('text/event-stream')) {
    for (const block of text.replace(/\r\n?/g, '\n').split('\n\n')) {
      const event = parseEvent(block);
      if (!event) continue;
      try {
        const found = pick(JSON.parse(event.data));
        if (found) return found;
      } catch {
        // not JSON: an event the bridge does not read
      }
    }
    return null;
  }
  try {
    return pick(JSON.parse(text));
  } catch {
    return null;
  }
}

/** Rewrites each JSON-RPC message of an answer, JSON or SSE; `fix` answers the message to send, or null to drop it. */
async function rewriteAnswer(res: Response, fix: (m: Rpc) => Rpc | null): Promise<Response> {
  const headers = new Headers(res.headers);
  headers.delete('content-length');
  headers.delete('mcp-protocol-version');
  const type = res.headers.get('content-type') ?? '';
  if (!res.body) return res;
  if (type.includes('text/event-stream')) {
    const body = mapSseEvents(res.body, (event) => {
      let m: unknown;
      try {
        m = JSON.parse(event.data);
      } catch {
        return formatEvent(event);
      }
      if (!isObject(m)) return formatEvent(event);
      const fixed = fix(m as Rpc);
      return fixed ? formatEvent({ ...event, data: JSON.stringify(fixed) }) : '';
    });
    return new Response(body, { status: res.status, headers });
  }
  if (type.includes('application/json')) {
    const text = await res.text();
    let m: unknown;
    try {
      m = JSON.parse(text);
    } catch {
      return new Response(text, { status: res.status, headers });
    }
    const fixed = isObject(m) ? fix(m as Rpc) : (m as Rpc);
    return new Response(fixed ? JSON.stringify(fixed) : null, { status: fixed ? res.status : 202, headers });
  }
  return new Response(res.body, { status: res.status, headers });
}

const passThrough = (ctx: RelayContext) => {
  const headers = new Headers(ctx.forwarded);
  if (ctx.session) headers.set('mcp-session-id', ctx.session);
  return ctx.send({ method: ctx.request.method, headers, body: ctx.body });
};

/** Relays one client request to the upstream, bridging protocol generations where client and upstream differ. */
export async function relay(ctx: RelayContext): Promise<Response> {
  if (ctx.session && isBridgeSession(ctx.session)) return toModern(ctx, JSON.parse(ctx.session.slice(BRIDGE_SESSION.length)) as Declared);
  if (isModernClient(ctx.request, ctx.message)) return modernClient(ctx);
  // A 2025 client. An upstream known to refuse 2025 gets the bridge; otherwise the request goes as it came.
  if (!ctx.session && ctx.message && era(ctx.serverId)?.rejectsLegacy) return toModern(ctx, declaredBy(ctx.message));
  const res = await passThrough(ctx);
  if (ctx.session || !ctx.message || res.status !== 400 || !(res.headers.get('content-type') ?? '').includes('json')) return res;
  // MCP 2026-07-28 Versioning: a server answers a version it does not support with -32022 and what it supports.
  const answer = (await res.clone().json().catch(() => null)) as Rpc | null;
  const error = isObject(answer?.error) ? answer.error : null;
  const supported = isObject(error?.data) && Array.isArray(error.data.supported) ? (error.data.supported as unknown[]) : [];
  if (error?.code !== -32022 || !supported.includes(MODERN)) return res;
  await res.body?.cancel();
  learn(ctx.serverId, { rejectsLegacy: true });
  return toModern(ctx, declaredBy(ctx.message));
}

// ---- 2025 client → 2026-07-28 upstream -------------------------------------------------------------------

/** What an initialize declared; a 2025 request without the handshake (a stateless client) declares nothing. */
function declaredBy(m: Rpc): Declared {
  const p = m.method === 'initialize' && isObject(m.params) ? m.params : {};
  const requested = typeof p.protocolVersion === 'string' ? p.protocolVersion : LATEST_LEGACY;
  // 2025-11-25 Lifecycle "Version Negotiation": the server answers the client's version when it supports it,
  // otherwise the latest it supports.
  return { v: LEGACY_VERSIONS.includes(requested) ? requested : LATEST_LEGACY, cc: isObject(p.capabilities) ? p.capabilities : {}, ...(isObject(p.clientInfo) ? { ci: p.clientInfo } : {}) };
}

function modernEnvelope(declared: Declared, meta: Record<string, unknown> = {}) {
  return { ...meta, [META_VERSION]: MODERN, [META_CAPABILITIES]: declared.cc, ...(declared.ci ? { [META_CLIENT]: declared.ci } : {}) };
}

function modernHop(ctx: RelayContext, m: Rpc, declared: Declared): Hop {
  const params = isObject(m.params) ? m.params : {};
  const body = { jsonrpc: '2.0', id: m.id, method: m.method, params: { ...params, _meta: modernEnvelope(declared, isObject(params._meta) ? params._meta : {}) } };
  const headers = new Headers({ 'content-type': 'application/json', accept: ctx.forwarded.get('accept') ?? 'application/json, text/event-stream', 'mcp-protocol-version': MODERN, 'mcp-method': String(m.method) });
  const field = mcpNameField(m.method);
  const named = field ? params[field] : undefined;
  if (typeof named === 'string') headers.set('mcp-name', encodeHeaderValue(named));
  if (m.method === 'tools/call' && typeof params.name === 'string' && isObject(params.arguments)) {
    for (const [name, value] of toolParamHeaders(ctx.serverId, params.name, params.arguments)) headers.set(name, value);
  }
  return { method: 'POST', headers, body: JSON.stringify(body) };
}

async function toModern(ctx: RelayContext, declared: Declared): Promise<Response> {
  const { request, message: m } = ctx;
  // 2025 Streamable HTTP: a server that offers no stream on GET answers 405; DELETE ends the session, which
  // lives only in the client's session id here.
  if (request.method === 'GET') return json({ error: 'method_not_allowed', message: `${ctx.serverName} speaks MCP 2026-07-28, which has no GET stream; send requests with POST` }, 405, { allow: 'POST, DELETE' });
  if (request.method === 'DELETE') return new Response(null, { status: 204 });
  if (!m) return rpcError(null, -32600, `Batches cannot be bridged to ${ctx.serverName}, which speaks MCP 2026-07-28: send one message per request`);
  // Notifications of the 2025 handshake and session (initialized, cancelled, roots changed) have no 2026 meaning.
  if (!isRequest(m)) return new Response(null, { status: 202 });
  if (m.method === 'initialize') return bridgeInitialize(ctx, m);
  // Removed in 2026-07-28: ping and logging/setLevel are answered here, as the 2025 protocol defines them.
  if (m.method === 'ping' || m.method === 'logging/setLevel') return json({ jsonrpc: '2.0', id: m.id, result: {} });
  if (m.method === 'tools/call' && !paramHeaders.has(ctx.serverId)) await learnToolsOf(ctx, declared);
  const res = await ctx.send(modernHop(ctx, m, declared));
  if (!res.ok) return res;
  return rewriteAnswer(res, (answer) => {
    if (!isObject(answer.result)) return answer;
    if (answer.result.resultType === 'input_required') {
      return { jsonrpc: '2.0', id: answer.id, error: { code: -32603, message: `${ctx.serverName} asked for more input (a 2026-07-28 input_required result), which cannot be relayed to an MCP 2025 client; use a 2026-07-28 client for this call` } };
    }
    if (m.method === 'tools/list') learnToolParams(ctx.serverId, answer.result.tools);
    return answer;
  });
}

async function bridgeInitialize(ctx: RelayContext, m: Rpc): Promise<Response> {
  let declared = declaredBy(m);
  const discover = await ctx.send(modernHop(ctx, { jsonrpc: '2.0', id: m.id, method: 'server/discover', params: {} }, declared));
  if (!discover.ok) return discover;
  const answer = await readAnswer(discover);
  const found = isObject(answer?.result) ? answer.result : null;
  if (!found) {
    const error = isObject(answer?.error) ? answer.error : {};
    return rpcError(m.id, typeof error.code === 'number' ? error.code : -32603, `${ctx.serverName} did not answer server/discover: ${typeof error.message === 'string' ? error.message : 'no result'}`);
  }
  const meta = isObject(found._meta) ? found._meta : {};
  const result = {
    protocolVersion: declared.v,
    capabilities: isObject(found.capabilities) ? found.capabilities : {},
    serverInfo: isObject(meta[META_SERVER]) ? meta[META_SERVER] : { name: ctx.serverName, version: 'unknown' },
    ...(typeof found.instructions === 'string' ? { instructions: found.instructions } : {}),
  };
  let state = JSON.stringify(declared);
  if (state.length > MAX_SESSION_STATE) state = JSON.stringify((declared = { v: declared.v, cc: {} }));
  // The proxy seals this session id to the user and route before the client sees it.
  return json({ jsonrpc: '2.0', id: m.id, result }, 200, { 'mcp-session-id': `${BRIDGE_SESSION}${state}` });
}

/** Per server, the tools' `x-mcp-header` parameters (2026-07-28 Streamable HTTP "Schema Extension"), from its tools/list. */
const paramHeaders = new Map<string, Map<string, { path: string[]; header: string }[]>>();

function learnToolParams(serverId: string, tools: unknown) {
  if (!Array.isArray(tools)) return;
  const byTool = new Map<string, { path: string[]; header: string }[]>();
  for (const tool of tools) {
    if (!isObject(tool) || typeof tool.name !== 'string') continue;
    const found: { path: string[]; header: string }[] = [];
    // Only properties reachable through a chain of `properties` may carry the annotation.
    const visit = (schema: unknown, path: string[]) => {
      if (!isObject(schema)) return;
      if (path.length > 0 && typeof schema['x-mcp-header'] === 'string') found.push({ path, header: schema['x-mcp-header'] });
      if (isObject(schema.properties)) for (const [key, child] of Object.entries(schema.properties)) visit(child, [...path, key]);
    };
    visit(tool.inputSchema, []);
    if (found.length > 0) byTool.set(tool.name, found);
  }
  paramHeaders.set(serverId, byTool);
}

/** A tools/call before any tools/list: the tools' header parameters are read first (every page, at most 20). */
async function learnToolsOf(ctx: RelayContext, declared: Declared) {
  const tools: unknown[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const res = await ctx.send(modernHop(ctx, { jsonrpc: '2.0', id: `chittyauth-bridge-tools-${page}`, method: 'tools/list', params: cursor ? { cursor } : {} }, declared));
    if (!res.ok) return void (await res.body?.cancel());
    const answer = await readAnswer(res);
    const result = isObject(answer?.result) ? answer.result : null;
    if (!result || !Array.isArray(result.tools)) return;
    tools.push(...result.tools);
    if (typeof result.nextCursor !== 'string') break;
    cursor = result.nextCursor;
  }
  learnToolParams(ctx.serverId, tools);
}

function toolParamHeaders(serverId: string, tool: string, args: Record<string, unknown>): [string, string][] {
  const out: [string, string][] = [];
  for (const { path, header } of paramHeaders.get(serverId)?.get(tool) ?? []) {
    let value: unknown = args;
    for (const key of path) value = isObject(value) ? value[key] : undefined;
    // Type conversion: strings as they are, integers in decimal, booleans lowercase; absent values send no header.
    const text = typeof value === 'string' ? value : typeof value === 'boolean' ? String(value) : typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined;
    if (text !== undefined) out.push([`mcp-param-${header.toLowerCase()}`, encodeHeaderValue(text)]);
  }
  return out;
}

// ---- 2026-07-28 client → 2025 upstream -------------------------------------------------------------------

async function modernClient(ctx: RelayContext): Promise<Response> {
  const known = era(ctx.serverId);
  if (known) return known.legacyOnly ? toLegacy(ctx) : passThrough(ctx);
  // Unknown upstream: every 2026-07-28 server answers server/discover; a 2025 server refuses it (400, 404, 405
  // or a JSON-RPC error), without having acted on anything.
  const isDiscover = ctx.message?.method === 'server/discover';
  const probe = isDiscover ? await passThrough(ctx) : await ctx.send(modernHop(ctx, { jsonrpc: '2.0', id: 'chittyauth-bridge-probe', method: 'server/discover', params: {} }, declaredFromMeta(ctx.message)));
  // The credential was refused, or the upstream is in trouble: the proxy handles and reports those.
  if (probe.status === 401 || probe.status === 403 || probe.status >= 500) return probe;
  const answer = probe.ok ? await readAnswer(probe.clone()) : null;
  const supported = isObject(answer?.result) && Array.isArray(answer.result.supportedVersions) ? (answer.result.supportedVersions as unknown[]) : [];
  learn(ctx.serverId, { legacyOnly: !supported.includes(MODERN) });
  if (supported.includes(MODERN)) {
    if (isDiscover) return probe;
    await probe.body?.cancel();
    return passThrough(ctx);
  }
  await probe.body?.cancel();
  return toLegacy(ctx);
}

function declaredFromMeta(m: Rpc | null): Declared {
  const meta = metaOf(m);
  return { v: MODERN, cc: isObject(meta[META_CAPABILITIES]) ? meta[META_CAPABILITIES] : {}, ...(isObject(meta[META_CLIENT]) ? { ci: meta[META_CLIENT] } : {}) };
}

interface LegacySession {
  id: string | null;
  version: string;
  init: Record<string, unknown>;
  until: number;
}

/** Upstream sessions the bridge holds, per route, user and declared capabilities (isolate memory). */
const sessions = new Map<string, LegacySession>();

function legacyHeaders(ctx: RelayContext, session: LegacySession | null): Headers {
  const headers = new Headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' });
  if (session) {
    headers.set('mcp-protocol-version', session.version);
    if (session.id) headers.set('mcp-session-id', session.id);
  }
  const lastEvent = ctx.forwarded.get('last-event-id');
  if (lastEvent) headers.set('last-event-id', lastEvent);
  return headers;
}

/** The upstream session for this user and declaration: held, or opened with the 2025 handshake. */
async function legacySession(ctx: RelayContext, declared: Declared, fresh = false): Promise<LegacySession | Response> {
  const key = `${ctx.serverId}\n${ctx.chittyId}\n${JSON.stringify([declared.cc, declared.ci ?? null])}`;
  const held = sessions.get(key);
  if (held && held.until > Date.now() && !fresh) {
    held.until = Date.now() + SESSION_TTL_MS;
    return held;
  }
  sessions.delete(key);
  const clientInfo = declared.ci ?? { name: 'chittyauth-gateway', version: '1' };
  const res = await ctx.send({ method: 'POST', headers: legacyHeaders(ctx, null), body: JSON.stringify({ jsonrpc: '2.0', id: 'chittyauth-bridge-initialize', method: 'initialize', params: { protocolVersion: LATEST_LEGACY, capabilities: declared.cc, clientInfo } }) });
  if (res.status === 401 || res.status === 403 || res.status >= 500) return res;
  const answer = await readAnswer(res);
  const init = isObject(answer?.result) ? answer.result : null;
  const version = typeof init?.protocolVersion === 'string' ? init.protocolVersion : '';
  if (!init || !LEGACY_VERSIONS.includes(version)) {
    const error = isObject(answer?.error) && typeof answer.error.message === 'string' ? answer.error.message : `HTTP ${res.status}`;
    return rpcError(ctx.message?.id, -32603, `${ctx.serverName} speaks neither MCP 2026-07-28 nor a 2025 version the gateway can bridge (initialize: ${error})`);
  }
  const session: LegacySession = { id: res.headers.get('mcp-session-id'), version, init, until: Date.now() + SESSION_TTL_MS };
  const initialized = await ctx.send({ method: 'POST', headers: legacyHeaders(ctx, session), body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  await initialized.body?.cancel();
  if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
  sessions.set(key, session);
  return session;
}

/** Strips the 2026 envelope (a 2025 server knows none of it); the rest of `_meta` (progressToken…) stays. */
function legacyBody(m: Rpc): string {
  if (!isObject(m.params)) return JSON.stringify(m);
  const { _meta, ...params } = m.params;
  const meta = isObject(_meta) ? Object.fromEntries(Object.entries(_meta).filter(([k]) => ![META_VERSION, META_CAPABILITIES, META_CLIENT].includes(k))) : {};
  return JSON.stringify({ ...m, params: Object.keys(meta).length > 0 ? { ...params, _meta: meta } : params });
}

async function toLegacy(ctx: RelayContext): Promise<Response> {
  const m = ctx.message;
  if (!m) return rpcError(null, -32600, 'MCP 2026-07-28 has no batches: send one message per request');
  const declared = declaredFromMeta(m);
  let session = await legacySession(ctx, declared);
  if (session instanceof Response) return session;
  if (m.method === 'server/discover') return discoverAnswer(m.id, session);
  const send = (s: LegacySession) => ctx.send({ method: 'POST', headers: legacyHeaders(ctx, s), body: legacyBody(m) });
  let res = await send(session);
  if (res.status === 404 && session.id) {
    // 2025 Streamable HTTP "Session Management": 404 means the session ended; the request was not processed.
    await res.body?.cancel();
    session = await legacySession(ctx, declared, true);
    if (session instanceof Response) return session;
    res = await send(session);
  }
  if (!res.ok || !isRequest(m)) return res;
  const held = session;
  return rewriteAnswer(res, (answer) => {
    if (typeof answer.method === 'string' && answer.id !== undefined && answer.id !== null) {
      // A request from the upstream (sampling, elicitation, roots/list): a 2026-07-28 client cannot receive it.
      const refusal = { jsonrpc: '2.0', id: answer.id, error: { code: -32601, message: `${answer.method} cannot be relayed to this client (MCP 2026-07-28 has no server-to-client requests)` } };
      ctx.background(ctx.send({ method: 'POST', headers: legacyHeaders(ctx, held), body: JSON.stringify(refusal) }).then((r) => r.body?.cancel()));
      return null;
    }
    return answer.id === m.id && isObject(answer.result) ? { ...answer, result: modernResult(String(m.method), answer.result) } : answer;
  });
}

/** A 2025 result as a 2026-07-28 client requires it (Basic "Result types", "Caching"). */
function modernResult(method: string, result: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...result, resultType: typeof result.resultType === 'string' ? result.resultType : 'complete' };
  // The gateway cannot know how long an upstream's list stays true, and lists are filtered per user.
  if (CACHEABLE.has(method)) Object.assign(out, { ttlMs: 0, cacheScope: 'private' });
  return out;
}

function discoverAnswer(id: unknown, session: LegacySession): Response {
  const { init } = session;
  const result = modernResult('server/discover', {
    supportedVersions: [MODERN, ...LEGACY_VERSIONS],
    capabilities: isObject(init.capabilities) ? init.capabilities : {},
    ...(typeof init.instructions === 'string' ? { instructions: init.instructions } : {}),
    _meta: { [META_SERVER]: isObject(init.serverInfo) ? init.serverInfo : { name: 'unknown', version: 'unknown' } },
  });
  return json({ jsonrpc: '2.0', id, result });
}
