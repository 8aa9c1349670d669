import * as v from 'valibot';

/** ChittyID: `CHITTY-{TYPE}-{ID}-{CHECK}`, for example `CHITTY-PEO-USER123-K7Q`. */
export const CHITTY_ID_PATTERN = /^CHITTY-[A-Z]{3}-[A-Z0-9]{1,24}-[A-Z0-9]{3}$/;

export const ChittyIdSchema = v.pipe(
  v.string(),
  v.maxLength(64),
  v.regex(CHITTY_ID_PATTERN, 'Invalid ChittyID: expected CHITTY-{TYPE}-{ID}-{CHECK}'),
  v.description('A ChittyID such as CHITTY-PEO-USER123-K7Q'),
);

export const TimestampSchema = v.pipe(v.string(), v.maxLength(40), v.isoTimestamp(), v.description('ISO-8601 UTC timestamp'));
export const NullableTimestampSchema = v.nullable(TimestampSchema);

/** Identifiers we mint: a short prefix, an underscore and 26 base32 characters (time-ordered). */
export const idSchema = (prefix: string) =>
  v.pipe(v.string(), v.maxLength(64), v.regex(new RegExp(`^${prefix}_[0-9a-z]{26}$`), `Invalid id: expected ${prefix}_…`));

/** A permission string `domain:resource:action`; any segment may be `*`, and a trailing `*` matches the rest. */
export const PermissionSchema = v.pipe(
  v.string(),
  v.maxLength(128),
  v.regex(/^(\*|[a-z0-9_.-]+)(:(\*|[a-z0-9_.-]+)){0,4}$/, 'Invalid permission: expected domain:resource:action with optional * segments'),
);

/** A scope: a named scope (see `permissions.roles`) or a permission pattern. */
export const ScopeSchema = v.pipe(
  v.string(),
  v.maxLength(128),
  v.regex(/^(\*|[a-z0-9_.-]+)(:(\*|[a-z0-9_.-]+)){0,4}$/, 'Invalid scope'),
);

export const RoleSchema = v.picklist(['admin', 'user', 'readonly']);

/** A lifetime such as `30m`, `24h`, `7d` or a number of seconds. */
export const DurationSchema = v.union(
  [
    v.pipe(v.string(), v.maxLength(16), v.regex(/^[1-9][0-9]{0,7}[smhd]?$/, 'Invalid duration: expected e.g. 30m, 24h, 7d or seconds')),
    v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(99_999_999)),
  ],
  'Invalid duration: expected e.g. "24h" or a number of seconds',
);

export const LimitSchema = v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(200)), 50);
export const CursorSchema = v.optional(v.pipe(v.string(), v.maxLength(128)));

export const pageOf = <T extends v.GenericSchema>(item: T) =>
  v.object({
    items: v.array(item),
    next_cursor: v.nullable(v.string()),
  });

export const NameSchema = v.pipe(v.string(), v.maxLength(100), v.trim(), v.minLength(1, 'Invalid name: must not be blank'));
