import { ORPCError, ValidationError } from '@orpc/server';

type Issue = { path?: ReadonlyArray<PropertyKey | { key: PropertyKey }>; message: string };

/** `claims.role`, `scopes[2]`, or `(input)` for the whole input. */
export function issuePath(issue: Issue): string {
  const keys = (issue.path ?? []).map((p) => (typeof p === 'object' && p !== null && 'key' in p ? p.key : p));
  if (keys.length === 0) return '(input)';
  return keys.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join('');
}

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);

/**
 * Input that fails the contract's schema becomes a 400 whose message names every bad field
 * (`name: Invalid length: Expected <=100 but received 100000`); the same on every door.
 * Other errors pass through untouched; anything unexpected is logged and stays a 500.
 */
export function shapeError(error: unknown): never {
  if (error instanceof ORPCError && error.code === 'BAD_REQUEST' && error.cause instanceof ValidationError) {
    // Issue messages quote the received value: cap them so a huge input is not echoed back.
    const issues = (error.cause.issues as readonly Issue[]).map((i) => ({ path: issuePath(i), message: clip(i.message, 200) }));
    throw new ORPCError('BAD_REQUEST', {
      status: 400,
      message: `Invalid input: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`.slice(0, 2000),
      data: { issues: issues.slice(0, 50) },
      cause: error.cause,
    });
  }
  if (!(error instanceof ORPCError) || error.status >= 500) console.error('unexpected error', error);
  throw error;
}

/** A 400 for input the schema cannot express a rule for, in the same shape as schema failures. */
export const invalidInput = (path: string, message: string) =>
  new ORPCError('BAD_REQUEST', { status: 400, message: `Invalid input: ${path}: ${message}`, data: { issues: [{ path, message }] } });
