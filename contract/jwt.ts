import * as v from 'valibot';
import { base } from './base';
import { boundedJsonObject, ChittyIdSchema, DurationSchema, NullableTimestampSchema, TimestampSchema } from './schemas';

const ClaimsSchema = v.pipe(
  boundedJsonObject('claims', { maxKeyLength: 64, maxBytes: 4096 }),
  v.description('Custom claims. Registered claims (iss, sub, aud, exp, nbf, iat, jti) and token-use claims (scope, client_id, sid) are set by the server and may not be given.'),
);

export const generateJwt = base
  .route({
    method: 'POST',
    path: '/jwt',
    successStatus: 201,
    tags: ['JWTs'],
    summary: 'Generate a JWT',
    description:
      'Signs a JWT for a ChittyID (default: the caller) with custom claims and an expiry (default 1h, at most 30d). Anyone can verify it through /.well-known/jwks.json. It is not an access token for this API.',
  })
  .meta({ tool: 'generate_jwt', permission: 'jwt:generate', audit: true })
  .input(
    v.strictObject({
      chitty_id: v.optional(ChittyIdSchema),
      claims: v.optional(ClaimsSchema),
      expires_in: v.optional(DurationSchema),
      audience: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
    }),
  )
  .output(
    v.object({
      token: v.string(),
      token_type: v.literal('JWT'),
      kid: v.string(),
      jti: v.string(),
      expires_at: TimestampSchema,
    }),
  );

export const validateJwt = base
  .route({
    method: 'POST',
    path: '/jwt/validate',
    tags: ['JWTs'],
    summary: 'Validate a JWT',
    description: 'Verifies a JWT issued here (signature, issuer, expiry and, when given, audience) and returns its claims. A sign-in or OAuth access token whose session or grant has been revoked is reported as revoked.',
  })
  .meta({ tool: 'validate_jwt', permission: 'jwt:validate', readOnly: true })
  .input(
    v.strictObject({
      token: v.pipe(v.string(), v.minLength(1), v.maxLength(8192)),
      audience: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
    }),
  )
  .output(
    v.object({
      valid: v.boolean(),
      reason: v.nullable(v.picklist(['malformed', 'bad_signature', 'unknown_key', 'expired', 'not_yet_valid', 'wrong_issuer', 'wrong_audience', 'revoked'])),
      header: v.nullable(v.record(v.string(), v.unknown())),
      claims: v.nullable(v.record(v.string(), v.unknown())),
    }),
  );

export const SigningKeySchema = v.object({
  kid: v.string(),
  alg: v.string(),
  status: v.picklist(['active', 'retired']),
  created_at: TimestampSchema,
  retired_at: NullableTimestampSchema,
  verify_until: NullableTimestampSchema,
});

export const rotateSigningKeys = base
  .route({
    method: 'POST',
    path: '/jwt/keys/rotate',
    tags: ['JWTs'],
    summary: 'Rotate the signing key',
    description:
      'Creates a new signing key and retires the active one. Retired keys stay in the JWKS until every token they signed has expired, so nothing stops verifying.',
  })
  .meta({ tool: 'rotate_signing_keys', permission: 'jwt:keys:rotate', audit: true })
  .input(v.optional(v.strictObject({}), {}))
  .output(v.object({ active: SigningKeySchema, retired: v.array(SigningKeySchema) }));

export const listSigningKeys = base
  .route({ method: 'GET', path: '/jwt/keys', tags: ['JWTs'], summary: 'List signing keys', description: 'The signing keys, newest first. Private keys never leave the server.' })
  .meta({ tool: 'list_signing_keys', permission: 'jwt:keys:read', readOnly: true })
  .input(v.optional(v.strictObject({}), {}))
  .output(v.object({ items: v.array(SigningKeySchema) }));

export const jwt = {
  generate: generateJwt,
  validate: validateJwt,
  rotateKeys: rotateSigningKeys,
  listKeys: listSigningKeys,
};
