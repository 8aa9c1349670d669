/**
 * Permission policy, pure: no I/O. Permissions are `domain:resource:action` strings; in a pattern a `*`
 * segment matches any one segment, and a trailing `*` matches one or more remaining segments.
 * Acting on another principal's resources needs the `:any` form (`api_keys:revoke:any`).
 */

export const ROLES: Record<string, readonly string[]> = {
  admin: ['*'],
  user: [
    'identity:ids:read',
    'accounts:password:write',
    'api_keys:generate',
    'api_keys:read',
    'api_keys:revoke',
    'api_keys:validate',
    'jwt:generate',
    'jwt:validate',
    'permissions:check',
    'permissions:read',
    'sessions:read',
    'sessions:revoke',
    'oauth:grants:read',
    'oauth:grants:revoke',
    'oauth:linked_apps:create',
    'tokens:validate',
    'portal:servers:read',
    'portal:servers:use',
    'sync:*',
  ],
  readonly: [
    'identity:ids:read',
    'api_keys:read',
    'api_keys:validate',
    'jwt:validate',
    'jwt:keys:read',
    'permissions:check',
    'permissions:read',
    'sessions:read',
    'oauth:clients:read',
    'oauth:grants:read',
    'tokens:validate',
    'portal:servers:read',
    'sync:devices:read',
    'sync:sessions:read',
    'sync:state:read:*',
  ],
};

const READ_ONLY = ['*:read', '*:*:read', '*:validate', 'permissions:check', 'audit:chain:verify'];

/** Named scopes a token or API key can carry. Any other scope is itself a permission pattern. */
export const NAMED_SCOPES: Record<string, readonly string[]> = {
  'mcp:read': READ_ONLY,
  'mcp:write': ['*'],
  read: READ_ONLY,
  write: ['*'],
  'chittyos:services': ['identity:ids:read', 'api_keys:validate', 'jwt:validate', 'tokens:validate', 'permissions:check', 'permissions:check:any'],
  cross_sync: ['sync:*'],
};

/** matches() is pure and called for every pattern of every grant and scope on every check: its answers are kept. */
const MATCH_MEMO_MAX = 50_000;
const matchMemo = new Map<string, boolean>();

export function matches(pattern: string, permission: string): boolean {
  const key = `${pattern}\n${permission}`;
  let answer = matchMemo.get(key);
  if (answer === undefined) {
    answer = matchesUncached(pattern, permission);
    if (matchMemo.size >= MATCH_MEMO_MAX) matchMemo.clear();
    matchMemo.set(key, answer);
  }
  return answer;
}

function matchesUncached(pattern: string, permission: string): boolean {
  const p = pattern.split(':');
  const q = permission.split(':');
  for (let i = 0; i < p.length; i++) {
    const seg = p[i];
    if (seg === '*' && i === p.length - 1) return q.length >= p.length;
    if (i >= q.length) return false;
    if (seg !== '*' && seg !== q[i]) return false;
  }
  return p.length === q.length;
}

/** Whether pattern `outer` matches every permission pattern `inner` can match (no privilege escalation). */
export function covers(outer: string, inner: string): boolean {
  const p = outer.split(':');
  const q = inner.split(':');
  for (let i = 0; i < p.length; i++) {
    const seg = p[i];
    const innerTrailing = i === q.length - 1 && q[i] === '*';
    if (seg === '*' && i === p.length - 1) return q.length >= p.length;
    if (i >= q.length) return false;
    if (innerTrailing) return false; // inner reaches deeper than outer allows
    if (seg !== '*' && (q[i] === '*' || seg !== q[i])) return false;
  }
  return p.length === q.length;
}

export const expandScope = (scope: string): readonly string[] => NAMED_SCOPES[scope] ?? [scope];

export const expandRole = (role: string): readonly string[] => ROLES[role] ?? [];

export interface GrantLike {
  role: string | null;
  permission: string | null;
}

export const grantLabel = (g: GrantLike): string => (g.role ? `role:${g.role}` : `permission:${g.permission}`);

export const grantPatterns = (g: GrantLike): readonly string[] => (g.role ? expandRole(g.role) : [g.permission!]);

/** The grants through which `permission` is held (empty: not held). */
export function grantsAllowing(grants: readonly GrantLike[], permission: string): string[] {
  return grants.filter((g) => grantPatterns(g).some((p) => matches(p, permission))).map(grantLabel);
}

export function scopesAllow(scopes: readonly string[], permission: string): boolean {
  return scopes.some((s) => expandScope(s).some((p) => matches(p, permission)));
}

/** Every pattern of `requested` (scopes) is covered by some pattern of `held` (scopes). */
export function scopesCovered(held: readonly string[], requested: readonly string[]): boolean {
  const heldPatterns = held.flatMap(expandScope);
  return requested.flatMap(expandScope).every((r) => heldPatterns.some((h) => covers(h, r)));
}

/** Every pattern a grant would confer is covered by the given grants. */
export const grantCovered = (held: readonly GrantLike[], grant: GrantLike): boolean => patternsCovered(held.flatMap(grantPatterns), grantPatterns(grant));

/** Every requested pattern is covered by some held pattern. */
export const patternsCovered = (held: readonly string[], requested: readonly string[]): boolean =>
  requested.every((r) => held.some((h) => covers(h, r)));

/** The permission patterns a credential effectively has: its holder's grants intersected with its scopes. */
export function effectivePatterns(grants: readonly GrantLike[], scopes: readonly string[]): string[] {
  const held = grants.flatMap(grantPatterns);
  const scoped = scopes.flatMap(expandScope);
  const out = new Set<string>();
  for (const h of held) {
    for (const s of scoped) {
      if (covers(s, h)) out.add(h);
      else if (covers(h, s)) out.add(s);
    }
  }
  return [...out].sort();
}
