import { describe, expect, it } from 'vitest';
import { canonical, changedFields, merge } from './merge';

describe('three-way merge of state documents', () => {
  it('takes each side’s change to a different field', () => {
    const r = merge({ a: 1, b: 1 }, { a: 2, b: 1 }, { a: 1, b: 3 });
    expect(r).toEqual({ merged: { a: 2, b: 3 }, conflicts: [], takenFromCurrent: ['a'] });
  });

  it('reports a field changed on both sides to different values, with the three values', () => {
    const r = merge({ theme: 'light', x: 1 }, { theme: 'dark', x: 1 }, { theme: 'blue', x: 2 });
    expect(r.conflicts).toEqual([{ field: 'theme', base: 'light', current: 'dark', pushed: 'blue' }]);
  });

  it('is no conflict when both sides made the same change (whatever the key order of objects)', () => {
    const r = merge({ p: { a: 1 } }, { p: { a: 2, b: 1 } }, { p: { b: 1, a: 2 } });
    expect(r).toEqual({ merged: { p: { a: 2, b: 1 } }, conflicts: [], takenFromCurrent: [] });
  });

  it('keeps a removal made on one side, and reports removed-versus-changed as a conflict without the absent value', () => {
    expect(merge({ a: 1, b: 1 }, { a: 1 }, { a: 1, b: 1, c: 3 }).merged).toEqual({ a: 1, c: 3 });
    expect(merge({ a: 1 }, {}, { a: 2 }).conflicts).toEqual([{ field: 'a', base: 1, pushed: 2 }]);
  });

  it('adds fields new on both sides when they agree, and conflicts when they do not', () => {
    expect(merge({}, { n: [1, 2] }, { n: [1, 2] }).conflicts).toEqual([]);
    expect(merge({}, { n: [1] }, { n: [2] }).conflicts).toEqual([{ field: 'n', current: [1], pushed: [2] }]);
  });

  it('compares values, not their serialization', () => {
    expect(canonical({ b: [1, { d: 1, c: 2 }], a: null })).toBe(canonical({ a: null, b: [1, { c: 2, d: 1 }] }));
    expect(changedFields({ a: 1, b: '1' }, { a: 1, b: 1 })).toEqual(['b']);
    expect(changedFields({ a: null }, {})).toEqual(['a']);
  });
});
