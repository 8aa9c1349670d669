import { ORPCError } from '@orpc/server';
import type { GrantsTable } from '../db/schema';
import { requireIdentity } from '../identities/authority';
import { newId } from '../lib/ids';
import { durationSeconds, isoIn, nowIso } from '../lib/time';
import { authzOf, os } from '../orpc';
import { countLiveAdminGrants, deleteGrant, findGrant, findSameGrant, insertGrant, listGrants } from './permissions.store';
import { grantPatterns, grantsAllowing, NAMED_SCOPES, ROLES } from './policy';

const toGrant = (row: GrantsTable) => ({
  grant_id: row.id,
  chitty_id: row.chitty_id,
  role: row.role,
  permission: row.permission,
  granted_by: row.granted_by,
  created_at: row.created_at,
  expires_at: row.expires_at,
});

export const permissions = {
  check: os.permissions.check.handler(async ({ input, context }) => {
    const subject = await authzOf(context).subject(input.chitty_id);
    const matched = grantsAllowing(await listGrants(context.db, subject), input.permission);
    return { allowed: matched.length > 0, chitty_id: subject, permission: input.permission, matched_by: matched };
  }),

  grant: os.permissions.grant.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    await requireIdentity(context.env, context.db, input.chitty_id);
    const grant = { role: input.role ?? null, permission: input.permission ?? null };
    // No escalation: one can only grant what one holds.
    await authz.assertCovers(grantPatterns(grant), grant.permission ?? `role:${grant.role}`);
    if (await findSameGrant(context.db, input.chitty_id, grant.role, grant.permission)) {
      throw new ORPCError('CONFLICT', { status: 409, message: `${input.chitty_id} already holds ${grant.role ? `role ${grant.role}` : grant.permission}` });
    }
    const row: GrantsTable = {
      id: newId('grt'),
      chitty_id: input.chitty_id,
      ...grant,
      granted_by: authz.principal.chittyId,
      created_at: nowIso(),
      expires_at: input.expires_in === undefined ? null : isoIn(durationSeconds(input.expires_in)),
    };
    await insertGrant(context.db, row);
    context.audit.target = input.chitty_id;
    context.audit.detail = { grant_id: row.id, ...grant };
    return toGrant(row);
  }),

  revoke: os.permissions.revoke.handler(async ({ input, context }) => {
    const row = await findGrant(context.db, input.grant_id);
    if (!row) throw new ORPCError('NOT_FOUND', { status: 404, message: `No grant ${input.grant_id}` });
    const authz = authzOf(context);
    // One may only take away what one could have given.
    await authz.assertCovers(grantPatterns(row), row.permission ?? `role:${row.role}`);
    if (row.role === 'admin' && (await countLiveAdminGrants(context.db)) <= 1) {
      throw new ORPCError('CONFLICT', { status: 409, message: 'This is the last admin grant; grant admin to someone else first' });
    }
    await deleteGrant(context.db, row.id);
    context.audit.target = row.chitty_id;
    context.audit.detail = { grant_id: row.id, role: row.role, permission: row.permission };
    return toGrant(row);
  }),

  list: os.permissions.list.handler(async ({ input, context }) => {
    const subject = await authzOf(context).subject(input.chitty_id);
    return { items: (await listGrants(context.db, subject)).map(toGrant) };
  }),

  roles: os.permissions.roles.handler(() => ({
    roles: Object.entries(ROLES).map(([name, permissions]) => ({ name, permissions: [...permissions] })),
    scopes: Object.entries(NAMED_SCOPES).map(([name, permissions]) => ({ name, permissions: [...permissions] })),
  })),
};
