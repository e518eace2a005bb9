// Per-key rate limits: one token bucket per key and budget (requests, events). Pure: the clock is
// injected, nothing else is touched, so the arithmetic is unit-tested without waiting.
//
// A bucket holds up to one minute's budget and refills continuously (limit / 60 s), so a key may
// burst its whole minute at once and then goes on at the steady rate; there is no window edge at
// which twice the limit gets through (the flaw of fixed windows). A cost larger than the whole
// budget (a 5,000-event batch on a 1,000 events/minute key) is let through when the bucket is
// full and paid back as debt before the key may send again; otherwise such a batch could never
// be sent and a retrying client would loop forever.

export type Clock = () => number;

interface Bucket {
  tokens: number;
  /** The limit the bucket was last filled for: a changed limit rescales it. */
  limit: number;
  at: number;
}

export interface TakeResult {
  /** 0 = allowed (the cost was taken); otherwise whole seconds until the cost would fit. */
  retryAfterS: number;
  /** Budget left after this call (floored; 0 when in debt). */
  remaining: number;
}

const MINUTE = 60_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private takes = 0;

  constructor(private readonly clock: Clock = Date.now, private readonly maxBuckets = 100_000) {}

  /**
   * Takes `cost` from `key`'s budget of `perMinute`. `perMinute` 0 (or less, or not finite) = unlimited.
   */
  take(key: string, perMinute: number, cost = 1): TakeResult {
    if (!(perMinute > 0) || !Number.isFinite(perMinute)) return { retryAfterS: 0, remaining: Infinity };
    const now = this.clock();
    let b = this.buckets.get(key);
    if (!b) {
      if (++this.takes % 1024 === 0 || this.buckets.size >= this.maxBuckets) this.sweep(now);
      b = { tokens: perMinute, limit: perMinute, at: now };
      this.buckets.set(key, b);
    } else {
      this.refill(b, now, perMinute);
    }
    const need = Math.max(0, cost);
    if (b.tokens >= need || (need > perMinute && b.tokens >= perMinute)) {
      b.tokens -= need;
      return { retryAfterS: 0, remaining: Math.max(0, Math.floor(b.tokens)) };
    }
    // how long until enough has refilled: a cost above the budget waits for a full bucket
    const missing = Math.min(need, perMinute) - b.tokens;
    const waitMs = (missing * MINUTE) / perMinute;
    return { retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)), remaining: Math.max(0, Math.floor(b.tokens)) };
  }

  /** Forgets a key's buckets (a revoked key). */
  forget(key: string): void {
    this.buckets.delete(key);
  }

  get size(): number {
    return this.buckets.size;
  }

  private refill(b: Bucket, now: number, perMinute: number): void {
    if (b.limit !== perMinute) {
      // keep the fraction used: a key raised from 10 to 1000/min that had used half has 500 left
      b.tokens = (b.tokens / b.limit) * perMinute;
      b.limit = perMinute;
    }
    const elapsed = Math.max(0, now - b.at); // a clock that steps back refills nothing
    b.tokens = Math.min(perMinute, b.tokens + (elapsed * perMinute) / MINUTE);
    b.at = now;
  }

  /** Drops buckets that have refilled completely: a full bucket is the same as no bucket. */
  private sweep(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) * b.limit) / MINUTE >= b.limit) this.buckets.delete(k);
    }
    // still over the cap (many keys all busy): forget the oldest ones; they get a fresh budget
    if (this.buckets.size >= this.maxBuckets) {
      const drop = this.buckets.size - Math.floor(this.maxBuckets * 0.9);
      let i = 0;
      for (const k of this.buckets.keys()) {
        if (i++ >= drop) break;
        this.buckets.delete(k);
      }
    }
  }
}

/** The limit that applies to a principal: its own when set, else the configured default. 0 = unlimited. */
export function effectiveLimit(own: number | undefined | null, isAdminToken: boolean, keyDefault: number, adminDefault: number): number {
  if (own !== undefined && own !== null) return own;
  return isAdminToken ? adminDefault : keyDefault;
}
