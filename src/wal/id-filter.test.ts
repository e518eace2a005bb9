import { describe, expect, it } from 'vitest';
import { hashKey, IdFilter, lastHashes, MAX_BYTES } from './id-filter.js';

const N = 1_000_000;
const projects = Array.from({ length: 50 }, (_, i) => `pf_project_${i}`);
const idOf = (prefix: string, i: number) => `${prefix}${i.toString(32).padStart(10, '0')}X7KQ3M9ZT2`;

describe('IdFilter', () => {
  it('never forgets a key and answers "maybe" for new keys at about its designed rate (1M keys, 10 bits/key)', () => {
    const f = new IdFilter({ capacity: N });
    expect(f.k).toBe(7);
    expect(f.bytes).toBeLessThanOrEqual(Math.ceil((N * 10) / 8) + 64);
    for (let i = 0; i < N; i++) f.add(projects[i % 50], idOf('01JF', i));
    let misses = 0;
    for (let i = 0; i < N; i++) if (!f.mayHave(projects[i % 50], idOf('01JF', i))) misses++;
    expect(misses).toBe(0);
    let fp = 0;
    for (let i = 0; i < N; i++) if (f.mayHave(projects[i % 50], idOf('01JG', i))) fp++;
    // designed for ~0.82 % (standard layout); the blocked layout measures ~0.97 %
    expect(fp / N).toBeLessThan(0.0125);
    expect(fp / N).toBeGreaterThan(0.004);
    expect(f.expectedFpr()).toBeCloseTo(0.0082, 3);
  });

  it('tells the project apart from the id (the NUL between them)', () => {
    const f = new IdFilter({ capacity: 1000 });
    f.add('pf_a', 'x1');
    expect(f.mayHave('pf_a', 'x1')).toBe(true);
    hashKey('pf_a', 'bc');
    const one = lastHashes();
    hashKey('pf_ab', 'c');
    expect(lastHashes()).not.toEqual(one);
    hashKey('pf_a', '');
    const empty = lastHashes();
    hashKey('pf_a\u0000', '');
    expect(lastHashes()).not.toEqual(empty);
    // not-added keys in a nearly empty filter: all "no"
    let fp = 0;
    for (let i = 0; i < 10_000; i++) if (f.mayHave('pf_a', `x${i + 2}`)) fp++;
    expect(fp).toBeLessThan(10);
  });

  it('past its capacity answers "maybe" more often, never "no" for an added key', () => {
    const f = new IdFilter({ capacity: 10_000 });
    for (let i = 0; i < 40_000; i++) f.add('pf', idOf('A', i));
    for (let i = 0; i < 40_000; i++) expect(f.mayHave('pf', idOf('A', i))).toBe(true);
    let fp = 0;
    for (let i = 0; i < 20_000; i++) if (f.mayHave('pf', idOf('B', i))) fp++;
    expect(fp / 20_000).toBeGreaterThan(0.2);
    expect(f.expectedFpr()).toBeGreaterThan(0.2);
  });

  it('stays within its memory bound', () => {
    const f = new IdFilter({ capacity: 1e9 });
    expect(f.bytes).toBeLessThanOrEqual(MAX_BYTES);
    expect(new IdFilter({ capacity: 1e6, maxBytes: 1 << 20 }).bytes).toBeLessThanOrEqual(1 << 20);
  });
});
