import type { IdentitiesTable } from '../db/schema';
import { os } from '../orpc';
import { mintIdentity, requireIdentity, resolveIdentity } from './authority';

export const toIdentity = (row: IdentitiesTable) => ({
  chitty_id: row.chitty_id,
  type: row.type,
  display_name: row.display_name,
  status: row.status,
  authority: row.authority,
  created_at: row.created_at,
});

export const identities = {
  mint: os.identities.mint.handler(async ({ input, context }) => {
    const row = await mintIdentity(context.env, context.db, { type: input.type, identifier: input.identifier, displayName: input.display_name });
    context.audit.target = row.chitty_id;
    return toIdentity(row);
  }),

  get: os.identities.get.handler(async ({ input, context }) => toIdentity(await requireIdentity(context.env, context.db, input.chitty_id))),

  validate: os.identities.validate.handler(async ({ input, context }) => {
    const r = await resolveIdentity(context.env, context.db, input.chitty_id);
    if (!r.ok) return { valid: false, chitty_id: input.chitty_id, reason: r.reason, identity: null };
    const disabled = r.identity.status !== 'active';
    return { valid: !disabled, chitty_id: input.chitty_id, reason: disabled ? ('disabled' as const) : null, identity: toIdentity(r.identity) };
  }),
};
