import { describe, expect, it } from 'vitest';
import { effectiveLimit, RateLimiter } from './rate-limit.js';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('RateLimiter (token bucket, injected clock)', () => {
  it('lets a full minute\'s budget through at once, then refuses with the seconds to wait', () => {
    const c = clock();
    const rl = new RateLimiter(c.now);
    for (let i = 0; i < 60; i++) expect(rl.take('k', 60).retryAfterS).toBe(0);
    const r = rl.take('k', 60);
    expect(r.retryAfterS).toBe(1); // 60/min refills one a second
    expect(r.remaining).toBe(0);
  });

  it('refills continuously at limit/60 s, never above the limit', () => {
    const c = clock();
    const rl = new RateLimiter(c.now);
    expect(rl.take('k', 6, 6).retryAfterS).toBe(0);
    expect(rl.take('k', 6).retryAfterS).toBe(10); // one token per 10 s
    c.advance(9_999);
    expect(rl.take('k', 6).retryAfterS).toBe(1);
    c.advance(1);
    expect(rl.take('k', 6).retryAfterS).toBe(0);
    c.advance(3_600_000); // an hour idle: still only one minute's worth
    expect(rl.take('k', 6, 6).retryAfterS).toBe(0);
    expect(rl.take('k', 6).retryAfterS).toBeGreaterThan(0);
  });

  it('has no window edge: twice the limit never passes within a minute', () => {
    const c = clock();
    const rl = new RateLimiter(c.now);
    let passed = 0;
    // 10 requests a second for two minutes against 100/min
    const seen: number[] = [];
    for (let ms = 0; ms < 120_000; ms += 100) {
      if (rl.take('k', 100).retryAfterS === 0) {
        passed++;
        seen.push(ms);
      }
      c.advance(100);
    }
    // in any 60 s window at most burst (100) + refill (100)… and over 2 min at most 100 + 200
    expect(passed).toBeLessThanOrEqual(300);
    for (let i = 0; i < seen.length; i++) {
      const inWindow = seen.filter((t) => t >= seen[i] && t < seen[i] + 60_000).length;
      expect(inWindow).toBeLessThanOrEqual(200);
    }
  });

  it('weights costs: events are taken n at a time', () => {
    const c = clock();
    const rl = new RateLimiter(c.now);
    expect(rl.take('e', 1000, 600).retryAfterS).toBe(0);
    expect(rl.take('e', 1000, 300).retryAfterS).toBe(0);
    const r = rl.take('e', 1000, 300); // 100 left, 200 missing → 12 s at 1000/min
    expect(r.retryAfterS).toBe(12);
    expect(r.remaining).toBe(100);
    c.advance(12_000);
    expect(rl.take('e', 1000, 300).retryAfterS).toBe(0);
  });

  it('lets a batch bigger than the whole budget through from a full bucket, then makes the key pay it back', () => {
    const c = clock();
    const rl = new RateLimiter(c.now);
    expect(rl.take('e', 100, 500).retryAfterS).toBe(0); // full bucket: allowed, 400 in debt
    const r = rl.take('e', 100, 1);
    expect(r.retryAfterS).toBe(241); // 401 tokens to refill at 100/min
    c.advance(240_000);
    expect(rl.take('e', 100, 1).retryAfterS).toBe(1);
    c.advance(1_000);
    expect(rl.take('e', 100, 1).retryAfterS).toBe(0);
    // a too-big batch on a partly used bucket waits for the bucket to be full
    expect(rl.take('e', 100, 500).retryAfterS).toBeGreaterThan(0);
  });

  it('0 (or a negative / non-finite limit) means unlimited', () => {
    const rl = new RateLimiter(() => 0);
    for (let i = 0; i < 10_000; i++) expect(rl.take('k', 0).retryAfterS).toBe(0);
    expect(rl.take('k', -5, 10).retryAfterS).toBe(0);
    expect(rl.take('k', Number.NaN).retryAfterS).toBe(0);
    expect(rl.size).toBe(0);
  });

  it('keeps keys apart', () => {
    const rl = new RateLimiter(() => 0);
    expect(rl.take('a', 1).retryAfterS).toBe(0);
    expect(rl.take('a', 1).retryAfterS).toBeGreaterThan(0);
    expect(rl.take('b', 1).retryAfterS).toBe(0);
  });

  it('rescales a bucket when the key\'s limit changes (PATCH takes effect at once)', () => {
    const c = clock();
    const rl = new RateLimiter(c.now);
    for (let i = 0; i < 10; i++) rl.take('k', 10);
    expect(rl.take('k', 10).retryAfterS).toBeGreaterThan(0);
    // raised to 1000/min: the bucket was empty, so it refills at the new rate (1000/min ≈ 16.7/s)
    c.advance(1_000);
    for (let i = 0; i < 16; i++) expect(rl.take('k', 1000).retryAfterS).toBe(0);
    // lowered to 2/min: whatever is left is scaled down, never above the new limit
    c.advance(60_000);
    expect(rl.take('k', 2).retryAfterS).toBe(0);
    expect(rl.take('k', 2).retryAfterS).toBe(0);
    expect(rl.take('k', 2).retryAfterS).toBe(30);
  });

  it('does not refill when the clock steps back', () => {
    const c = clock();
    const rl = new RateLimiter(c.now);
    rl.take('k', 1);
    c.advance(-30_000);
    expect(rl.take('k', 1).retryAfterS).toBeGreaterThan(0);
  });

  it('forgets full buckets and stays under its bucket cap', () => {
    const c = clock();
    const rl = new RateLimiter(c.now, 1000);
    for (let i = 0; i < 5000; i++) rl.take(`k${i}`, 10);
    expect(rl.size).toBeLessThanOrEqual(1000);
    c.advance(60_000); // every bucket refilled: the next sweep drops them all
    for (let i = 0; i < 1024; i++) rl.take(`n${i}`, 10);
    expect(rl.size).toBeLessThanOrEqual(1024);
  });
});

describe('effectiveLimit', () => {
  it('prefers the key\'s own value (0 included), else the default for keys or for the admin token', () => {
    expect(effectiveLimit(5, false, 100, 0)).toBe(5);
    expect(effectiveLimit(0, false, 100, 0)).toBe(0);
    expect(effectiveLimit(undefined, false, 100, 7)).toBe(100);
    expect(effectiveLimit(null, true, 100, 7)).toBe(7);
    expect(effectiveLimit(undefined, true, 100, 0)).toBe(0);
  });
});
