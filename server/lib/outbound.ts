import type { Env } from '../env';
import { checkFetchableUrl, isPrivateAddress } from './urls';

/**
 * Fetching URLs that users give us (the registry's MCP servers) without becoming an SSRF proxy:
 * https only (loopback too in development), no private or internal address — literal or behind a DNS name
 * (resolved over DNS-over-HTTPS, because a Worker cannot resolve names itself) — no redirects, and
 * bounded time and size. Every hop is checked again, so a name that later resolves elsewhere is caught.
 */
export const DOH_ENDPOINT = 'https://cloudflare-dns.com/dns-query';
const DNS_TIMEOUT_MS = 3_000;

export class OutboundRefused extends Error {}

const isDevelopment = (env: Env) => env.ENVIRONMENT === 'development' || env.ENVIRONMENT === 'test';
const isIpLiteral = (host: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith('[');

async function resolve(name: string, type: 'A' | 'AAAA'): Promise<string[]> {
  const url = `${DOH_ENDPOINT}?name=${encodeURIComponent(name)}&type=${type}`;
  const res = await fetch(url, { headers: { accept: 'application/dns-json' }, signal: AbortSignal.timeout(DNS_TIMEOUT_MS) });
  if (!res.ok) throw new OutboundRefused(`could not resolve ${name} (DNS answered ${res.status})`);
  const body = (await res.json()) as { Status?: number; Answer?: { type: number; data: string }[] };
  const wanted = type === 'A' ? 1 : 28;
  return (body.Answer ?? []).filter((a) => a.type === wanted).map((a) => a.data);
}

/** Throws OutboundRefused with a reason a person can act on; returns the URL when it may be fetched. */
export async function assertPublicUrl(env: Env, raw: string): Promise<URL> {
  const check = checkFetchableUrl(raw, isDevelopment(env));
  if (!check.ok) throw new OutboundRefused(`${raw}: ${check.reason}`);
  const host = check.url.hostname;
  if (isDevelopment(env) && (host === 'localhost' || host.startsWith('127.') || host === '[::1]')) return check.url;
  if (!isIpLiteral(host)) {
    let addresses: string[];
    try {
      addresses = [...(await resolve(host, 'A')), ...(await resolve(host, 'AAAA'))];
    } catch (error) {
      throw error instanceof OutboundRefused ? error : new OutboundRefused(`could not resolve ${host}`);
    }
    if (addresses.length === 0) throw new OutboundRefused(`${host} does not resolve`);
    const internal = addresses.find((a) => isPrivateAddress(a.includes(':') ? `[${a}]` : a));
    if (internal) throw new OutboundRefused(`${host} resolves to a private or internal address (${internal})`);
  }
  return check.url;
}

export type GuardedFetch = typeof fetch & { refused: OutboundRefused | null };

/**
 * A fetch for untrusted URLs: checks every request, refuses redirects, caps time and response size.
 * The first refusal is kept on `.refused`, because clients that use this fetch may wrap the error.
 */
export function guardedFetch(env: Env, o: { timeoutMs: number; maxBytes: number }): GuardedFetch {
  const refuse = (message: string) => {
    const error = new OutboundRefused(message);
    guarded.refused ??= error;
    return error;
  };
  const guarded = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    try {
      await assertPublicUrl(env, request.url);
    } catch (error) {
      throw error instanceof OutboundRefused ? refuse(error.message) : error;
    }
    const res = await fetch(request, { redirect: 'manual', signal: init?.signal ?? AbortSignal.timeout(o.timeoutMs) });
    if (res.status >= 300 && res.status < 400) throw refuse(`${request.url} redirects (${res.status}) to ${res.headers.get('location') ?? 'elsewhere'}; redirects are not followed`);
    if (!res.body) return res;
    // A body framed by Content-Length (and not compressed, which workerd would inflate) cannot outgrow it:
    // no need to count its bytes through a stream.
    const length = res.headers.get('content-length');
    const encoding = res.headers.get('content-encoding');
    if (length !== null && /^\d+$/.test(length) && Number(length) <= o.maxBytes && (!encoding || encoding === 'identity')) return res;
    let size = 0;
    const limited = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          size += chunk.byteLength;
          if (size > o.maxBytes) controller.error(refuse(`response larger than ${o.maxBytes} bytes`));
          else controller.enqueue(chunk);
        },
      }),
    );
    return new Response(limited, res);
  }) as GuardedFetch;
  guarded.refused = null;
  return guarded;
}
