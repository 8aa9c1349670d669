import * as v from 'valibot';
import { base, CONFLICT, NOT_FOUND } from './base';
import { ChittyIdSchema, DurationSchema, idSchema, NullableTimestampSchema, PermissionSchema, RoleSchema, TimestampSchema } from './schemas';

export const GrantSchema = v.object({
  grant_id: v.string(),
  chitty_id: v.string(),
  role: v.nullable(v.string()),
  permission: v.nullable(v.string()),
  granted_by: v.string(),
  created_at: TimestampSchema,
  expires_at: NullableTimestampSchema,
});

export const checkPermission = base
  .route({
    method: 'POST',
    path: '/permissions/check',
    tags: ['Permissions'],
    summary: 'Check a permission',
    description:
      'Tells whether a ChittyID (default: the caller) holds a permission such as `api_keys:generate`, through which grants. Wildcards in grants match: `api_keys:*` covers `api_keys:generate`.',
  })
  .meta({ tool: 'check_permission', permission: 'permissions:check', readOnly: true })
  .input(v.strictObject({ chitty_id: v.optional(ChittyIdSchema), permission: PermissionSchema }))
  .output(
    v.object({
      allowed: v.boolean(),
      chitty_id: v.string(),
      permission: v.string(),
      matched_by: v.pipe(v.array(v.string()), v.description('The grants that allow it, e.g. role:admin or permission:api_keys:*')),
    }),
  );

export const grantAuthorization = base
  .route({
    method: 'POST',
    path: '/permissions/grants',
    successStatus: 201,
    tags: ['Permissions'],
    summary: 'Grant a role or permission',
    description:
      'Grants a role (admin, user, readonly) or a permission string to a ChittyID, optionally for a limited time. You can only grant what your credential holds itself; an identical live grant is a conflict.',
  })
  .meta({ tool: 'grant_authorization', permission: 'permissions:grant', audit: true })
  .errors({ NOT_FOUND, CONFLICT })
  .input(
    v.pipe(
      v.strictObject({
        chitty_id: ChittyIdSchema,
        role: v.optional(RoleSchema),
        permission: v.optional(PermissionSchema),
        expires_in: v.optional(DurationSchema),
      }),
      v.check((i) => (i.role === undefined) !== (i.permission === undefined), 'Invalid grant: give exactly one of role or permission'),
    ),
  )
  .output(GrantSchema);

export const revokeGrant = base
  .route({ method: 'DELETE', path: '/permissions/grants/{grant_id}', tags: ['Permissions'], summary: 'Revoke a grant' })
  .meta({ tool: 'revoke_authorization', permission: 'permissions:revoke', audit: true })
  .errors({ NOT_FOUND, CONFLICT })
  .input(v.strictObject({ grant_id: idSchema('grt') }))
  .output(GrantSchema);

export const listGrants = base
  .route({ method: 'GET', path: '/permissions/grants', tags: ['Permissions'], summary: 'List grants', description: 'The active grants of a ChittyID (default: the caller).' })
  .meta({ tool: 'list_grants', permission: 'permissions:read', readOnly: true })
  .input(v.strictObject({ chitty_id: v.optional(ChittyIdSchema) }))
  .output(v.object({ items: v.array(GrantSchema) }));

export const listRoles = base
  .route({ method: 'GET', path: '/permissions/roles', tags: ['Permissions'], summary: 'List roles and scopes', description: 'The built-in roles and named scopes, with the permissions each stands for.' })
  .meta({ tool: 'list_roles', permission: null, readOnly: true })
  .input(v.optional(v.strictObject({}), {}))
  .output(
    v.object({
      roles: v.array(v.object({ name: v.string(), permissions: v.array(v.string()) })),
      scopes: v.array(v.object({ name: v.string(), permissions: v.array(v.string()) })),
    }),
  );

export const permissions = {
  check: checkPermission,
  grant: grantAuthorization,
  revoke: revokeGrant,
  list: listGrants,
  roles: listRoles,
};
