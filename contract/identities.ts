import * as v from 'valibot';
import { base, CONFLICT, NOT_FOUND } from './base';
import { ChittyIdSchema, NameSchema, TimestampSchema } from './schemas';

export const IdentityTypeSchema = v.picklist(
  ['PEO', 'ORG', 'APP', 'DEV', 'MCP', 'SVC'],
  'Invalid type: expected PEO (person), ORG, APP, DEV (device), MCP (MCP server) or SVC (service)',
);

export const IdentitySchema = v.object({
  chitty_id: v.string(),
  type: v.string(),
  display_name: v.nullable(v.string()),
  status: v.picklist(['active', 'disabled']),
  authority: v.pipe(v.string(), v.description("'local' or the origin of the external ChittyID authority")),
  created_at: TimestampSchema,
});

const AUTHORITY_UNAVAILABLE = {
  status: 503,
  message: 'The ChittyID authority cannot be reached; identity operations fail closed until it answers',
} as const;

export const mintIdentity = base
  .route({
    method: 'POST',
    path: '/identities',
    successStatus: 201,
    tags: ['Identities'],
    summary: 'Mint a ChittyID',
    description:
      'Mints a new ChittyID of the given type. With an external authority configured (CHITTYID_ENDPOINT) the authority mints it; the Worker never mints locally then.',
  })
  .meta({ tool: 'mint_chitty_id', permission: 'identity:ids:mint', audit: true })
  .errors({ CONFLICT, SERVICE_UNAVAILABLE: AUTHORITY_UNAVAILABLE })
  .input(
    v.strictObject({
      type: IdentityTypeSchema,
      identifier: v.optional(
        v.pipe(
          v.string(),
          v.maxLength(24),
          v.regex(/^[A-Z0-9]{3,24}$/, 'Invalid identifier: 3 to 24 characters A-Z and 0-9'),
          v.description('Optional identifier part (e.g. USER123); random when omitted'),
        ),
      ),
      display_name: v.optional(NameSchema),
    }),
  )
  .output(IdentitySchema);

export const getIdentity = base
  .route({
    method: 'GET',
    path: '/identities/{chitty_id}',
    tags: ['Identities'],
    summary: 'Resolve a ChittyID',
    description: 'Returns the identity a ChittyID names: its type, display name and status.',
  })
  .meta({ tool: 'resolve_chitty_id', permission: 'identity:ids:read', readOnly: true })
  .errors({ NOT_FOUND, SERVICE_UNAVAILABLE: AUTHORITY_UNAVAILABLE })
  .input(v.strictObject({ chitty_id: ChittyIdSchema }))
  .output(IdentitySchema);

export const validateIdentity = base
  .route({
    method: 'POST',
    path: '/identities/validate',
    tags: ['Identities'],
    summary: 'Validate a ChittyID',
    description:
      'Checks that a ChittyID is well formed, that its check part matches (catching typos), and that it is registered and active. Answers valid: false with a reason rather than an error.',
  })
  .meta({ tool: 'validate_chitty_id', permission: 'identity:ids:read', readOnly: true })
  .errors({ SERVICE_UNAVAILABLE: AUTHORITY_UNAVAILABLE })
  .input(v.strictObject({ chitty_id: v.pipe(v.string(), v.maxLength(64)) }))
  .output(
    v.object({
      valid: v.boolean(),
      chitty_id: v.string(),
      reason: v.nullable(v.picklist(['malformed', 'bad_check', 'unknown_type', 'not_registered', 'disabled'])),
      identity: v.nullable(IdentitySchema),
    }),
  );

export const identities = {
  mint: mintIdentity,
  get: getIdentity,
  validate: validateIdentity,
};
