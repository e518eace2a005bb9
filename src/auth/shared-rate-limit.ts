// Per-key rate limits shared by every engine node of a cluster: the token buckets of rate-limit.ts,
// kept in PostgreSQL (`rate_buckets`) instead of each node's memory, so N nodes let a key through at
// its limit, not N times it. Where and why: PostgreSQL is the one store every node already shares and
// writes atomically; one row per budget, refilled by the database's clock (nodes' clocks may differ).
//
// Not one round trip per request: a node takes a *lease* — up to LEASE_FRACTION of the key's
// per-minute budget (at least what the request costs) — in one atomic UPDATE, and spends it locally
// until it runs out. Tokens leased are taken from the shared bucket, so the nodes together never let
// through more than the bucket allows plus what they hold in leases: at most one lease per node
// (5% of a minute's budget; a key at ≤ 20 a minute leases one token at a time, i.e. exactly). A key
// requesting faster than it leases waits for one lease at a time per node (single flight); a key
// refused is refused on that node without asking again until enough has refilled for that cost.
// PostgreSQL unreachable: the node counts alone (the in-memory limiter) until it answers again.
// Leases a node has stopped spending (idle LEASE_IDLE_MS, or the node stopping) go back to the
// bucket, and buckets that have refilled to full are deleted (a missing row is a full bucket).
import type { SqlDb } from '../storage/sql-db.js';
import { RateLimiter, type TakeResult } from './rate-limit.js';

/** What the auth hook and the ingest routes take budget from: in memory, or shared. */
export interface Budgets {
  take(key: string, perMinute: number, cost?: number): TakeResult | Promise<TakeResult>;
}

export const LEASE_FRACTION = 0.05;
const MINUTE = 60_000;
/** After a failed lease, the node counts alone this long before it asks PostgreSQL again. */
const FALLBACK_MS = 5000;
/** A lease not spent from this long goes back to its bucket. */
export const LEASE_IDLE_MS = 10_000;
/** How often idle leases are returned and full buckets deleted. */
const HOUSEKEEPING_MS = 30_000;

interface Lease {
  tokens: number;
  limit: number;
  usedAt: number;
}

// The bucket, refilled to the database's now: the same arithmetic as RateLimiter.refill, in SQL.
// $1 key, $2 limit per minute, $3 need (this request's cost beyond the lease left), $4 want (the lease).
const NOW = '(extract(epoch from now()) * 1000)::bigint';
const REFILLED = `LEAST($2::float8, (CASE WHEN b.per_minute = $2::float8 THEN b.tokens ELSE b.tokens / b.per_minute * $2::float8 END)
  + GREATEST(0, ${NOW} - b.at_ms) * $2::float8 / ${MINUTE}.0)`;
// a cost above the whole budget goes through on a full bucket and is paid back as debt (rate-limit.ts)
const GRANT = `CASE WHEN ${REFILLED} >= $3::float8 OR ($3::float8 > $2::float8 AND ${REFILLED} >= $2::float8)
  THEN LEAST($4::float8, GREATEST($3::float8, ${REFILLED})) ELSE 0 END`;
const TAKE_SQL = `INSERT INTO rate_buckets AS b (key, tokens, per_minute, at_ms, granted)
  VALUES ($1, $2::float8 - LEAST($4::float8, GREATEST($3::float8, $2::float8)), $2::float8, ${NOW}, LEAST($4::float8, GREATEST($3::float8, $2::float8)))
  ON CONFLICT (key) DO UPDATE SET granted = ${GRANT}, tokens = ${REFILLED} - (${GRANT}), per_minute = $2::float8, at_ms = GREATEST(b.at_ms, ${NOW})
  RETURNING granted, tokens`;
const RETURN_SQL = 'UPDATE rate_buckets SET tokens = LEAST(per_minute, tokens + $2::float8) WHERE key = $1 AND per_minute = $3::float8';
// refilled to full by now: the same as no row (TAKE_SQL starts a missing key at a full bucket)
const PRUNE_SQL = `DELETE FROM rate_buckets WHERE tokens + GREATEST(0, ${NOW} - at_ms) * per_minute / ${MINUTE}.0 >= per_minute`;

