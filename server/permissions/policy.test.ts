import { describe, expect, it } from 'vitest';
import { covers, effectivePatterns, expandRole, grantCovered, grantsAllowing, matches, NAMED_SCOPES, patternsCovered, ROLES, scopesAllow, scopesCovered, type GrantLike } from './policy';

const role = (name: string): GrantLike => ({ role: name, permission: null });
const perm = (p: string): GrantLike => ({ role: null, permission: p });

describe('matches', () => {
  it.each([
    // exact
    ['api_keys:generate', 'api_keys:generate', true],
    ['api_keys:generate', 'api_keys:revoke', false],
    ['api_keys:generate', 'apikeys:generate', false],
    ['audit:chain:verify', 'audit:chain:verify', true],
    // middle *
    ['mcp:*:call', 'mcp:github:call', true],
    ['mcp:*:call', 'mcp:github:read', false],
    ['mcp:*:call', 'mcp:github:tool:call', false],
    ['*:read', 'accounts:read', true],
    ['*:read', 'accounts:users:read', false],
    ['*:*:read', 'accounts:users:read', true],
    // trailing *
    ['*', 'api_keys:generate', true],
    ['*', 'audit:chain:verify', true],
    ['api_keys:*', 'api_keys:generate', true],
    ['api_keys:*', 'api_keys:revoke:any', true],
    ['api_keys:*', 'api_keys', false],
    ['api_keys:*', 'jwt:generate', false],
    ['mcp:github:tool:*', 'mcp:github:tool:search', true],
    ['mcp:github:tool:*', 'mcp:gitlab:tool:search', false],
    // length mismatch
    ['api_keys:generate', 'api_keys:generate:any', false],
    ['api_keys:generate:any', 'api_keys:generate', false],
    ['api_keys', 'api_keys:generate', false],
  ])('matches(%s, %s) is %s', (pattern, permission, expected) => {
    expect(matches(pattern, permission)).toBe(expected);
  });
});

describe('covers', () => {
  it.each([
    ['*', '*', true],
    ['*', 'api_keys:*', true],
    ['*', 'mcp:*:call', true],
    ['api_keys:*', 'api_keys:generate', true],
    ['api_keys:*', 'api_keys:*', true],
    ['api_keys:*', 'api_keys:revoke:any', true],
    ['api_keys:*', 'api_keys:*:any', true],
    ['mcp:*:call', 'mcp:github:call', true],
    ['mcp:*:call', 'mcp:*:call', true],
    ['api_keys:generate', 'api_keys:generate', true],
    ['*:read', '*:read', true],
    ['*:read', 'sessions:read', true],
  ])('says %s covers %s', (outer, inner, expected) => {
    expect(covers(outer, inner)).toBe(expected);
  });

  // Each of these would let a holder of `outer` hand out (or mint a key for) more than it holds.
  it.each([
    ['api_keys:generate', 'api_keys:*', 'inner wildcard reaches every api_keys action'],
    ['api_keys:*', '*', 'inner is everything'],
    ['api_keys:*', 'api_keys', 'inner is shorter than a trailing * allows'],
    ['mcp:github:call', 'mcp:*:call', 'inner middle wildcard spans every server'],
    ['mcp:*:call', 'mcp:*:*', 'inner trailing wildcard reaches deeper'],
    ['mcp:*:call', 'mcp:github:tool:x', 'inner is longer'],
    ['*:read', 'accounts:*', 'inner trailing wildcard includes writes'],
    ['a:*:*', 'a:*', 'inner trailing wildcard also matches two segments'],
    ['a:b', 'a:*', 'inner trailing wildcard over a fixed segment'],
    ['api_keys:generate', 'api_keys:generate:any', 'inner acts on other principals'],
    ['jwt:generate', 'api_keys:generate', 'different domain'],
  ])('says %s does not cover %s (%s)', (outer, inner) => {
    expect(covers(outer, inner)).toBe(false);
  });
});

describe('scopesCovered', () => {
  it.each([
    [['*'], ['permissions:check'], true],
    [['*'], ['*'], true],
    [['mcp:write'], ['mcp:read'], true],
    [['write'], ['read', 'api_keys:generate'], true],
    [['read'], ['api_keys:read', 'sessions:read'], true],
    [['api_keys:*'], ['api_keys:generate', 'api_keys:revoke'], true],
    [['chittyos:services'], ['permissions:check', 'jwt:validate'], true],
    [['permissions:check'], ['permissions:check'], true],
    [['permissions:check'], [], true],
  ])('lets %j create a credential with %j', (held, requested, expected) => {
    expect(scopesCovered(held, requested)).toBe(expected);
  });

  it.each([
    [['permissions:check'], ['*']],
    [['permissions:check'], ['api_keys:generate']],
    [['mcp:read'], ['mcp:write']],
    [['read'], ['api_keys:generate']],
    [['api_keys:generate'], ['api_keys:*']],
    [['permissions:check'], ['chittyos:services']],
    [['api_keys:*'], ['api_keys:generate', 'jwt:generate']],
    [[], ['permissions:check']],
  ])('refuses to let %j create a credential with %j', (held, requested) => {
    expect(scopesCovered(held, requested)).toBe(false);
  });
});

