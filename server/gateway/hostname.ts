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

/** The upstream domain a request's host names, or null when it is not an encoded gateway host. */
export function domainOfHost(host: string, gatewayDomain: string | undefined): string | null {
  if (!gatewayDomain) return null;
  const hostname = host.toLowerCase().replace(/:\d+$/, '');
  const suffix = `${ENCODED_SUFFIX}.${gatewayDomain.toLowerCase()}`;
  if (!hostname.endsWith(suffix)) return null;
  const label = hostname.slice(0, -suffix.length);
  if (!label || label.includes('.')) return null;
  const domain = base32Decode(label);
  return domain && UPSTREAM_HOST.test(domain) ? domain : null;
}

/** An upstream domain, with a port when the upstream is not on its scheme's default port. */
export const UPSTREAM_HOST = /^[a-z0-9-]+(\.[a-z0-9-]+)*(:\d{1,5})?$/;
