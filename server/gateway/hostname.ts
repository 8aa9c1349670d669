/**
 * Hostname routing (seed 003): `{base32(upstream domain)}-enc.{GATEWAY_DOMAIN}`, with RFC 4648 base32 in
 * lowercase and without padding, so the encoded domain is a valid DNS label: mcp.atlassian.com →
 * nvrxaltborwgc43tnfqw4ltdn5wq-enc.gateway.example.com. An upstream on another port than its scheme's
 * default is named with it (`mcp.example.com:8443`), so two upstreams on one host stay apart. Pure functions.
 */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
export const ENCODED_SUFFIX = '-enc';

export function base32Encode(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export function base32Decode(encoded: string): string | null {
  let bits = 0;
  let value = 0;
  const bytes: number[] = [];
  for (const ch of encoded) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return null;
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(new Uint8Array(bytes));
  } catch {
    return null;
  }
}

/** A DNS label holds 63 characters: the longest domain that fits is 36 characters. */
export const MAX_ENCODED_DOMAIN = 36;

export function gatewayHost(domain: string, gatewayDomain: string): string {
  return `${base32Encode(domain.toLowerCase())}${ENCODED_SUFFIX}.${gatewayDomain}`;
}

/**
 * The origin of a hostname route: the issuer's scheme and port (the Worker serves its gateway hosts where it
 * serves itself: 443 when deployed, 8787 under `npm run dev`), so the URL can be followed as it is.
 */
export function gatewayOrigin(issuer: string, domain: string, gatewayDomain: string): string {
  const { protocol, port } = new URL(issuer);
  return `${protocol}//${gatewayHost(domain, gatewayDomain)}${port ? `:${port}` : ''}`;
}

/** The upstream domain a request's host names, or null when it is not an encoded gateway host. */
export function domainOfHost(host: string, gatewayDomain: string | undefined): string | null {
  if (!gatewayDomain) return null;
  const hostname = host.toLowerCase().replace(/:\d+$/, '');
  const suffix = `${ENCODED_SUFFIX}.${gatewayDomain.toLowerCase()}`;
  if (!hostname.endsWith(suffix)) return null;
  return decodeLabel(hostname.slice(0, -suffix.length));
}

/** The upstream domain an encoded label (`{base32}-enc` without the suffix) names, or null. */
function decodeLabel(label: string): string | null {
  if (!label || label.includes('.')) return null;
  const domain = base32Decode(label);
  return domain && UPSTREAM_HOST.test(domain) ? domain : null;
}

/**
 * What a request's host is to the gateway:
 * - `route`: an encoded host under GATEWAY_DOMAIN, naming an upstream domain;
 * - `not_encoded`: another name under GATEWAY_DOMAIN (or GATEWAY_DOMAIN itself) that is not the issuer's host;
 *   it names no upstream, and must not fall through to ChittyAuth's own endpoints;
 * - `other_domain`: an encoded first label on a domain that is not GATEWAY_DOMAIN (or with GATEWAY_DOMAIN unset):
 *   meant as a hostname route that is not configured here;
 * - null: any other host (the issuer's own, or a name this Worker serves as itself).
 */
export type HostKind = { kind: 'route'; domain: string } | { kind: 'not_encoded'; host: string } | { kind: 'other_domain'; host: string; domain: string } | null;

export function gatewayHostKind(host: string, gatewayDomain: string | undefined, issuer: string): HostKind {
  const hostname = host.toLowerCase().replace(/:\d+$/, '');
  if (hostname === new URL(issuer).hostname.toLowerCase()) return null;
  const gateway = gatewayDomain?.toLowerCase();
  if (gateway && (hostname === gateway || hostname.endsWith(`.${gateway}`))) {
    const domain = domainOfHost(host, gatewayDomain);
    return domain ? { kind: 'route', domain } : { kind: 'not_encoded', host: hostname };
  }
  const first = hostname.split('.')[0]!;
  const domain = first.endsWith(ENCODED_SUFFIX) ? decodeLabel(first.slice(0, -ENCODED_SUFFIX.length)) : null;
  return domain ? { kind: 'other_domain', host: hostname, domain } : null;
}

/** An upstream domain, with a port when the upstream is not on its scheme's default port. */
export const UPSTREAM_HOST = /^[a-z0-9-]+(\.[a-z0-9-]+)*(:\d{1,5})?$/;