export class SharedRateLimiter implements Budgets {
  readonly stats = { leases: 0, localTakes: 0, fallbacks: 0, returned: 0 };
  private readonly leases = new Map<string, Lease>();
  /** A key refused: a cost at least this large is refused here until then, without asking again. */
  private readonly refused = new Map<string, { until: number; need: number; limit: number }>();
  private readonly inflight = new Map<string, Promise<unknown>>();
  private readonly local = new RateLimiter();
  private fallbackUntil = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly db: SqlDb, private readonly log: (msg: string, err: unknown) => void = () => undefined) {
    if (db.dialect !== 'postgres') throw new Error('shared rate limits need PostgreSQL');
  }

  /** Returns idle leases and deletes full buckets every HOUSEKEEPING_MS. */
  start(): void {
    this.timer ??= setInterval(() => void this.housekeeping().catch((e) => this.log('rate limits: housekeeping failed', e)), HOUSEKEEPING_MS);
    this.timer.unref();
  }

  /** Stops the housekeeping and gives every unspent lease back. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.returnLeases(0).catch((e) => this.log('rate limits: leases could not be returned', e));
  }

  async housekeeping(): Promise<{ returned: number; pruned: number }> {
    const returned = await this.returnLeases(LEASE_IDLE_MS);
    const pruned = (await this.db.run(PRUNE_SQL)).changes;
    return { returned, pruned };
  }

  /** Gives the whole tokens of leases unspent for idleMs back to their buckets; returns how many leases. */
  async returnLeases(idleMs: number): Promise<number> {
    const before = Date.now() - idleMs;
    const back: [string, Lease][] = [];
    for (const [key, lease] of this.leases) {
      if (lease.usedAt > before || this.inflight.has(key)) continue;
      // out of the map first: nothing spends a lease on its way back
      this.leases.delete(key);
      if (lease.tokens >= 1) back.push([key, lease]);
    }
    for (const [key, lease] of back) await this.db.run(RETURN_SQL, [key, Math.floor(lease.tokens), lease.limit]);
    this.stats.returned += back.length;
    return back.length;
  }

  take(key: string, perMinute: number, cost = 1): TakeResult | Promise<TakeResult> {
    if (!(perMinute > 0) || !Number.isFinite(perMinute)) return { retryAfterS: 0, remaining: Infinity };
    const need = Math.max(0, cost);
    const here = this.answerHere(key, perMinute, need);
    if (here) return here;
    if (Date.now() < this.fallbackUntil) return this.local.take(key, perMinute, cost);
    return this.leaseAndTake(key, perMinute, need);
  }

  /** From this node's lease, or its record of a refusal; undefined when PostgreSQL must be asked. */
  private answerHere(key: string, perMinute: number, need: number): TakeResult | undefined {
    const lease = this.leases.get(key);
    if (lease && lease.limit === perMinute && lease.tokens >= need) {
      lease.tokens -= need;
      lease.usedAt = Date.now();
      this.stats.localTakes++;
      return { retryAfterS: 0, remaining: Math.floor(lease.tokens) };
    }
    const no = this.refused.get(key);
    if (no) {
      const now = Date.now();
      if (now >= no.until || no.limit !== perMinute) this.refused.delete(key);
      else if (need >= no.need) return { retryAfterS: Math.max(1, Math.ceil((no.until - now) / 1000)), remaining: 0 };
    }
    return undefined;
  }

  private async leaseAndTake(key: string, perMinute: number, need: number): Promise<TakeResult> {
    // one lease at a time per key: requests arriving meanwhile wait for it and are answered from it
    for (let waited = this.inflight.get(key); waited; waited = this.inflight.get(key)) {
      await waited.catch(() => undefined);
      const here = this.answerHere(key, perMinute, need);
      if (here) return here;
    }
    const p = this.lease(key, perMinute, need);
    this.inflight.set(key, p);
    try {
      return await p;
    } catch (e) {
      if (Date.now() >= this.fallbackUntil) this.log('rate limits: PostgreSQL did not answer; counting on this node alone for a while', e);
      this.fallbackUntil = Date.now() + FALLBACK_MS;
      this.stats.fallbacks++;
      return this.local.take(key, perMinute, need);
    } finally {
      this.inflight.delete(key);
    }
  }

  private async lease(key: string, perMinute: number, cost: number): Promise<TakeResult> {
    const held = this.leases.get(key);
    // what is left of a lease for the same limit pays part of the cost; a changed limit's lease is dropped
    const left = held && held.limit === perMinute ? held.tokens : 0;
    const need = Math.max(0, cost - left);
    const want = Math.max(need, Math.ceil(perMinute * LEASE_FRACTION));
    const [r] = await this.db.all<{ granted: number; tokens: number }>(TAKE_SQL, [key, perMinute, need, want]);
    this.stats.leases++;
    const granted = Number(r.granted);
    if (granted > 0) {
      const lease = { tokens: left + granted - cost, limit: perMinute, usedAt: Date.now() };
      this.leases.set(key, lease);
      return { retryAfterS: 0, remaining: Math.max(0, Math.floor(lease.tokens)) };
    }
    const missing = Math.min(need, perMinute) - Number(r.tokens);
    const waitMs = (missing * MINUTE) / perMinute;
    // a key past its limit keeps asking: it is answered here until enough has refilled
    this.refused.set(key, { until: Date.now() + waitMs, need: cost, limit: perMinute });
    return { retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)), remaining: 0 };
  }
}
