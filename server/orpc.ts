import { implement, ORPCError } from '@orpc/server';
import { contract, type ProcedureMeta } from '../contract';
import { insertAuditEvent, type Outcome } from './audit/audit.store';
import { auditDenial } from './audit/denials';
import { authenticate, type AuthFailure, type Principal } from './auth/authenticate';
import { Authorizer, forbidden } from './auth/authorizer';
import type { AuditNote, CallContext, RequestContext } from './context';

const UNAUTHORIZED_MESSAGES: Record<AuthFailure, string> = {
  missing: 'Authentication is required: send Authorization: Bearer <API key or token>',
  malformed: 'The Authorization header is not a Bearer credential',
  invalid: 'The credential is invalid',
  expired: 'The credential has expired',
  revoked: 'The credential has been revoked',
  disabled: 'The account behind this credential is disabled',
  wrong_audience: 'The token was not issued for this resource',
};

const pub = implement(contract).$context<RequestContext>();

/**
 * The one middleware every procedure runs through, on every door: authenticate the caller, enforce the
 * permission the contract declares, and append the audit event. Adapters never do any of this themselves.
 */
const guard = pub.middleware(async ({ context, next, path, procedure }) => {
  const meta = procedure['~orpc'].meta as ProcedureMeta;
  const audit: AuditNote = { actor: null, target: null, detail: {} };
  let principal: Principal | null = null;

  const record = (outcome: Outcome, extra: Record<string, unknown> = {}) =>
    insertAuditEvent(context.db, {
      actor: principal?.chittyId ?? audit.actor ?? 'anonymous',
      action: path.join('.'),
      target: audit.target,
      door: context.door,
      outcome,
      detail: { ...audit.detail, ...extra, ...(principal ? { credential: principal.credentialId } : {}) },
    });

  // Refusals before the procedure runs are audited by the one denial path every door shares (audit/denials.ts).
  let authz: Authorizer | null = null;
  if (!meta.public) {
    const result = context.preauthenticated
      ? ({ ok: true, principal: context.preauthenticated } as const)
      : await authenticate(context.env, context.db, context.authorization, context.audience, context.waitUntil);
    if (!result.ok) {
      await auditDenial(context.db, context.door, { path, meta }, { code: 'UNAUTHORIZED', reason: result.reason });
      throw new ORPCError('UNAUTHORIZED', { status: 401, message: UNAUTHORIZED_MESSAGES[result.reason], data: { reason: result.reason } });
    }
    principal = result.principal;
    authz = new Authorizer(context.db, principal, meta.permission);
    if (meta.permission && !(await authz.can(meta.permission))) {
      await auditDenial(context.db, context.door, { path, meta }, { code: 'FORBIDDEN', principal, permission: meta.permission });
      throw forbidden(meta.permission);
    }
  }

  try {
    const result = await next({ context: { principal, authz, audit } satisfies Omit<CallContext, keyof RequestContext> });
    if (meta.audit) await record('success');
    return result;
  } catch (error) {
    if (error instanceof ORPCError) {
      // Denials are always security-relevant; other failures only for audited procedures.
      // Input that fails validation changes nothing, not even the log.
      if (error.code === 'FORBIDDEN') await record('denied', { code: error.code, permission: (error.data as { permission?: string })?.permission });
      else if (meta.audit && error.code !== 'BAD_REQUEST') await record(error.code === 'UNAUTHORIZED' ? 'denied' : 'failure', { code: error.code });
    }
    throw error;
  }
});

/** Procedures implement the contract through this: the guard runs first on every call. */
export const os = pub.use(guard);

/** The authorizer of an authenticated call (present on every non-public procedure). */
export function authzOf(context: { authz: Authorizer | null }): Authorizer {
  if (!context.authz) throw new Error('authz used in a public procedure');
  return context.authz;
}

export { forbidden };
