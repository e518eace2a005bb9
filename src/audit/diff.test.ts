import { describe, expect, it } from 'vitest';
import { canonicalJson, configDiff, flattenConfig, parseConfigValue, ROOT_PATH } from './diff.js';

describe('configDiff', () => {
  it('flattens nested objects to dotted paths and reports changed, added and removed leaves, sorted by path', () => {
    const before = { timeout: 30, retries: { max: 3, backoff: 'linear' }, slack: { channel: '#ops' } };
    const after = { timeout: 10, retries: { max: 3, backoff: 'exponential', jitter: true }, notion: { db: 'x' } };
    expect(configDiff(before, after)).toEqual([
      { path: 'notion.db', op: 'added', after: 'x' },
      { path: 'retries.backoff', op: 'changed', before: 'linear', after: 'exponential' },
      { path: 'retries.jitter', op: 'added', after: true },
      { path: 'slack.channel', op: 'removed', before: '#ops' },
      { path: 'timeout', op: 'changed', before: 30, after: 10 },
    ]);
  });

  it('gives nothing for equal values, whatever the key order', () => {
    expect(configDiff({ a: { b: 1, c: [1, { d: 2, e: 3 }] } }, { a: { c: [1, { e: 3, d: 2 }], b: 1 } })).toEqual([]);
  });

  it('compares arrays as whole values and tells null from absent', () => {
    expect(configDiff({ list: [1, 2], n: null }, { list: [2, 1] })).toEqual([
      { path: 'list', op: 'changed', before: [1, 2], after: [2, 1] },
      { path: 'n', op: 'removed', before: null },
    ]);
    expect(configDiff({ n: 0 }, { n: null })).toEqual([{ path: 'n', op: 'changed', before: 0, after: null }]);
  });

  it('handles a type change between object and scalar', () => {
    expect(configDiff({ a: { b: 1 } }, { a: 5 })).toEqual([
      { path: 'a', op: 'added', after: 5 },
      { path: 'a.b', op: 'removed', before: 1 },
    ]);
    expect(configDiff({ a: {} }, { a: { b: 1 } })).toEqual([
      { path: 'a', op: 'removed', before: {} },
      { path: 'a.b', op: 'added', after: 1 },
    ]);
  });

  it('names scalars at the root by the root path, or (value)', () => {
    expect(configDiff(30, 60, { root: 'timeout' })).toEqual([{ path: 'timeout', op: 'changed', before: 30, after: 60 }]);
    expect(configDiff('a', 'b')).toEqual([{ path: ROOT_PATH, op: 'changed', before: 'a', after: 'b' }]);
    expect(configDiff(undefined, { x: 1 })).toEqual([{ path: 'x', op: 'added', after: 1 }]);
    expect(configDiff({ x: 1 }, undefined)).toEqual([{ path: 'x', op: 'removed', before: 1 }]);
  });

  it('quotes keys that contain dots or brackets, and caps depth and entries', () => {
    expect([...flattenConfig({ 'a.b': { '': 1, 'c[0]': 2 } }).keys()]).toEqual(['["a.b"][""]', '["a.b"]["c[0]"]']);
    const deep = { a: { b: { c: { d: 1 } } } };
    expect(configDiff(deep, { a: { b: { c: { d: 2 } } } }, { maxDepth: 2 })).toEqual([
      { path: 'a.b', op: 'changed', before: { c: { d: 1 } }, after: { c: { d: 2 } } },
    ]);
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${String(i).padStart(2, '0')}`, i]));
    expect(configDiff({}, many, { maxEntries: 5 }).map((d) => d.path)).toEqual(['k00', 'k01', 'k02', 'k03', 'k04']);
  });
});

describe('parseConfigValue', () => {
  it('turns JSON-stringified attribute values back into values and leaves other text alone', () => {
    expect(parseConfigValue('{"a":{"b":[1,2]}}')).toEqual({ a: { b: [1, 2] } });
    expect(parseConfigValue('30')).toBe(30);
    expect(parseConfigValue('-1.5')).toBe(-1.5);
    expect(parseConfigValue('true')).toBe(true);
    expect(parseConfigValue('null')).toBe(null);
    expect(parseConfigValue('"quoted"')).toBe('quoted');
    expect(parseConfigValue('#ops-alerts')).toBe('#ops-alerts');
    expect(parseConfigValue('{not json')).toBe('{not json');
    expect(parseConfigValue('')).toBe('');
  });

  it('canonicalJson sorts keys', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}');
  });
});
