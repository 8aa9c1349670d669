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

/** Free-form JSON the contract accepts (sync documents, JWT claims, server.json `_meta`) nests at most this deep. */
export const MAX_JSON_DEPTH = 32;
/** ... and holds at most this many entries in any one object or array. */
export const MAX_JSON_WIDTH = 1000;

/**
 * Whether a parsed JSON value stays within MAX_JSON_DEPTH and MAX_JSON_WIDTH. Walks with an explicit stack, so a
 * value nested thousands of levels deep (which `JSON.parse` accepts and recursive code cannot walk) is measured,
 * not overflowed; it stops at the first container past a limit.
 */
export function withinJsonLimits(value: unknown): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth > MAX_JSON_DEPTH) return false;
    const children = Array.isArray(node) ? node : Object.values(node);
    if (children.length > MAX_JSON_WIDTH) return false;
    for (const child of children) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return true;
}

/**
 * The schema of a free-form JSON object field: a record with bounded keys, its depth and width, then (only once
 * the shape is known to be bounded, since they serialize it) its top-level field count and size. Every door
 * validates with it, so each refuses the same input with the same 400 naming the field.
 */
export function boundedJsonObject(what: string, limits: { maxKeyLength: number; maxFields?: number; maxBytes?: number }) {
  const { maxKeyLength, maxFields = MAX_JSON_WIDTH, maxBytes } = limits;
  return v.config(
    v.pipe(
      v.record(v.pipe(v.string(), v.maxLength(maxKeyLength)), v.unknown(), `Invalid ${what}: expected a JSON object`),
      v.check((value) => !Array.isArray(value), `Invalid ${what}: expected a JSON object, not an array`),
      v.check<Record<string, unknown>, string>(withinJsonLimits, `Invalid ${what}: JSON may nest at most ${MAX_JSON_DEPTH} levels deep, with at most ${MAX_JSON_WIDTH} entries in any object or array`),
      v.check((value) => Object.keys(value).length <= maxFields, `Invalid ${what}: at most ${maxFields} top-level fields`),
      v.check((value) => maxBytes === undefined || JSON.stringify(value).length <= maxBytes, `Invalid ${what}: at most ${maxBytes} bytes as JSON`),
    ),
    { abortPipeEarly: true },
  );
}
