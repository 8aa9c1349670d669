/**
 * Three-way merge of state documents at their top-level fields. `base` is the revision the pusher started
 * from, `current` what the server holds now, `pushed` what the pusher sends. A field changed on one side
 * only takes that side's value (a removed field stays removed); a field changed on both sides to the same
 * value is no conflict; a field changed on both sides to different values is a conflict. Pure: no I/O.
 */
export type Doc = Record<string, unknown>;

export interface Conflict {
  field: string;
  /** Absent keys mean the field was absent on that side. */
  base?: unknown;
  current?: unknown;
  pushed?: unknown;
}

/** JSON with object keys sorted, so that equal values compare equal whatever their key order. */
export function canonical(value: unknown): string {
  if (value === undefined) return '\u0000absent';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonical(v))).join(',')}]`;
  const entries = Object.entries(value as Doc)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
}

const get = (doc: Doc, field: string) => (Object.hasOwn(doc, field) ? doc[field] : undefined);
const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

/** The top-level fields whose values differ between two documents. */
export function changedFields(from: Doc, to: Doc): string[] {
  const fields = new Set([...Object.keys(from), ...Object.keys(to)]);
  return [...fields].filter((f) => !same(get(from, f), get(to, f))).sort();
}

export interface MergeResult {
  merged: Doc;
  conflicts: Conflict[];
  /** Fields whose value in `merged` comes from `current` (changed there since base, not by the pusher). */
  takenFromCurrent: string[];
}

export function merge(base: Doc, current: Doc, pushed: Doc): MergeResult {
  const theirs = new Set(changedFields(base, current));
  const ours = new Set(changedFields(base, pushed));
  const merged: Doc = {};
  const conflicts: Conflict[] = [];
  const takenFromCurrent: string[] = [];
  const fields = new Set([...Object.keys(base), ...Object.keys(current), ...Object.keys(pushed)]);
  for (const field of [...fields].sort()) {
    let value: unknown;
    if (ours.has(field) && theirs.has(field)) {
      if (!same(get(current, field), get(pushed, field))) {
        const c: Conflict = { field };
        if (Object.hasOwn(base, field)) c.base = base[field];
        if (Object.hasOwn(current, field)) c.current = current[field];
        if (Object.hasOwn(pushed, field)) c.pushed = pushed[field];
        conflicts.push(c);
        continue;
      }
      value = get(pushed, field);
    } else if (ours.has(field)) {
      value = get(pushed, field);
    } else if (theirs.has(field)) {
      value = get(current, field);
      takenFromCurrent.push(field);
    } else {
      value = get(current, field);
    }
    if (value !== undefined) merged[field] = value;
  }
  return { merged, conflicts, takenFromCurrent };
}
