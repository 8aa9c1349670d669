import { ORPCError } from '@orpc/server';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Env } from '../env';

/**
 * Cloudflare Access: the `Cf-Access-Jwt-Assertion` JWT is signed by the team's keys at
 * `{team domain}/cdn-cgi/access/certs`, issued by the team domain, with the application's AUD tag as audience.
 */
const jwksByTeam = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

export type AccessResult = { ok: true; email: string; claims: JWTPayload } | { ok: false; reason: 'not_configured' | 'missing' | 'invalid' };

export async function verifyAccessAssertion(env: Env, assertion: string | null | undefined): Promise<AccessResult> {
  const team = env.CF_ACCESS_TEAM_DOMAIN?.replace(/\/+$/, '');
  if (!team || !env.CF_ACCESS_AUD) return { ok: false, reason: 'not_configured' };
  if (!assertion) return { ok: false, reason: 'missing' };
  let jwks = jwksByTeam.get(team);
  if (!jwks) {
    jwks = createRemoteJWKSet(new URL(`${team}/cdn-cgi/access/certs`), { timeoutDuration: 5_000, cooldownDuration: 30_000 });
    jwksByTeam.set(team, jwks);
  }
  try {
    const { payload } = await jwtVerify(assertion, jwks, { issuer: team, audience: env.CF_ACCESS_AUD, algorithms: ['RS256', 'ES256'] });
    if (typeof payload.email !== 'string' || !payload.email) return { ok: false, reason: 'invalid' };
    return { ok: true, email: payload.email.toLowerCase(), claims: payload };
  } catch {
    return { ok: false, reason: 'invalid' };
  }
}

/** The contract error for a refused assertion. */
export function cfAccessToClientError(reason: Extract<AccessResult, { ok: false }>['reason']): ORPCError<string, unknown> {
  if (reason === 'not_configured') return new ORPCError('NOT_CONFIGURED', { status: 503, message: 'Cloudflare Access is not configured: set CF_ACCESS_TEAM_DOMAIN and CF_ACCESS_AUD' });
  return new ORPCError('INVALID_ASSERTION', { status: 401, message: reason === 'missing' ? 'Send the Cf-Access-Jwt-Assertion header' : 'The Cloudflare Access assertion is invalid, expired or for another application' });
}
