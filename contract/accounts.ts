import * as v from 'valibot';
import { base, CONFLICT, NOT_FOUND } from './base';
import { ChittyIdSchema, CursorSchema, idSchema, LimitSchema, NameSchema, pageOf, RoleSchema, TimestampSchema } from './schemas';

export const UsernameSchema = v.pipe(
  v.string(),
  v.maxLength(64),
  v.regex(/^[a-zA-Z0-9][a-zA-Z0-9._@-]{1,63}$/, 'Invalid username: 2 to 64 characters, letters, digits and . _ @ -'),
);
export const PasswordSchema = v.pipe(
  v.string(),
  v.minLength(10, 'Invalid password: at least 10 characters'),
  v.maxLength(256, 'Invalid password: at most 256 characters'),
);

export const AccountSchema = v.object({
  chitty_id: v.string(),
  username: v.string(),
  display_name: v.nullable(v.string()),
  status: v.picklist(['active', 'disabled']),
  roles: v.array(v.string()),
  created_at: TimestampSchema,
});

const TOO_MANY_REQUESTS = {
  status: 429,
  message: 'Too many sign-in attempts; try again later',
  data: v.object({ retry_after: v.pipe(v.number(), v.description('Seconds until the throttle window ends (also the Retry-After header)')) }),
} as const;

export const bootstrapAccount = base
  .route({
    method: 'POST',
    path: '/accounts/bootstrap',
    successStatus: 201,
    tags: ['Accounts'],
    summary: 'Create the first admin (first run only)',
    description:
      'Creates the first admin account. Requires the SETUP_TOKEN secret and succeeds only while no admin exists; `npm run dev` calls it for you.',
  })
  .meta({ tool: null, permission: null, public: true, audit: true })
  .errors({ CONFLICT, FORBIDDEN_SETUP: { status: 403, message: 'Invalid setup token' } })
  .input(
    v.strictObject({
      setup_token: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
      username: UsernameSchema,
      password: PasswordSchema,
      display_name: v.optional(NameSchema),
    }),
  )
  .output(AccountSchema);

export const createAccount = base
  .route({
    method: 'POST',
    path: '/accounts',
    successStatus: 201,
    tags: ['Accounts'],
    summary: 'Create an account',
    description: 'Creates a person account with a new ChittyID (type PEO) and the given roles (default: user).',
  })
  .meta({ tool: 'create_account', permission: 'accounts:users:create', audit: true })
  .errors({ CONFLICT, SERVICE_UNAVAILABLE: { status: 503, message: 'The ChittyID authority cannot be reached' } })
  .input(
    v.strictObject({
      username: UsernameSchema,
      password: PasswordSchema,
      display_name: v.optional(NameSchema),
      roles: v.optional(v.pipe(v.array(RoleSchema), v.maxLength(3)), ['user']),
    }),
  )
  .output(AccountSchema);

export const listAccounts = base
  .route({ method: 'GET', path: '/accounts', tags: ['Accounts'], summary: 'List accounts' })
  .meta({ tool: 'list_accounts', permission: 'accounts:users:read', readOnly: true })
  .input(v.strictObject({ limit: LimitSchema, cursor: CursorSchema }))
  .output(pageOf(AccountSchema));

export const getAccount = base
  .route({ method: 'GET', path: '/accounts/{chitty_id}', tags: ['Accounts'], summary: 'Get an account' })
  .meta({ tool: 'get_account', permission: 'accounts:users:read', readOnly: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ chitty_id: ChittyIdSchema }))
  .output(AccountSchema);

export const whoami = base
  .route({
    method: 'GET',
    path: '/accounts/me',
    tags: ['Accounts'],
    summary: 'Who am I',
    description: 'The calling principal: its ChittyID, how it authenticated, its scopes and its effective permissions.',
  })
  .meta({ tool: 'whoami', permission: null, readOnly: true })
  .input(v.optional(v.strictObject({}), {}))
  .output(
    v.object({
      chitty_id: v.string(),
      credential: v.picklist(['session', 'api_key', 'access_token']),
      credential_id: v.string(),
      scopes: v.array(v.string()),
      permissions: v.array(v.string()),
      account: v.nullable(AccountSchema),
    }),
  );

