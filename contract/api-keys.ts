import * as v from 'valibot';
import { base, NOT_FOUND } from './base';
import {
  ChittyIdSchema,
  CursorSchema,
  DurationSchema,
  idSchema,
  LimitSchema,
  NameSchema,
  NullableTimestampSchema,
  pageOf,
  ScopeSchema,
  TimestampSchema,
} from './schemas';

export const ApiKeySchema = v.object({
  key_id: v.string(),
  chitty_id: v.string(),
  name: v.string(),
  prefix: v.pipe(v.string(), v.description('The first characters of the key, to recognise it; never the whole secret')),
  scopes: v.array(v.string()),
  created_at: TimestampSchema,
  expires_at: NullableTimestampSchema,
  last_used_at: NullableTimestampSchema,
  revoked_at: NullableTimestampSchema,
});

export const generateApiKey = base
  .route({
    method: 'POST',
    path: '/api-keys',
    successStatus: 201,
    tags: ['API keys'],
    summary: 'Generate an API key',
    description:
      'Generates an API key (prefix `chitty_`) for a ChittyID (default: the caller). The secret is returned once and stored only as a hash. Scopes cap what the key can do; they may not exceed the scopes of the credential that creates the key. Omitted scopes: the same as the creating credential.',
  })
  .meta({ tool: 'generate_api_key', permission: 'api_keys:generate', audit: true })
  .errors({ NOT_FOUND })
  .input(
    v.strictObject({
      chitty_id: v.optional(ChittyIdSchema),
      name: NameSchema,
      scopes: v.optional(v.pipe(v.array(ScopeSchema), v.minLength(1), v.maxLength(32))),
      expires_in: v.optional(DurationSchema),
    }),
  )
  .output(v.object({ ...ApiKeySchema.entries, api_key: v.pipe(v.string(), v.description('The secret. Shown once.')) }));

export const validateApiKey = base
  .route({
    method: 'POST',
    path: '/api-keys/validate',
    tags: ['API keys'],
    summary: 'Validate an API key',
    description: 'Tells whether an API key is valid (exists, not revoked, not expired, owner active) and whose it is.',
  })
  .meta({ tool: 'validate_api_key', permission: 'api_keys:validate', readOnly: true })
  .input(v.strictObject({ api_key: v.pipe(v.string(), v.minLength(1), v.maxLength(256)) }))
  .output(
    v.object({
      valid: v.boolean(),
      reason: v.nullable(v.picklist(['unknown', 'revoked', 'expired', 'owner_disabled'])),
      key: v.nullable(ApiKeySchema),
    }),
  );

export const listApiKeys = base
  .route({ method: 'GET', path: '/api-keys', tags: ['API keys'], summary: 'List API keys', description: 'Lists the API keys of a ChittyID (default: the caller). Never returns secrets.' })
  .meta({ tool: 'list_api_keys', permission: 'api_keys:read', readOnly: true })
  .input(
    v.strictObject({
      chitty_id: v.optional(ChittyIdSchema),
      include_revoked: v.optional(v.boolean(), false),
      limit: LimitSchema,
      cursor: CursorSchema,
    }),
  )
  .output(pageOf(ApiKeySchema));

export const revokeApiKey = base
  .route({ method: 'DELETE', path: '/api-keys/{key_id}', tags: ['API keys'], summary: 'Revoke an API key', description: 'Revokes an API key at once. Revoking a revoked key is not an error.' })
  .meta({ tool: 'revoke_api_key', permission: 'api_keys:revoke', audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ key_id: idSchema('key') }))
  .output(ApiKeySchema);

export const apiKeys = {
  create: generateApiKey,
  validate: validateApiKey,
  list: listApiKeys,
  revoke: revokeApiKey,
};
