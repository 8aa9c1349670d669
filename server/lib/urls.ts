/**
 * URL rules shared by client registration, Client ID Metadata Documents and (later) the registry:
 * what counts as loopback, and which addresses are never fetched (SSRF).
 */
export const isLoopbackHost = (hostname: string) => hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);

/** IPv4/IPv6 literals in private, link-local, loopback, CGNAT, multicast or reserved ranges. */
export function isPrivateAddress(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return (
      a === 0 || a === 10 || a === 127 || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 198 && (b === 18 || b === 19)) || a >= 224
    );
  }
  if (h.includes(':')) {
    return h === '::' || h === '::1' || h.startsWith('fc') || h.startsWith('fd') || h.startsWith('fe80') || h.startsWith('::ffff:') || h.startsWith('ff');
  }
  return h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.local') || h.endsWith('.internal') || !h.includes('.');
}

export type UrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

/**
 * An address we may fetch: https to a public host; in development also http(s) to loopback.
 * (Workers cannot resolve DNS themselves; Cloudflare's fetch refuses private destinations in production.)
 */
export function checkFetchableUrl(raw: string, development: boolean): UrlCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'not a URL' };
  }
  if (url.username || url.password) return { ok: false, reason: 'credentials in URL' };
  if (development && isLoopbackHost(url.hostname) && (url.protocol === 'http:' || url.protocol === 'https:')) return { ok: true, url };
  if (url.protocol !== 'https:') return { ok: false, reason: 'only https URLs are allowed' };
  if (isPrivateAddress(url.hostname)) return { ok: false, reason: 'private, loopback or internal addresses are not allowed' };
  return { ok: true, url };
}

/** Reads at most `limit` bytes of a body as text; more is an error (no unbounded buffering). */
export async function readLimited(res: Response, limit: number): Promise<string> {
  return new TextDecoder().decode(await readLimitedBytes(res, limit));
}

export async function readLimitedBytes(res: Response, limit: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > limit) throw new Error(`response larger than ${limit} bytes`);
  const reader = res.body?.getReader();
  if (!reader) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new Error(`response larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.byteLength;
  }
  return all;
}

export type FetchedJson = { ok: true; body: unknown; response: Response } | { ok: false; reason: string };

/**
 * A small JSON document from a URL already passed by checkFetchableUrl: GET with no redirects followed (a
 * redirect could lead to a private address), bounded in time and size, 200 only. The reason a fetch failed
 * reads after "could not be fetched: " or stands alone ("did not return JSON").
 */
export async function fetchSmallJson(url: URL, limits: { timeoutMs: number; maxBytes: number }): Promise<FetchedJson> {
  let text: string;
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(limits.timeoutMs) });
    if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    text = await readLimited(response, limits.maxBytes);
  } catch (error) {
    return { ok: false, reason: `could not be fetched: ${error instanceof Error ? error.message : 'error'}` };
  }
  try {
    return { ok: true, body: JSON.parse(text), response };
  } catch {
    return { ok: false, reason: 'is not JSON' };
  }
}

/**
 * RFC 8414 §3.1 / RFC 9728 §3.1: a well-known URI for an identifier with a path puts `/.well-known/{name}`
 * between the origin and the path (`https://a.example/mcp` -> `https://a.example/.well-known/{name}/mcp`).
 */
export function wellKnownUrl(identifier: string, name: string): string {
  const u = new URL(identifier);
  return `${u.origin}/.well-known/${name}${u.pathname === '/' ? '' : u.pathname}`;
}
