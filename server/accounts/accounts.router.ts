import { invalidInput } from '../adapters/errors';
import { ORPCError } from '@orpc/server';
import { timingSafeEqualStrings } from '../crypto/hash';
import { hashPassword, verifyPassword } from '../crypto/password';
import { isUniqueViolation, type DB } from '../db/schema';
import type { Env } from '../env';
import { mintIdentity } from '../identities/authority';
import { endSockets } from '../auth/live-sockets';
import { updateIdentityStatus } from '../identities/identities.store';
import { newId } from '../lib/ids';
import { nowIso } from '../lib/time';
import { revokeGrantsOf } from '../oauth/grants';
import { authzOf, os } from '../orpc';
import { findAnyAdminGrant, insertGrant } from '../permissions/permissions.store';
import { effectivePatterns, expandRole } from '../permissions/policy';
import { updateSessionsRevokedFor } from '../sessions/sessions.store';
import {
  findAccount,
  findAccountByUsername,
  insertAccount,
  listAccounts,
  listRolesFor,
  updateAccountPassword,
  type AccountRow,
} from './accounts.store';
import { signInWithPassword } from './sign-in';
import { unlockUsername } from './throttle';

const toAccount = (row: AccountRow, roles: string[]) => ({
  chitty_id: row.chitty_id,
  username: row.username,
  display_name: row.display_name,
  status: row.status,
  roles,
  created_at: row.created_at,
});

async function accountOut(db: DB, chittyId: string) {
  const row = await findAccount(db, chittyId);
  if (!row) throw new ORPCError('NOT_FOUND', { status: 404, message: `No account for ${chittyId}` });
  return toAccount(row, (await listRolesFor(db, [chittyId])).get(chittyId) ?? []);
}

/** Mints a person ChittyID, stores the account and grants its roles. */
export async function createAccountWithRoles(env: Env, db: DB, o: { username: string; password: string; displayName?: string; roles: string[]; grantedBy: string | null }) {
  if (await findAccountByUsername(db, o.username)) {
    throw new ORPCError('CONFLICT', { status: 409, message: `The username ${o.username} is taken` });
  }
  const passwordHash = await hashPassword(o.password);
  const identity = await mintIdentity(env, db, { type: 'PEO', displayName: o.displayName ?? null });
  const now = nowIso();
  try {
    await insertAccount(db, { chitty_id: identity.chitty_id, username: o.username, password_hash: passwordHash, failed_attempts: 0, locked_until: null, created_at: now, updated_at: now });
  } catch (error) {
    // Nothing half-written: a concurrent sign-up took the username after our check.
    await db.deleteFrom('identities').where('chitty_id', '=', identity.chitty_id).execute();
    if (isUniqueViolation(error)) throw new ORPCError('CONFLICT', { status: 409, message: `The username ${o.username} is taken` });
    throw error;
  }
  for (const role of new Set(o.roles)) {
    await insertGrant(db, { id: newId('grt'), chitty_id: identity.chitty_id, role, permission: null, granted_by: o.grantedBy ?? identity.chitty_id, created_at: now, expires_at: null });
  }
  return identity.chitty_id;
}

