import type { AuthFailure } from '../auth/authenticate';
import type { Env } from '../env';
import { isDevelopment } from './clients';
import { resourceMetadataUrl, SCOPES_SUPPORTED } from './metadata';

/** Scopes that let an MCP client do everything the server offers (the 401 hint, MCP "Scope Selection Strategy"). */
export const MCP_CHALLENGE_SCOPE = 'mcp:read mcp:write';

/**
 * RFC 6750 §3 / RFC 9728 §5.1 challenge for the MCP resource: where its metadata is, which scopes to ask
 * for, and (RFC 6750 §3.1) the error when a token was presented.
 */
export function bearerChallenge(env: Env, o: { error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope'; description?: string; scope?: string; metadata?: string } = {}): string {
  const parts = [`resource_metadata="${o.metadata ?? resourceMetadataUrl(env)}"`, `scope="${o.scope ?? MCP_CHALLENGE_SCOPE}"`];
  if (o.error) parts.push(`error="${o.error}"`);
  if (o.description) parts.push(`error_description="${o.description.replace(/["\\]/g, '')}"`);
  return `Bearer ${parts.join(', ')}`;
}

export const challengeResponse = (env: Env, status: 400 | 401 | 403, o: Parameters<typeof bearerChallenge>[1], message: string) =>
  new Response(JSON.stringify({ error: o?.error ?? 'unauthorized', error_description: message }), {
    status,
    headers: { 'content-type': 'application/json', 'www-authenticate': bearerChallenge(env, o), 'access-control-expose-headers': 'WWW-Authenticate' },
  });

/**
 * DNS-rebinding protection (MCP Streamable HTTP: servers MUST validate Origin): a browser request from
 * another origin is refused, except loopback pages in development (e.g. MCP Inspector) and ALLOWED_ORIGINS.
 */
export function originAllowed(env: Env & { ALLOWED_ORIGINS?: string }, origin: string | null): boolean {
  if (!origin) return true;
  if (origin === new URL(env.ISSUER).origin) return true;
  if ((env.ALLOWED_ORIGINS ?? '').split(/[\s,]+/).filter(Boolean).includes(origin)) return true;
  if (isDevelopment(env)) {
    try {
      const h = new URL(origin).hostname;
      return h === 'localhost' || h === '127.0.0.1' || h === '[::1]';
    } catch {
      return false;
    }
  }
  return false;
}

/** The narrowest named scope that allows a permission, for an insufficient_scope challenge. */
export function scopeFor(permission: string, allows: (scope: string, permission: string) => boolean): string {
  return SCOPES_SUPPORTED.find((s) => allows(s, permission)) ?? 'mcp:write';
}

/**
 * The MCP resource's answer to a request without a valid credential (MCP authorization, RFC 9728 §5.1,
 * RFC 6750 §3.1: `invalid_token` only when a token was presented). One answer for every MCP door: the HTTP
 * door and the WebSocket door's refused upgrade.
 */
export function unauthorizedChallenge(env: Env, reason: AuthFailure): Response {
  if (reason === 'missing') return challengeResponse(env, 401, {}, 'Authentication required: send Authorization: Bearer <token>');
  return challengeResponse(env, 401, { error: 'invalid_token', description: `the access token is ${reason.replace('_', ' ')}` }, `Invalid token: ${reason}`);
}