describe('scopesAllow', () => {
  it.each([
    [['*'], 'audit:chain:verify', true],
    [['mcp:read'], 'api_keys:read', true],
    [['mcp:read'], 'api_keys:generate', false],
    [['permissions:check'], 'permissions:check', true],
    [['permissions:check'], 'api_keys:generate', false],
    [[], 'permissions:check', false],
  ])('scopes %j allow %s: %s', (scopes, permission, expected) => {
    expect(scopesAllow(scopes, permission)).toBe(expected);
  });
});

describe('grantCovered', () => {
  it.each([
    [[role('admin')], role('admin'), true],
    [[role('admin')], role('user'), true],
    [[role('admin')], perm('audit:*'), true],
    [[role('user')], perm('api_keys:generate'), true],
    [ROLES.readonly!.map(perm), role('readonly'), true],
    [[perm('api_keys:*')], perm('api_keys:revoke:any'), true],
  ])('lets a granter holding %j grant %j', (held, grant, expected) => {
    expect(grantCovered(held, grant)).toBe(expected);
  });

  it.each([
    [[role('user')], role('admin'), 'role:admin is *'],
    [[role('user'), perm('permissions:grant')], role('admin'), 'holding permissions:grant is not holding *'],
    [ROLES.readonly!.slice(1).map(perm), role('readonly'), 'one readonly permission is not held'],
    [[role('user')], perm('api_keys:*'), 'user holds only some api_keys actions'],
    [[role('user')], perm('api_keys:revoke:any'), 'user may revoke only its own keys'],
    [[perm('api_keys:generate')], perm('*'), 'everything'],
    [[role('readonly')], role('user'), 'user can write'],
    [[], perm('permissions:check'), 'nothing held'],
  ])('refuses a granter holding %j to grant %j (%s)', (held, grant) => {
    expect(grantCovered(held, grant)).toBe(false);
  });
});

describe('patternsCovered', () => {
  it.each([
    [['*'], ['api_keys:*', 'audit:chain:verify'], true],
    [['api_keys:*', 'jwt:generate'], ['api_keys:revoke:any', 'jwt:generate'], true],
    [['api_keys:*'], [], true],
    [['api_keys:*'], ['api_keys:generate', 'jwt:generate'], false],
    [['api_keys:generate'], ['api_keys:*'], false],
    [[], ['permissions:check'], false],
  ])('says %j covers %j: %s', (held, requested, expected) => {
    expect(patternsCovered(held, requested)).toBe(expected);
  });
});

describe('grantsAllowing', () => {
  it('names every grant through which a permission is held', () => {
    const grants = [role('user'), perm('api_keys:*'), perm('jwt:generate')];
    expect(grantsAllowing(grants, 'api_keys:generate')).toEqual(['role:user', 'permission:api_keys:*']);
    expect(grantsAllowing(grants, 'api_keys:revoke:any')).toEqual(['permission:api_keys:*']);
    expect(grantsAllowing(grants, 'audit:events:read')).toEqual([]);
  });
});

describe('effectivePatterns', () => {
  it('is every granted pattern when the credential is unscoped', () => {
    expect(effectivePatterns([role('user')], ['*'])).toEqual([...ROLES.user!].sort());
  });

  it('narrows an admin to the credential scope', () => {
    expect(effectivePatterns([role('admin')], ['permissions:check'])).toEqual(['permissions:check']);
    expect(effectivePatterns([role('admin')], ['api_keys:*'])).toEqual(['api_keys:*']);
  });

  it('intersects grants with a named scope', () => {
    const grants = ['api_keys:read', 'api_keys:generate', 'identity:ids:read', 'jwt:validate', 'audit:chain:verify', 'sessions:revoke'].map(perm);
    expect(effectivePatterns(grants, ['mcp:read'])).toEqual(['api_keys:read', 'audit:chain:verify', 'identity:ids:read', 'jwt:validate']);
  });

  it('keeps only the read side of an admin under a read-only scope', () => {
    expect(effectivePatterns([role('admin')], ['read'])).toEqual([...NAMED_SCOPES.read!].sort());
    expect(effectivePatterns([role('admin')], ['read'])).not.toContain('*');
  });

  it('keeps the narrower side of a wildcard grant and a specific scope', () => {
    expect(effectivePatterns([perm('api_keys:*')], ['api_keys:generate', 'jwt:generate'])).toEqual(['api_keys:generate']);
  });

  it('is empty without grants or without scopes', () => {
    expect(effectivePatterns([], ['*'])).toEqual([]);
    expect(effectivePatterns([role('admin')], [])).toEqual([]);
  });

  it('never reports a pattern outside the grants', () => {
    const out = effectivePatterns([role('readonly')], ['*']);
    expect(out).toEqual([...expandRole('readonly')].sort());
    expect(out).not.toContain('api_keys:generate');
  });
});
