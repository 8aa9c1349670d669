import * as v from 'valibot';
import { base } from './base';
import { CursorSchema, LimitSchema, pageOf, TimestampSchema } from './schemas';

export const AuditEventSchema = v.object({
  seq: v.number(),
  id: v.string(),
  at: TimestampSchema,
  actor: v.string(),
  action: v.string(),
  target: v.nullable(v.string()),
  door: v.string(),
  outcome: v.string(),
  detail: v.record(v.string(), v.unknown()),
  hash: v.string(),
});

export const listAuditEvents = base
  .route({ method: 'GET', path: '/audit/events', tags: ['Audit'], summary: 'List audit events', description: 'Audit events, newest first, filtered by actor, action, door, outcome and time.' })
  .meta({ tool: 'list_audit_events', permission: 'audit:events:read', readOnly: true })
  .input(
    v.strictObject({
      actor: v.optional(v.pipe(v.string(), v.maxLength(128))),
      action: v.optional(v.pipe(v.string(), v.maxLength(128))),
      door: v.optional(v.picklist(['rpc', 'rest', 'mcp', 'oauth', 'system'])),
      outcome: v.optional(v.picklist(['success', 'denied', 'failure'])),
      since: v.optional(TimestampSchema),
      until: v.optional(TimestampSchema),
      limit: LimitSchema,
      cursor: CursorSchema,
    }),
  )
  .output(pageOf(AuditEventSchema));

export const verifyAuditChain = base
  .route({
    method: 'POST',
    path: '/audit/verify',
    tags: ['Audit'],
    summary: 'Verify the audit chain',
    description: 'Recomputes the hash chain over every audit event and reports any event that was edited, deleted or inserted out of order.',
  })
  .meta({ tool: 'verify_audit_chain', permission: 'audit:chain:verify', readOnly: true })
  .input(v.optional(v.strictObject({}), {}))
  .output(
    v.object({
      valid: v.boolean(),
      checked: v.number(),
      problems: v.array(v.object({ seq: v.number(), problem: v.picklist(['hash_mismatch', 'broken_link', 'missing']) })),
    }),
  );

export const audit = {
  list: listAuditEvents,
  verify: verifyAuditChain,
};
