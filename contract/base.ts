import { oc } from '@orpc/contract';
import * as v from 'valibot';

/**
 * What every procedure declares besides its route and schemas. The three doors and the
 * generated artifacts read only this: nothing about a procedure is wired by hand anywhere else.
 */
export interface ProcedureMeta {
  /** MCP tool name (snake_case), or null when the procedure is not an MCP tool. */
  tool: string | null;
  /**
   * Permission the caller must hold (`domain:resource:action`). `null` means any authenticated
   * caller. Ignored when `public` is true.
   */
  permission: string | null;
  /** No authentication at all (sign-in, first-run bootstrap). */
  public?: boolean;
  /** Append an audit event for every call (mutating or security-relevant procedures). */
  audit?: boolean;
  /** The procedure changes nothing (MCP `readOnlyHint`). */
  readOnly?: boolean;
}

const IssueSchema = v.object({
  path: v.string(),
  message: v.string(),
});

/** The base every contract procedure is built from: the meta defaults and the errors every door can produce. */
export const base = oc
  .$meta<ProcedureMeta>({ tool: null, permission: null, public: false, audit: false, readOnly: false })
  .errors({
    BAD_REQUEST: {
      status: 400,
      message: 'The input is invalid',
      data: v.object({ issues: v.array(IssueSchema) }),
    },
    UNAUTHORIZED: { status: 401, message: 'Authentication is required: send Authorization: Bearer <API key or token>' },
    FORBIDDEN: {
      status: 403,
      message: 'The caller lacks the permission this procedure requires',
      data: v.object({ permission: v.string() }),
    },
  });

export const NOT_FOUND = { status: 404, message: 'Not found' } as const;
export const CONFLICT = { status: 409, message: 'Conflict' } as const;