export const setPassword = base
  .route({
    method: 'PUT',
    path: '/accounts/{chitty_id}/password',
    tags: ['Accounts'],
    summary: 'Set a password',
    description:
      "Changes an account's password. For your own account `current_password` is required. Every other session of the account is ended.",
  })
  .meta({ tool: null, permission: 'accounts:password:write', audit: true })
  .errors({ NOT_FOUND, INVALID_CREDENTIALS: { status: 403, message: 'The current password is wrong' } })
  .input(
    v.strictObject({
      chitty_id: ChittyIdSchema,
      current_password: v.optional(v.pipe(v.string(), v.maxLength(256))),
      new_password: PasswordSchema,
    }),
  )
  .output(v.object({ updated: v.boolean(), sessions_ended: v.number() }));

const statusChange = (action: 'disable' | 'enable') =>
  base
    .route({
      method: 'POST',
      path: `/accounts/{chitty_id}/${action}`,
      tags: ['Accounts'],
      summary: action === 'disable' ? 'Disable an account' : 'Enable an account',
      description:
        action === 'disable'
          ? 'Disables an account: it can no longer sign in, and its sessions, API keys and tokens stop working at once.'
          : 'Re-enables a disabled account. Ended sessions stay ended; API keys that were not revoked work again.',
    })
    .meta({ tool: `${action}_account`, permission: 'accounts:users:write', audit: true })
    .errors({ NOT_FOUND, CONFLICT })
    .input(v.strictObject({ chitty_id: ChittyIdSchema }))
    .output(AccountSchema);

export const disableAccount = statusChange('disable');
export const enableAccount = statusChange('enable');

export const signIn = base
  .route({
    method: 'POST',
    path: '/accounts/sign-in',
    tags: ['Accounts'],
    summary: 'Sign in',
    description:
      'Signs in with username and password and starts a session. Returns a bearer access token for this API, valid until the session expires or is revoked. Attempts are throttled per username and client address (10 per 15 minutes), per username (100) and per address (30), before any password is checked: over a limit the answer is 429 with `Retry-After`, the same for every username, known or not.',
  })
  .meta({ tool: null, permission: null, public: true, audit: true })
  .errors({ INVALID_CREDENTIALS: { status: 401, message: 'Wrong username or password' }, TOO_MANY_REQUESTS })
  .input(
    v.strictObject({
      username: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
      password: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
      device_name: v.optional(NameSchema),
      device_id: v.optional(v.pipe(idSchema('dev'), v.description('A registered device of this account (POST /v1/devices): the session is issued to it and ends when it is removed'))),
    }),
  )
  .output(
    v.object({
      access_token: v.string(),
      token_type: v.literal('Bearer'),
      expires_in: v.number(),
      session_id: v.string(),
      chitty_id: v.string(),
    }),
  );

export const unlockAccount = base
  .route({
    method: 'POST',
    path: '/accounts/{chitty_id}/unlock',
    tags: ['Accounts'],
    summary: 'Unlock an account',
    description:
      "Clears the sign-in throttle of an account's username (from every address), so it can sign in again at once after too many failed attempts. Per-address limits across usernames are not changed.",
  })
  .meta({ tool: 'unlock_account', permission: 'accounts:users:write', audit: true })
  .errors({ NOT_FOUND })
  .input(v.strictObject({ chitty_id: ChittyIdSchema }))
  .output(v.object({ unlocked: v.pipe(v.boolean(), v.description('Whether recent failed attempts were counted against the username (now cleared)')) }));

export const accounts = {
  bootstrap: bootstrapAccount,
  create: createAccount,
  list: listAccounts,
  me: whoami,
  get: getAccount,
  setPassword,
  disable: disableAccount,
  enable: enableAccount,
  unlock: unlockAccount,
  signIn,
};
