import { authenticate, bearerToken } from '../auth/authenticate';
import { SOCKET_HUB_ORIGIN, socketHubOf } from '../auth/live-sockets';
import type { RequestContext } from '../context';
import { SUBPROTOCOL, upgradeCredential } from '../gateway/websocket';
import { unauthorizedChallenge } from '../oauth/challenge';
import { refuseBeforeAuth } from './mcp';
import { CONNECT_PATH, SOCKET_INFO_HEADER, type SocketInfo } from './mcp-sockets';

/**
 * `GET /mcp` with `Upgrade: websocket` and subprotocol `mcp`: MCP over WebSocket. Everything is decided before
 * the upgrade, as an HTTP answer, never as a socket that opens and closes: the same Origin and URL-token refusals
 * as the HTTP door (refuseBeforeAuth), then the credential (the Authorization header, or a `bearer.<token>`
 * subprotocol for browsers, which cannot set headers) and, without a valid one, the HTTP door's 401 challenge
 * (RFC 9728 §5.1). The socket itself lives in the user's hub (mcp-sockets.ts).
 */
export async function handleMcpWebSocket(request: Request, context: RequestContext): Promise<Response> {
  const { env } = context;
  const refused = refuseBeforeAuth(request, env);
  if (refused) return refused;
  // RFC 6455 §4.1: the opening handshake is a GET.
  if (request.method !== 'GET') return problem(400, 'invalid_request', 'A WebSocket handshake is a GET with Upgrade: websocket');
  const { offered, authorization } = upgradeCredential(request);
  if (!offered.includes(SUBPROTOCOL)) return problem(400, 'invalid_request', `Offer the WebSocket subprotocol "${SUBPROTOCOL}"`);
  const auth = await authenticate(env, context.db, authorization, context.audience, context.waitUntil);
  if (!auth.ok) return unauthorizedChallenge(env, auth.reason);
  const { principal } = auth;
  const info: SocketInfo = {
    token: bearerToken(authorization)!,
    chittyId: principal.chittyId,
    credentialId: principal.credentialId,
    grantId: principal.grantId ?? null,
    expiresAt: principal.expiresAt ?? null,
    origin: request.headers.get('origin'),
    ip: context.ip,
    userAgent: context.userAgent?.slice(0, 200) ?? null,
    protocolVersion: null,
    lastSeen: Date.now(),
    ping: null,
    pings: 0,
  };
  return socketHubOf(env, principal.chittyId).fetch(`${SOCKET_HUB_ORIGIN}${CONNECT_PATH}`, {
    headers: { upgrade: 'websocket', [SOCKET_INFO_HEADER]: JSON.stringify(info) },
  });
}

const problem = (status: number, error: string, message: string) => new Response(JSON.stringify({ error, message }), { status, headers: { 'content-type': 'application/json' } });
