import type { Env } from '../env';
import { guardedFetch } from '../lib/outbound';
import { canonicalResource, metadataUrlOf } from './direct';

const METADATA_TIMEOUT_MS = 5_000;
const METADATA_MAX_BYTES = 16 * 1024;

/**
 * Proof that whoever claims a resource URL controls it: the resource server's own RFC 9728 metadata, fetched
 * like any user-given URL (https to public addresses, no redirects, bounded), must name exactly this resource
 * (RFC 9728 §3.3: the `resource` value MUST be identical to the one the metadata URL was derived from) and
 * ChittyAuth among its `authorization_servers`. Without it, anyone who registers a server first could mint
 * tokens for someone else's URL. Returns why not, or null.
 */
export async function proveControl(env: Env, resource: string): Promise<string | null> {
  const url = metadataUrlOf(resource);
  const fetchGuarded = guardedFetch(env, { timeoutMs: METADATA_TIMEOUT_MS, maxBytes: METADATA_MAX_BYTES });
  let doc: { resource?: unknown; authorization_servers?: unknown };
  try {
    const res = await fetchGuarded(url, { headers: { accept: 'application/json' } });
    if (res.status !== 200) {
      await res.body?.cancel();
      return `its protected resource metadata ${url} answered HTTP ${res.status}; serve it (the resource-server kit does) before protecting the server directly`;
    }
    doc = (await res.json()) as typeof doc;
  } catch (error) {
    return `its protected resource metadata ${url} could not be read: ${fetchGuarded.refused?.message ?? (error instanceof Error ? error.message : 'error')}`;
  }
  const named = typeof doc.resource === 'string' ? canonicalResource(doc.resource) : null;
  if (!named?.ok || named.resource !== resource) return `its protected resource metadata ${url} names the resource ${JSON.stringify(doc.resource)}, not ${resource}`;
  if (!Array.isArray(doc.authorization_servers) || !doc.authorization_servers.includes(env.ISSUER)) {
    return `its protected resource metadata ${url} does not list ${env.ISSUER} in authorization_servers`;
  }
  return null;
}
