// A blocked Bloom filter of (project, id) keys: "definitely never added" or "maybe added". No false
// negatives ever; false positives at about the rate it was sized for while it holds at most its
// capacity, rising gracefully past it (more "maybe" answers, never a wrong "no").
//
// Blocked: every key sets its k bits inside one 512-bit block (one cache line), so an add or a test
// costs one memory miss instead of k — measured against a standard Bloom filter of the same bits in
// bench/id-filter.ts. The price is a slightly higher false-positive rate for the same bits/key
// (~1.0 % against ~0.8 % at 10 bits/key, k = 7).
//
// The key is hashed from the strings' UTF-16 code units directly (project, a NUL, then the id), so
// no joined string or UTF-8 buffer is made per key.

/** Bits per block: 16 32-bit words, one 64-byte cache line. */
const BLOCK_WORDS = 16;
const BLOCK_BITS = BLOCK_WORDS * 32;
/** The largest bit array: 2^20 blocks (blockOf stays exact). */
export const MAX_BYTES = 64 << 20;
/**
 * Odd multipliers: the i-th bit of a key in its block is the top 9 bits of h2 × SALT[i] (the first
 * eight are Parquet's split-block Bloom filter salts), so every bit depends on all of h2.
 */
const SALT = Int32Array.from([
  0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31,
  0x9e3779b1, 0x85ebca77, 0xc2b2ae3d, 0x27d4eb2f,
]);

export interface IdFilterSize {
  /** Keys it is sized for. */
  capacity: number;
  /** Bits per key at capacity (default 10: ~1 % false positives). */
  bitsPerKey?: number;
  /** Most bytes the bit array may take (default and most 64 MB): a larger capacity gets fewer bits per key. */
  maxBytes?: number;
}

export class IdFilter {
  /** Keys added (repeats counted again: an upper bound of the distinct keys). */
  added = 0;
  readonly k: number;
  private readonly words: Uint32Array;
  private readonly blocks: number;

  constructor(readonly size: IdFilterSize) {
    const bitsPerKey = size.bitsPerKey ?? 10;
    const maxBits = Math.max(BLOCK_BITS, Math.floor(Math.min(size.maxBytes ?? MAX_BYTES, MAX_BYTES) * 8));
    const wanted = Math.min(maxBits, Math.max(BLOCK_BITS, Math.ceil(size.capacity * bitsPerKey)));
    this.blocks = Math.max(1, Math.min(Math.floor(maxBits / BLOCK_BITS), Math.ceil(wanted / BLOCK_BITS)));
    this.words = new Uint32Array(this.blocks * BLOCK_WORDS);
    // optimal k for the bits per key it actually got, within what one 32-bit hash can feed
    this.k = Math.max(1, Math.min(12, Math.round((this.bits / Math.max(1, size.capacity)) * Math.LN2)));
  }

  get bits(): number {
    return this.words.length * 32;
  }

  get bytes(): number {
    return this.words.byteLength;
  }

  /** Records the key. */
  add(project: string, id: string): void {
    hashKey(project, id);
    const base = blockOf(h1, this.blocks) * BLOCK_WORDS;
    const w = this.words;
    for (let i = 0; i < this.k; i++) {
      const bit = Math.imul(h2, SALT[i]) >>> 23;
      w[base + (bit >>> 5)] |= 1 << (bit & 31);
    }
    this.added++;
  }

  /** False: this key was never added. True: it may have been. */
  mayHave(project: string, id: string): boolean {
    hashKey(project, id);
    const base = blockOf(h1, this.blocks) * BLOCK_WORDS;
    const w = this.words;
    for (let i = 0; i < this.k; i++) {
      const bit = Math.imul(h2, SALT[i]) >>> 23;
      if ((w[base + (bit >>> 5)] & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }

  /**
   * The false-positive rate expected after `added` keys (of a standard Bloom filter with these bits;
   * the blocked layout is a little worse): past capacity it climbs towards 1.
   */
  expectedFpr(keys = this.added): number {
    return Math.pow(1 - Math.exp((-this.k * keys) / this.bits), this.k);
  }
}

/** h1 mapped onto [0, blocks) by multiplication (exact in a double: blocks < 2^21). */
function blockOf(h: number, blocks: number): number {
  return Math.floor(((h >>> 0) * blocks) / 4294967296);
}

// the two 32-bit hashes of the last key, kept in module variables so hashing allocates nothing
let h1 = 0;
let h2 = 0;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * Two murmur3-style 32-bit hashes of project + NUL + id over UTF-16 code units (two per 32-bit
 * word), with different seeds, computed in one pass. Results in h1, h2.
 */
export function hashKey(project: string, id: string): void {
  a = 0x9747b28c;
  b = 0x3c6ef372;
  // the NUL is the project's last half-word: appended to an odd-length project as the high half
  const pn = project.length;
  let i = 0;
  for (; i + 1 < pn; i += 2) mix(project.charCodeAt(i) | (project.charCodeAt(i + 1) << 16));
  let j = 0;
  if (i < pn) mix(project.charCodeAt(i)); // high half 0: the NUL
  else if (id.length > 0) {
    mix(id.charCodeAt(0) << 16); // low half 0: the NUL
    j = 1;
  } else mix(0);
  const n = id.length;
  for (; j + 1 < n; j += 2) mix(id.charCodeAt(j) | (id.charCodeAt(j + 1) << 16));
  if (j < n) mix(id.charCodeAt(j) | 0x10000); // the odd tail, marked so it differs from a padded word
  const len = pn + 1 + n;
  h1 = fmix(a ^ len);
  h2 = fmix(b ^ len ^ 0x5bd1e995);
}

let a = 0;
let b = 0;

function mix(word: number): void {
  let x = Math.imul(word, C1);
  x = (x << 15) | (x >>> 17);
  x = Math.imul(x, C2);
  a ^= x;
  a = (a << 13) | (a >>> 19);
  a = (Math.imul(a, 5) + 0xe6546b64) | 0;
  b ^= x;
  b = (b << 13) | (b >>> 19);
  b = (Math.imul(b, 5) + 0x52dce729) | 0;
}

/** The hashes hashKey left (for tests). */
export function lastHashes(): [number, number] {
  return [h1 >>> 0, h2 >>> 0];
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
