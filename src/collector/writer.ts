// The group-commit writer. Concurrent requests hand their rows here; one storage insert carries the
// rows of every request that arrived since the last one, and each request is answered only once its
// rows are written. While an insert runs the next group gathers, so under load inserts grow on their
// own — bigger inserts are cheaper per row than any one request's batch.
import type { EventRow } from '../event.js';

export interface WriterStore {
  insert(rows: readonly EventRow[]): Promise<void>;
  /** Pass the rows' times too: the store looks for each id at its event's time (storage/event-store.ts). */
  existingIds(pairs: readonly { project_id: string; id: string; timestamp?: number; received_at?: number }[]): Promise<Set<string>>;
}

export interface WriterOptions {
  maxEvents: number;
  intervalMs: number;
  maxQueued: number;
  /** Longest a group waits for announced requests still on their way (see announce()). */
  maxWaitMs?: number;
}

export interface WriteResult {
  /** Rows not stored because an event with the same project and id was stored before. */
  duplicates: number;
}

export class OverloadedError extends Error {
  constructor(readonly retryAfterS: number) {
    super('the engine is writing as fast as it can; retry shortly');
  }
}

interface PendingWrite {
  rows: EventRow[];
  /** Client-supplied ids must be checked against what is stored; generated ones are unique. */
  checkIds: boolean;
  resolve: (r: WriteResult) => void;
  reject: (e: unknown) => void;
}

export type WrittenListener = (rows: readonly EventRow[]) => void;

export class GroupCommitWriter {
  private pending: PendingWrite[] = [];
  private pendingRows = 0;
  private flushing = false;
  private timer: NodeJS.Timeout | undefined;
  private groupStarted = 0;
  /** Requests whose bodies are being received or parsed: their rows are about to arrive. */
  private arriving = 0;
  private closed = false;
  private readonly listeners: WrittenListener[] = [];
  readonly stats = { flushes: 0, rowsWritten: 0, duplicates: 0, lastFlushMs: 0, lastFlushRows: 0, failures: 0 };

  constructor(private readonly store: WriterStore, private readonly opts: WriterOptions) {}

  /** Called with each group after it is durable (live tail, alerts, aggregates). */
  onWritten(listener: WrittenListener): void {
    this.listeners.push(listener);
  }

  get queued(): number {
    return this.pendingRows;
  }

  /**
   * An ingest request has started; its rows will follow. Closed-loop clients all wait on the same
   * flush and send their next batch together right after it, so a group that waits for the
   * requests already on their way is far bigger — and far cheaper per row — than one that does
   * not. The returned function must be called once the rows are handed over (or the request ended).
   */
  announce(): () => void {
    this.arriving++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.arriving--;
    };
  }

  write(rows: EventRow[], checkIds: boolean): Promise<WriteResult> {
    if (this.closed) return Promise.reject(new Error('the writer is closed'));
    if (this.pendingRows + rows.length > this.opts.maxQueued && this.pendingRows > 0) {
      return Promise.reject(new OverloadedError(1));
    }
    return new Promise<WriteResult>((resolve, reject) => {
      this.pending.push({ rows, checkIds, resolve, reject });
      this.pendingRows += rows.length;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.flushing) return; // the running flush picks the group up when it ends
    if (this.pendingRows >= this.opts.maxEvents || this.opts.intervalMs === 0) {
      this.flushSoon();
    } else if (!this.timer) {
      this.groupStarted = performance.now();
      this.timer = setTimeout(() => this.onTimer(), this.opts.intervalMs);
    }
  }

  private onTimer(): void {
    this.timer = undefined;
    const waited = performance.now() - this.groupStarted;
    if (this.arriving > 0 && waited < (this.opts.maxWaitMs ?? 50) && this.pendingRows < this.opts.maxEvents) {
      this.timer = setTimeout(() => this.onTimer(), 1);
      return;
    }
    this.flushSoon();
  }

  private flushSoon(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.flushing || this.pending.length === 0) return;
    void this.flush();
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    const group = this.takeGroup();
    const started = performance.now();
    try {
      const dupCounts = await this.dropDuplicates(group);
      const rows: EventRow[] = [];
      for (const w of group) for (const r of w.rows) rows.push(r);
      await this.store.insert(rows);
      this.stats.flushes++;
      this.stats.rowsWritten += rows.length;
      this.stats.lastFlushRows = rows.length;
      this.stats.lastFlushMs = performance.now() - started;
      group.forEach((w, i) => w.resolve({ duplicates: dupCounts[i] }));
      for (const l of this.listeners) {
        try {
          l(rows);
        } catch {
          // a listener's failure must not fail a write that is already durable
        }
      }
    } catch (e) {
      this.stats.failures++;
      for (const w of group) w.reject(e);
    } finally {
      this.flushing = false;
      if (this.pending.length > 0) this.schedule();
    }
  }

  /** Takes up to maxEvents rows' worth of requests (always at least one request). */
  private takeGroup(): PendingWrite[] {
    let n = 0;
    let k = 0;
    while (k < this.pending.length && (k === 0 || n + this.pending[k].rows.length <= this.opts.maxEvents)) {
      n += this.pending[k].rows.length;
      k++;
    }
    const group = this.pending.splice(0, k);
    this.pendingRows -= n;
    return group;
  }

  /** Removes rows whose (project, id) is already stored or appears earlier in this group. */
  private async dropDuplicates(group: PendingWrite[]): Promise<number[]> {
    const counts = new Array<number>(group.length).fill(0);
    if (!group.some((w) => w.checkIds)) return counts;
    const candidates: { project_id: string; id: string }[] = [];
    for (const w of group) if (w.checkIds) for (const r of w.rows) candidates.push(r);
    const stored = await this.store.existingIds(candidates);
    const seen = new Set<string>();
    group.forEach((w, i) => {
      if (!w.checkIds) return;
      const kept = w.rows.filter((r) => {
        const key = `${r.project_id}\u0000${r.id}`;
        if (stored.has(key) || seen.has(key)) return false;
        seen.add(key);
        return true;
      });
      counts[i] = w.rows.length - kept.length;
      this.stats.duplicates += counts[i];
      w.rows = kept;
    });
    return counts;
  }

  /** Writes what is pending, then refuses new writes. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing || this.pending.length > 0) {
      if (!this.flushing) this.flushSoon();
      await new Promise((r) => setTimeout(r, 2));
    }
  }
}
