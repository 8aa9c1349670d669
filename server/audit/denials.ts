import type { ProcedureMeta } from '../../contract';
import type { AuthFailure, Principal } from '../auth/authenticate';
import type { DB } from '../db/schema';
import { insertAuditEvent, type Door, type NewAuditEvent } from './audit.store';

/**
 * A call refused before its procedure ran: no valid credential, or a permission the caller does not hold.
 * (DESIGN.md "One credential path": every denial goes through one audit path.)
 */
export type Denial = { code: 'UNAUTHORIZED'; reason: AuthFailure } | { code: 'FORBIDDEN'; principal: Principal; permission: string };

/** The procedure a call was for: its router path (the audit action) and its contract meta. */
export interface Called {
  path: readonly string[];
  meta: ProcedureMeta;
}

/**
 * The audit event of a denial, the same whichever door the call came through (only `door` differs), or null
 * when none is written. A refused permission is always security-relevant. A call without a valid credential is
 * logged for audited procedures only: anyone can send those, and an anonymous flood must not grow the hash chain
 * for procedures nobody audits. The public answer is generic; the precise reason goes here (STYLE.md "Errors").
 */
export function denialEvent(door: Door, called: Called, denial: Denial): NewAuditEvent | null {
  const action = called.path.join('.');
  if (denial.code === 'UNAUTHORIZED') {
    if (!called.meta.audit) return null;
    return { actor: 'anonymous', action, target: null, door, outcome: 'denied', detail: { code: 'UNAUTHORIZED', reason: denial.reason } };
  }
  return {
    actor: denial.principal.chittyId,
    action,
    target: null,
    door,
    outcome: 'denied',
    detail: { code: 'FORBIDDEN', permission: denial.permission, credential: denial.principal.credentialId },
  };
}

/**
 * Appends a denial's audit event. Called by the guard (server/orpc.ts) on every door, and by a door that has to
 * refuse at the HTTP layer before dispatching to the guard (the MCP door's 401 and insufficient_scope 403).
 */
export async function auditDenial(db: DB, door: Door, called: Called, denial: Denial): Promise<void> {
  const event = denialEvent(door, called, denial);
  if (event) await insertAuditEvent(db, event);
}