export const accounts = {
  bootstrap: os.accounts.bootstrap.handler(async ({ input, context }) => {
    const expected = context.env.SETUP_TOKEN;
    if (!expected || !timingSafeEqualStrings(input.setup_token, expected)) {
      throw new ORPCError('FORBIDDEN_SETUP', { status: 403, message: 'Invalid setup token (the SETUP_TOKEN secret)' });
    }
    if (await findAnyAdminGrant(context.db)) {
      throw new ORPCError('CONFLICT', { status: 409, message: 'An admin already exists; bootstrap runs only once' });
    }
    const chittyId = await createAccountWithRoles(context.env, context.db, { username: input.username, password: input.password, displayName: input.display_name, roles: ['admin'], grantedBy: null });
    context.audit.actor = chittyId;
    context.audit.target = chittyId;
    return accountOut(context.db, chittyId);
  }),

  create: os.accounts.create.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    // No escalation: a creator can hand out only roles whose permissions it holds itself.
    await authz.assertCovers(input.roles.flatMap(expandRole), `roles ${input.roles.join(', ')}`);
    const chittyId = await createAccountWithRoles(context.env, context.db, {
      username: input.username,
      password: input.password,
      displayName: input.display_name,
      roles: input.roles,
      grantedBy: authz.principal.chittyId,
    });
    context.audit.target = chittyId;
    context.audit.detail = { username: input.username, roles: input.roles };
    return accountOut(context.db, chittyId);
  }),

  list: os.accounts.list.handler(async ({ input, context }) => {
    const rows = await listAccounts(context.db, { limit: input.limit, cursor: input.cursor });
    const page = rows.slice(0, input.limit);
    const roles = await listRolesFor(context.db, page.map((r) => r.chitty_id));
    return {
      items: page.map((r) => toAccount(r, roles.get(r.chitty_id) ?? [])),
      next_cursor: rows.length > input.limit ? page.at(-1)!.chitty_id : null,
    };
  }),

  me: os.accounts.me.handler(async ({ context }) => {
    const authz = authzOf(context);
    const p = authz.principal;
    const account = await findAccount(context.db, p.chittyId);
    return {
      chitty_id: p.chittyId,
      credential: p.credential,
      credential_id: p.credentialId,
      scopes: p.scopes,
      permissions: effectivePatterns(await authz.grants(), p.scopes),
      account: account ? toAccount(account, (await listRolesFor(context.db, [p.chittyId])).get(p.chittyId) ?? []) : null,
    };
  }),

  get: os.accounts.get.handler(async ({ input, context }) => accountOut(context.db, input.chitty_id)),

  setPassword: os.accounts.setPassword.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const target = await authz.subject(input.chitty_id);
    await authz.assertOutranks(target);
    const account = await findAccount(context.db, target);
    if (!account) throw new ORPCError('NOT_FOUND', { status: 404, message: `No account for ${target}` });
    const self = target === authz.principal.chittyId;
    if (self && !(input.current_password && (await verifyPassword(input.current_password, account.password_hash)))) {
      throw new ORPCError('INVALID_CREDENTIALS', { status: 403, message: 'current_password is missing or wrong' });
    }
    const now = nowIso();
    await updateAccountPassword(context.db, target, await hashPassword(input.new_password), now);
    const ended = await updateSessionsRevokedFor(context.db, target, now, self ? authz.principal.sessionId : null);
    // Sockets opened with the sessions that just ended close (the hub authenticates each of them again).
    const socketsClosed = ended > 0 ? await endSockets(context.env, target, { recheck: true }) : 0;
    context.audit.target = target;
    context.audit.detail = { sessions_ended: ended, sockets_closed: socketsClosed };
    return { updated: true, sessions_ended: ended };
  }),

  disable: os.accounts.disable.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    if (input.chitty_id === authz.principal.chittyId) {
      throw new ORPCError('CONFLICT', { status: 409, message: 'You cannot disable your own account' });
    }
    await accountOut(context.db, input.chitty_id);
    await authz.assertOutranks(input.chitty_id);
    const now = nowIso();
    await updateIdentityStatus(context.db, input.chitty_id, 'disabled', now);
    const ended = await updateSessionsRevokedFor(context.db, input.chitty_id, now);
    // Its OAuth grants go too, so access tokens stop at once (and re-enabling does not revive them).
    const grantsRevoked = await revokeGrantsOf(context.db, input.chitty_id, 'account_disabled');
    context.audit.target = input.chitty_id;
    const socketsClosed = await endSockets(context.env, input.chitty_id, { credentials: 'all', reason: 'account disabled' });
    context.audit.detail = { sessions_ended: ended, oauth_grants_revoked: grantsRevoked, sockets_closed: socketsClosed };
    return accountOut(context.db, input.chitty_id);
  }),

  unlock: os.accounts.unlock.handler(async ({ input, context }) => {
    const account = await findAccount(context.db, input.chitty_id);
    if (!account) throw new ORPCError('NOT_FOUND', { status: 404, message: `No account for ${input.chitty_id}` });
    const cleared = await unlockUsername(context.db, account.username);
    context.audit.target = input.chitty_id;
    context.audit.detail = { username: account.username, counters_cleared: cleared };
    return { unlocked: cleared > 0 };
  }),

  enable: os.accounts.enable.handler(async ({ input, context }) => {
    await accountOut(context.db, input.chitty_id);
    await updateIdentityStatus(context.db, input.chitty_id, 'active', nowIso());
    context.audit.target = input.chitty_id;
    return accountOut(context.db, input.chitty_id);
  }),

  signIn: os.accounts.signIn.handler(async ({ input, context }) => {
    context.audit.detail = { username: input.username };
    const result = await signInWithPassword(context.env, context.db, {
      username: input.username,
      password: input.password,
      deviceName: input.device_name,
      deviceId: input.device_id,
      userAgent: context.userAgent,
      ip: context.ip,
      client: context.door,
    });
    context.audit.target = result.chittyId;
    if (!result.ok) {
      if (result.reason === 'unknown_device') throw invalidInput('device_id', 'no such device of this account (register one with POST /v1/devices)');
      if (result.reason === 'throttled') {
        throw new ORPCError('TOO_MANY_REQUESTS', { status: 429, message: `Too many sign-in attempts; try again in ${result.retryAfter} s`, data: { retry_after: result.retryAfter } });
      }
      throw new ORPCError('INVALID_CREDENTIALS', { status: 401, message: 'Wrong username or password' });
    }
    context.audit.actor = result.chittyId;
    context.audit.detail = { username: input.username, session_id: result.sessionId };
    return { access_token: result.token, token_type: 'Bearer' as const, expires_in: result.expiresIn, session_id: result.sessionId, chitty_id: result.chittyId };
  }),
};
