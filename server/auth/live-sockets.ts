import type { Env } from '../env';

/**
 * Open WebSocket connections (MCP over WebSocket at /mcp) authenticated with a credential must not outlive it.
 * Every place that ends credentials tells the user's socket hub (adapters/mcp-sockets.ts, one Durable Object per
 * ChittyID) which ones ended, and the hub closes their sockets at once with close code 4401 and the reason.
 * Expiry, and endings that are not announced, are caught by the hub's own periodic re-check.
 */
export type SocketEnding =
  | {
      /** Credential ids that ended (API key ids, session ids, OAuth grant ids), or 'all' when the account itself was disabled. */
      credentials: string[] | 'all';
      /** The close reason the client sees, e.g. "credential revoked". */
      reason: string;
    }
  /** Credentials ended whose ids the caller does not have (e.g. all sessions but one): every socket is authenticated again now. */
  | { recheck: true };

export const SOCKET_HUB_ORIGIN = 'https://mcp-sockets';
export const END_PATH = '/end';

export const socketHubOf = (env: Env, chittyId: string) => env.MCP_SOCKETS.get(env.MCP_SOCKETS.idFromName(chittyId));

/**
 * Closes the user's sockets opened with those credentials; how many were closed. Awaited, so when a revocation
 * answers, its sockets are closed. A failure is logged, never thrown: the credential is already ended in D1, each
 * frame is authenticated again, and the hub's periodic re-check closes the socket within one heartbeat.
 */
export async function endSockets(env: Env, chittyId: string, ending: SocketEnding): Promise<number> {
  if ('credentials' in ending && Array.isArray(ending.credentials) && ending.credentials.length === 0) return 0;
  try {
    const res = await socketHubOf(env, chittyId).fetch(`${SOCKET_HUB_ORIGIN}${END_PATH}`, { method: 'POST', body: JSON.stringify(ending) });
    return ((await res.json()) as { closed: number }).closed;
  } catch (error) {
    console.error('ending MCP sockets failed', error);
    return 0;
  }
}
