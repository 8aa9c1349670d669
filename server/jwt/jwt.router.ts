import { describeToken } from '../auth/describe-token';
import type { SigningKeysTable } from '../db/schema';
import { requireIdentity } from '../identities/authority';
import { durationSeconds } from '../lib/time';
import { invalidInput } from '../adapters/errors';
import { authzOf, os } from '../orpc';
import { listSigningKeys, MAX_TOKEN_LIFETIME_S, rotateSigningKeys } from './keys';
import { signJwt, verifyJwt } from './tokens';

/** Claims the server sets; a caller-supplied value would let a generated JWT pose as something else. */
const RESERVED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'scope', 'client_id', 'sid', 'cnf', 'act']);
const DEFAULT_LIFETIME_S = 3600;


const toSigningKey = (row: SigningKeysTable) => ({
  kid: row.kid,
  alg: row.alg,
  status: row.status,
  created_at: row.created_at,
  retired_at: row.retired_at,
  verify_until: row.verify_until,
});

export const jwt = {
  generate: os.jwt.generate.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const subject = await authz.subject(input.chitty_id);
    await requireIdentity(context.env, context.db, subject);
    const claims = input.claims ?? {};
    const reserved = Object.keys(claims).filter((k) => RESERVED_CLAIMS.has(k));
    if (reserved.length > 0) throw invalidInput(`claims.${reserved[0]}`, `${reserved.join(', ')} is set by the server and may not be given`);
    const lifetime = input.expires_in === undefined ? DEFAULT_LIFETIME_S : durationSeconds(input.expires_in);
    if (lifetime > MAX_TOKEN_LIFETIME_S) throw invalidInput('expires_in', 'at most 30 days');
    // Generated JWTs are never access tokens for this service: they carry typ JWT, and our own audiences are refused.
    const issuer = context.env.ISSUER;
    if (input.audience && (input.audience === issuer || input.audience.startsWith(`${issuer}/`))) {
      throw invalidInput('audience', 'may not be this service; use sign-in or OAuth for access tokens');
    }
    const signed = await signJwt(context.env, context.db, { typ: 'JWT', subject, audience: input.audience, expiresIn: lifetime, claims });
    context.audit.target = signed.jti;
    context.audit.detail = { subject, expires_in: lifetime, claim_names: Object.keys(claims) };
    return { token: signed.token, token_type: 'JWT' as const, kid: signed.kid, jti: signed.jti, expires_at: new Date(signed.exp * 1000).toISOString() };
  }),

  validate: os.jwt.validate.handler(async ({ input, context }) => {
    const r = await verifyJwt(context.env, context.db, input.token, { audience: input.audience });
    if (!r.ok) {
      const reason = r.reason === 'wrong_type' ? 'malformed' : r.reason;
      return { valid: false, reason, header: null, claims: null };
    }
    // Access tokens are only as good as the session or grant behind them.
    if (r.header.typ === 'at+jwt' && !(await describeToken(context.env, context.db, input.token)).active) {
      return { valid: false, reason: 'revoked' as const, header: null, claims: null };
    }
    return { valid: true, reason: null, header: r.header, claims: r.claims as Record<string, unknown> };
  }),

  rotateKeys: os.jwt.rotateKeys.handler(async ({ context }) => {
    const { active, retired } = await rotateSigningKeys(context.env, context.db);
    context.audit.target = active.kid;
    context.audit.detail = { retired: retired.map((r) => r.kid) };
    return { active: toSigningKey(active), retired: retired.map(toSigningKey) };
  }),

  listKeys: os.jwt.listKeys.handler(async ({ context }) => ({ items: (await listSigningKeys(context.db)).map(toSigningKey) })),
};
