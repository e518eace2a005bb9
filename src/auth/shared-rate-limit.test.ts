// Shared rate limits on the machine's PostgreSQL (a fresh database): two limiters (two engine nodes)
// on one database let a key through at its limit, not twice it; large limits are leased, not asked
// for per request; a cost above the whole budget passes on a full bucket and is paid back.
import { afterAll, describe, expect, it } from 'vitest';
import { twoPgNodes } from '../../test/control-db.js';
import type { SqlDb } from '../storage/sql-db.js';
import { LEASE_FRACTION, SharedRateLimiter } from './shared-rate-limit.js';

const pgNodes = twoPgNodes();
afterAll(() => pgNodes.cleanup());

async function twoNodes(): Promise<[SharedRateLimiter, SharedRateLimiter, SqlDb]> {
  const [a, b] = await pgNodes.open();
  return [new SharedRateLimiter(a), new SharedRateLimiter(b), a];
}

async function bucket(db: SqlDb, key: string): Promise<number | undefined> {
  const [r] = await db.all<{ tokens: number }>('SELECT tokens FROM rate_buckets WHERE key = ?', [key]);
  return r ? Number(r.tokens) : undefined;
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

  it('a stopping node gives its unspent lease back; an idle one too, and only once', async () => {
    const [A, B, db] = await twoNodes();
    expect((await A.take('ev:back', 2000, 1)).retryAfterS).toBe(0);
    // A leased 100 and spent 1: the bucket holds 1,900 (and what refilled since)
    expect(await bucket(db, 'ev:back')).toBeLessThan(1901);
    expect(await A.returnLeases(60_000)).toBe(0); // not idle yet
    await A.close();
    expect(A.stats.returned).toBe(1);
    expect(await bucket(db, 'ev:back')).toBeGreaterThanOrEqual(1999);
    // an idle lease (idle 0 ms: every lease) goes back once; a key whose lease is spent has none
    expect((await B.take('ev:back', 2000, 1)).retryAfterS).toBe(0);
    expect(await bucket(db, 'ev:back')).toBeLessThan(1901);
    expect(await B.returnLeases(0)).toBe(1);
    expect(await B.returnLeases(0)).toBe(0);
    // 99 back on the ~1,900 left at B's lease: the whole tokens of the lease, refill aside
    expect(await bucket(db, 'ev:back')).toBeGreaterThanOrEqual(1998);
    // and B leases again when asked
    expect((await B.take('ev:back', 2000, 1)).retryAfterS).toBe(0);
    expect(B.stats.leases).toBe(2);
  });

  it('buckets refilled to full are deleted; a bucket still in debt or refilling is kept', async () => {
    const [A, , db] = await twoNodes();
    await A.take('rq:full', 20, 1);
    await A.take('rq:refilling', 20, 1);
    await A.take('ev:debt', 100, 500);
    // as if the first had been taken two minutes ago (20 a minute refills 19 → 20 in 3 s), and the
    // debt too (400 owed at 100 a minute: 4 minutes to pay back)
    await db.run('UPDATE rate_buckets SET at_ms = at_ms - 120000 WHERE key IN (?, ?)', ['rq:full', 'ev:debt']);
    const { pruned } = await A.housekeeping();
    expect(pruned).toBe(1);
    expect(await bucket(db, 'rq:full')).toBeUndefined();
    expect(await bucket(db, 'rq:refilling')).toBe(19);
    expect(await bucket(db, 'ev:debt')).toBe(-400);
    // a deleted bucket is a full one: the next take starts from the whole budget
    expect((await A.take('rq:full', 20, 1)).retryAfterS).toBe(0);
    await A.close();
  });
});
