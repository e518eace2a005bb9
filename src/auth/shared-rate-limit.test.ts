// Shared rate limits on the machine's PostgreSQL (a fresh database): two limiters (two engine nodes)
// on one database let a key through at its limit, not twice it; large limits are leased, not asked
// for per request; a cost above the whole budget passes on a full bucket and is paid back.
import { afterAll, describe, expect, it } from 'vitest';
import { twoPgNodes } from '../../test/control-db.js';
import { LEASE_FRACTION, SharedRateLimiter } from './shared-rate-limit.js';

const pgNodes = twoPgNodes();
afterAll(() => pgNodes.cleanup());

async function twoNodes(): Promise<[SharedRateLimiter, SharedRateLimiter]> {
  const [a, b] = await pgNodes.open();
  return [new SharedRateLimiter(a), new SharedRateLimiter(b)];
}

describe('SharedRateLimiter (PostgreSQL)', () => {
  it('two nodes together let a key through at its limit, then both refuse with the seconds to wait', async () => {
    const [A, B] = await twoNodes();
    let ok = 0;
    for (let i = 0; i < 30; i++) {
      const r = await (i % 2 ? B : A).take('req:k1', 20);
      if (r.retryAfterS === 0) ok++;
      else expect(r.retryAfterS).toBeGreaterThanOrEqual(1);
    }
    // 20 a minute refills one token every 3 s: the test is far quicker, at most one came back
    expect(ok).toBeGreaterThanOrEqual(20);
    expect(ok).toBeLessThanOrEqual(21);
    const refused = await A.take('req:k1', 20);
    expect(refused.retryAfterS).toBeGreaterThan(0);
    expect(refused.retryAfterS).toBeLessThanOrEqual(3);
    // another key has its own bucket; an unlimited key never asks
    expect((await B.take('req:k2', 20)).retryAfterS).toBe(0);
    expect(A.take('req:k3', 0)).toEqual({ retryAfterS: 0, remaining: Infinity });
  });

  it('concurrent requests on both nodes: the limit holds and a large limit is leased, not asked per request', async () => {
    const [A, B] = await twoNodes();
    const limit = 2000;
    const t0 = Date.now();
    const takes = await Promise.all(Array.from({ length: 3000 }, (_, i) => (i % 2 ? B : A).take('ev:big', limit, 1)));
    const ok = takes.filter((t) => t.retryAfterS === 0).length;
    // what the nodes let through never passes the bucket plus what it refilled meanwhile
    expect(ok).toBeLessThanOrEqual(limit + Math.ceil(((Date.now() - t0) / 60_000) * limit));
    // leases left unspent on the nodes are the only shortfall: at most one each
    expect(ok).toBeGreaterThanOrEqual(limit - 2 * Math.ceil(limit * LEASE_FRACTION));
    // leases of 100, and refusals answered on the node until the bucket has refilled
    expect(A.stats.leases + B.stats.leases).toBeLessThan(100);
    expect(A.stats.localTakes + B.stats.localTakes).toBeGreaterThan(1500);
  });

  it('a cost above the whole budget passes on a full bucket, then the key waits until it is paid back', async () => {
    const [A, B] = await twoNodes();
    expect((await A.take('ev:batch', 100, 500)).retryAfterS).toBe(0);
    const r = await B.take('ev:batch', 100, 1);
    // 400 in debt + 1, at 100 a minute: about 241 s
    expect(r.retryAfterS).toBeGreaterThan(230);
    expect(r.retryAfterS).toBeLessThanOrEqual(242);
  });
});
