// Live tail across engine nodes: an event ingested on node B must reach a tail open on node A within
// a second. While at least one tail is open here, this polls the shared event store for events
// received recently and hands on those this node did not write itself (its own reach the tail
// straight from the writer). Polling the store, not a message bus, because the store already has
// every durable event from every node and costs nothing while no tail is open; PostgreSQL NOTIFY would
// carry every event of every node through the control database (8 KB payloads) whether anyone
// watches or not.
import type { EventRow } from '../event.js';

export interface RemoteTailOptions {
  receivedSince(since: number, limit: number): Promise<EventRow[]>;
  /** How often the store is read while tails are open. */
  pollMs?: number;
  /** Events reach the store up to this long after their received_at (group commit, retries): each
   *  poll reads again this far back, and ids already passed on are skipped. */
  overlapMs?: number;
  /** Rows read per poll at most. */
  limit?: number;
  log?: (msg: string, e: unknown) => void;
}

export class RemoteTail {
  /** ids this node wrote or already passed on, with when (pruned past the overlap). */
  private readonly seen = new Map<string, number>();
  private watermark = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private active = 0;
  private failing = false;
  private readonly pollMs: number;
  private readonly overlapMs: number;

  constructor(private readonly opts: RemoteTailOptions, private readonly deliver: (rows: EventRow[]) => void) {
    this.pollMs = opts.pollMs ?? 100;
    this.overlapMs = opts.overlapMs ?? 5000;
  }

  /** Rows this node wrote: never passed on twice. */
  local(rows: readonly EventRow[]): void {
    if (this.active === 0) return;
    const now = Date.now();
    for (const r of rows) this.seen.set(r.id, now);
  }

  /** A tail opened (true) or closed (false). Polling runs while one is open. */
  tailOpen(open: boolean): void {
    this.active += open ? 1 : -1;
    if (this.active > 0 && !this.timer) {
      this.watermark = Date.now() - this.overlapMs;
      this.timer = setInterval(() => void this.poll(), this.pollMs);
      this.timer.unref();
    } else if (this.active === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.seen.clear();
    }
  }

  private async poll(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const now = Date.now();
      const since = Math.min(this.watermark, now - this.overlapMs);
      const rows = await this.opts.receivedSince(since, this.opts.limit ?? 20_000);
      this.failing = false;
      const fresh: EventRow[] = [];
      for (const r of rows) {
        if (this.seen.has(r.id)) continue;
        this.seen.set(r.id, now);
        fresh.push(r);
      }
      // the next read starts at the overlap behind the newest row seen (or now, when none)
      const newest = rows.length ? Number(rows[rows.length - 1].received_at) : now;
      this.watermark = Math.max(since, Math.min(newest, now) - this.overlapMs);
      for (const [id, t] of this.seen) {
        if (t >= now - 2 * this.overlapMs) break; // insertion order: the rest are newer
        this.seen.delete(id);
      }
      if (fresh.length && this.active > 0) this.deliver(fresh);
    } catch (e) {
      if (!this.failing) this.opts.log?.('live tail: reading other nodes\' events failed', e);
      this.failing = true;
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
