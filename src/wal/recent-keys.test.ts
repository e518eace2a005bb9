import { describe, expect, it } from 'vitest';
import { RecentKeys } from './recent-keys.js';

describe('RecentKeys', () => {
  it('keeps the newest keys up to its capacity, the oldest out first', () => {
    const r = new RecentKeys(3);
    for (const k of ['a', 'b', 'c']) r.add(k);
    expect([r.has('a'), r.has('b'), r.has('c'), r.size]).toEqual([true, true, true, 3]);
    r.add('d');
    expect([r.has('a'), r.has('b'), r.has('d'), r.size]).toEqual([false, true, true, 3]);
    r.add('e');
    r.add('f');
    expect(['b', 'c', 'd', 'e', 'f'].map((k) => r.has(k))).toEqual([false, false, true, true, true]);
  });

  it('a key added again keeps its first place: it is not held twice', () => {
    const r = new RecentKeys(2);
    r.add('a');
    r.add('a');
    r.add('b');
    expect([r.has('a'), r.has('b'), r.size]).toEqual([true, true, 2]);
    r.add('c');
    expect([r.has('a'), r.has('b'), r.has('c')]).toEqual([false, true, true]);
  });

  it('holds 100,000 keys through a million adds, each still found until it ages out', () => {
    const r = new RecentKeys(100_000);
    for (let i = 0; i < 1_000_000; i++) r.add(`k${i}`);
    expect(r.size).toBe(100_000);
    expect(r.has('k899999')).toBe(false);
    expect(r.has('k900000')).toBe(true);
    expect(r.has('k999999')).toBe(true);
  });
});
