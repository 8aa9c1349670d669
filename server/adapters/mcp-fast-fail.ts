import {
  InitializeRequestSchema,
  JSONRPCErrorResponseSchema,
  JSONRPCNotificationSchema,
  JSONRPCRequestSchema,
  JSONRPCResultResponseSchema,
} from '@modelcontextprotocol/sdk/types.js';

/**
 * The MCP SDK sorts every message with type guards such as `isInitializeRequest(m)`, which are
 * `Schema.safeParse(m).success`: on each request its transport and protocol ask whether a tools/call is an
 * initialize request, a result or an error. Each "no" makes zod build and throw away a full error (issues,
 * localized messages, a stack): about a tenth of an MCP request's CPU in the profile.
 *
 * Each of these schemas requires one field a cheap test can see is missing (`method: "initialize"`, a
 * `result`, an `error`, a `method`). When it is missing the schema cannot match, so safeParse answers failure
 * at once; the error itself is built only if someone reads it, exactly as zod would have built it. When the
 * field is there, zod decides as before. Nothing else changes.
 */
type SafeParse = (value: unknown, params?: unknown) => { success: boolean; data?: unknown; error?: unknown };

function failFastUnless(schema: object, mayMatch: (value: Record<string, unknown>) => boolean): void {
  const target = schema as { safeParse: SafeParse };
  const zodSafeParse = target.safeParse.bind(schema) as SafeParse;
  target.safeParse = (value, params) => {
    if (typeof value === 'object' && value !== null && mayMatch(value as Record<string, unknown>)) return zodSafeParse(value, params);
    let full: ReturnType<SafeParse> | undefined;
    return {
      success: false,
      get error() {
        return (full ??= zodSafeParse(value, params)).error;
      },
    };
  };
}

let installed = false;

/** Installs the short cuts (once per isolate). */
export function installMcpFastFail(): void {
  if (installed) return;
  installed = true;
  failFastUnless(InitializeRequestSchema, (m) => m.method === 'initialize');
  failFastUnless(JSONRPCRequestSchema, (m) => m.method !== undefined);
  failFastUnless(JSONRPCNotificationSchema, (m) => m.method !== undefined);
  failFastUnless(JSONRPCResultResponseSchema, (m) => m.result !== undefined);
  failFastUnless(JSONRPCErrorResponseSchema, (m) => m.error !== undefined);
}
