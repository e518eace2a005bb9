// bench/id-filter: the loader's id filter (src/wal/id-filter.ts, a blocked Bloom filter) against a
// standard Bloom filter of the same bits and hashes: ns per add and per test, and the measured
// false-positive rate, at KEYS keys (default 1,000,000; 10 bits/key). Keys look like the SDK's:
// 50 projects, ULID-like ids.
//   node dist/bench/id-filter.js
import { hashKey, IdFilter, lastHashes } from '../src/wal/id-filter.js';

const KEYS = Number(process.env.KEYS ?? 1_000_000);
const projects = Array.from({ length: 50 }, (_, i) => `pf_project_${i}`);
const ids = (prefix: string) => Array.from({ length: KEYS }, (_, i) => `${prefix}${i.toString(32).padStart(10, '0')}X7KQ3M9ZT2`);
const stored = ids('01JF');
const fresh = ids('01JG');

/** The textbook layout: k bits anywhere in the array, by double hashing (h1 + i·h2). */
class StandardBloom {
  private readonly words: Uint32Array;
  private readonly bits: number;
  constructor(bits: number, private readonly k: number) {
    this.words = new Uint32Array(Math.ceil(bits / 32));
    this.bits = this.words.length * 32;
  }
  add(p: string, id: string): void {
    hashKey(p, id);
    const [a, b] = lastHashes();
    for (let i = 0; i < this.k; i++) {
      const bit = (a + i * b) % this.bits;
      this.words[bit >>> 5] |= 1 << (bit & 31);
    }
  }
  mayHave(p: string, id: string): boolean {
    hashKey(p, id);
    const [a, b] = lastHashes();
    for (let i = 0; i < this.k; i++) {
      const bit = (a + i * b) % this.bits;
      if ((this.words[bit >>> 5] & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

function run(name: string, f: { add(p: string, id: string): void; mayHave(p: string, id: string): boolean }): void {
  let t = performance.now();
  for (let i = 0; i < KEYS; i++) f.add(projects[i % 50], stored[i]);
  const addNs = ((performance.now() - t) * 1e6) / KEYS;
  t = performance.now();
  let misses = 0;
  for (let i = 0; i < KEYS; i++) if (!f.mayHave(projects[i % 50], stored[i])) misses++;
  const hitNs = ((performance.now() - t) * 1e6) / KEYS;
  t = performance.now();
  let fp = 0;
  for (let i = 0; i < KEYS; i++) if (f.mayHave(projects[i % 50], fresh[i])) fp++;
  const newNs = ((performance.now() - t) * 1e6) / KEYS;
  console.log(`| ${name} | ${addNs.toFixed(0)} | ${hitNs.toFixed(0)} | ${newNs.toFixed(0)} | ${((fp / KEYS) * 100).toFixed(3)} % | ${misses} |`);
}

let t = performance.now();
for (let i = 0; i < KEYS; i++) hashKey(projects[i % 50], stored[i]);
console.log(`bench/id-filter — ${KEYS.toLocaleString('en-US')} keys, 10 bits/key; hash alone ${(((performance.now() - t) * 1e6) / KEYS).toFixed(0)} ns/key`);
console.log('| layout | add ns | test ns (stored) | test ns (new) | false positives | false negatives |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (let round = 0; round < 2; round++) {
  const blocked = new IdFilter({ capacity: KEYS });
  run(`blocked (512-bit blocks, k=${blocked.k}, ${(blocked.bytes / 1048576).toFixed(1)} MiB)`, blocked);
  run(`standard (k=7, same bits)`, new StandardBloom(blocked.bits, 7));
}
t = performance.now();
