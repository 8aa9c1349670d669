import { ORPCError } from '@orpc/server';
import { API_KEY_PREFIX } from '../auth/authenticate';
import { endSockets } from '../auth/live-sockets';
import { randomSecret, sha256Hex } from '../crypto/hash';
import type { ApiKeysTable } from '../db/schema';
import { requireIdentity } from '../identities/authority';
import { newId } from '../lib/ids';
import { durationSeconds, isoIn, nowIso } from '../lib/time';
import { invalidInput } from '../adapters/errors';
import { authzOf, os } from '../orpc';
import { scopesCovered } from '../permissions/policy';
import { findApiKey, findApiKeyWithGrants, insertApiKey, listApiKeys, updateApiKeyRevoked } from './api-keys.store';

/** 40 base62 characters ≈ 238 bits of entropy. */
const SECRET_LENGTH = 40;
const MAX_KEY_LIFETIME_S = 366 * 86_400 * 5;

export const toApiKey = (row: ApiKeysTable) => ({
  key_id: row.id,
  chitty_id: row.chitty_id,
  name: row.name,
  prefix: row.prefix,
  scopes: JSON.parse(row.scopes) as string[],
  created_at: row.created_at,
  expires_at: row.expires_at,
  last_used_at: row.last_used_at,
  revoked_at: row.revoked_at,
});

const notFound = (id: string) => new ORPCError('NOT_FOUND', { status: 404, message: `No API key ${id}` });

export const apiKeys = {
  create: os.apiKeys.create.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const owner = await authz.subject(input.chitty_id);
    await authz.assertOutranks(owner);
    const identity = await requireIdentity(context.env, context.db, owner);
    if (identity.status !== 'active') throw new ORPCError('NOT_FOUND', { status: 404, message: `ChittyID ${owner} is disabled` });
    const scopes = input.scopes ?? authz.principal.scopes;
    // No escalation: a key can never do more than the credential that created it.
    if (!scopesCovered(authz.principal.scopes, scopes)) {
      throw new ORPCError('FORBIDDEN', { status: 403, message: 'The requested scopes exceed those of your credential', data: { permission: scopes.join(' ') } });
    }
    const lifetime = input.expires_in === undefined ? null : durationSeconds(input.expires_in);
    if (lifetime !== null && lifetime > MAX_KEY_LIFETIME_S) {
      throw invalidInput('expires_in', 'at most 5 years');
    }
    const secret = `${API_KEY_PREFIX}${randomSecret(SECRET_LENGTH)}`;
    const row: ApiKeysTable = {
      id: newId('key'),
      chitty_id: owner,
      name: input.name,
      prefix: secret.slice(0, API_KEY_PREFIX.length + 6),
      secret_hash: await sha256Hex(secret),
      scopes: JSON.stringify(scopes),
      created_by: authz.principal.chittyId,
      created_at: nowIso(),
      expires_at: lifetime === null ? null : isoIn(lifetime),
      last_used_at: null,
      revoked_at: null,
    };
    await insertApiKey(context.db, row);
    context.audit.target = row.id;
    context.audit.detail = { owner, scopes };
    return { ...toApiKey(row), api_key: secret };
  }),

  validate: os.apiKeys.validate.handler(async ({ input, context }) => {
    const row = input.api_key.startsWith(API_KEY_PREFIX) ? (await findApiKeyWithGrants(context.db, await sha256Hex(input.api_key))).key : undefined;
    if (!row) return { valid: false, reason: 'unknown' as const, key: null };
    const reason = row.revoked_at ? 'revoked' : row.expires_at && row.expires_at <= nowIso() ? 'expired' : row.owner_status !== 'active' ? 'owner_disabled' : null;
    return { valid: reason === null, reason, key: toApiKey(row) };
  }),

  list: os.apiKeys.list.handler(async ({ input, context }) => {
    const owner = await authzOf(context).subject(input.chitty_id);
    const rows = await listApiKeys(context.db, owner, { includeRevoked: input.include_revoked, limit: input.limit, cursor: input.cursor });
    const page = rows.slice(0, input.limit);
    return { items: page.map(toApiKey), next_cursor: rows.length > input.limit ? page.at(-1)!.id : null };
  }),

  revoke: os.apiKeys.revoke.handler(async ({ input, context }) => {
    const authz = authzOf(context);
    const row = await findApiKey(context.db, input.key_id);
    if (!row) throw notFound(input.key_id);
    context.audit.target = row.id;
    // Do not reveal whether another principal's key exists to a caller who may not touch it.
    if (row.chitty_id !== authz.principal.chittyId && !(await authz.can('api_keys:revoke:any'))) throw notFound(input.key_id);
    await updateApiKeyRevoked(context.db, row.id, nowIso());
    // A revoked key keeps no connection alive: its MCP WebSocket connections close now.
    context.audit.detail = { sockets_closed: await endSockets(context.env, row.chitty_id, { credentials: [row.id], reason: 'credential revoked' }) };
    return toApiKey((await findApiKey(context.db, row.id))!);
  }),
};
