// Feeds the log to the stages that react to events — instant alert rules, error groups (new_group,
// regression) and the routing of engine-raised alerts — in log order, and moves the observer's place
// in the checkpoint only once they are done. After a crash, whatever lies past that place is fed
// again: each stage is idempotent (an alert group already firing is not notified twice, an alert id
// already routed is not routed again), so an acknowledged event always reaches its alert, once.
import type { EventRow } from '../event.js';
import type { Cursor } from './cursor.js';
import { failpoint } from './failpoint.js';
import { comparePos, FLAG_ALERT, type LogRecord, type Pos } from './record.js';

export interface ObserveContext {
  /** The rows were written before this start and may have been observed already. */
  replay: boolean;
}

export type Observer = (rows: readonly EventRow[], ctx: ObserveContext) => Promise<unknown> | void;
export type AlertRouter = (row: EventRow) => Promise<unknown>;

export interface ObserverRunnerOptions {
  openedAt: Pos;
  log: (level: 'warn' | 'error' | 'info', obj: object, msg: string) => void;
  onObserved: () => void;
  /** Least time between the starts of two blocks (GATHER_MS when not set). */
  gatherMs?: number;
}

const BLOCK_ROWS = 10_000;
const ATTEMPTS = 3;
/**
 * A block that records new error groups commits a control-store transaction: with SQLite an fsync on
 * the event loop. Under a stream of requests, blocks are at least this far apart, so their rows are
 * observed (and committed) together instead of one transaction per request; a record arriving after
 * a quiet spell is observed at once.
 */
export const GATHER_MS = 100;

export class ObserverRunner {
  private readonly observers: Observer[] = [];
  private router: AlertRouter | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  private deadline = Infinity;
  readonly stats = { records: 0, failures: 0 };

  constructor(private readonly cursor: Cursor, private readonly opts: ObserverRunnerOptions) {}

  add(o: Observer): void {
    this.observers.push(o);
  }

  routeAlertsWith(r: AlertRouter): void {
    this.router = r;
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    this.deadline = Date.now() + deadlineMs;
    if (this.running) await Promise.race([this.running, new Promise((r) => setTimeout(r, deadlineMs + 100).unref())]);
  }

  private async loop(): Promise<void> {
    const gatherMs = this.opts.gatherMs ?? GATHER_MS;
    let lastStart = -Infinity;
    while (true) {
      if (this.stopping && (Date.now() >= this.deadline || this.cursor.caughtUp)) return;
      await this.cursor.waitForRecords(this.stopping ? 0 : 200);
      const early = lastStart + gatherMs - Date.now();
      if (early > 0 && !this.stopping) await new Promise((r) => setTimeout(r, early));
      const started = Date.now();
      let recs: LogRecord[];
      try {
        recs = await this.cursor.peek(BLOCK_ROWS, 16 << 20);
      } catch (e) {
        this.opts.log('error', { err: String(e) }, 'the write-ahead log could not be read by the observers; retrying');
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (recs.length === 0) continue;
      lastStart = started;
      await this.observe(recs);
      failpoint.hit('observer-after-observe');
      this.cursor.commit(recs[recs.length - 1]);
      this.stats.records += recs.length;
      this.opts.onObserved();
    }
  }

  private async observe(recs: LogRecord[]): Promise<void> {
    const rows: EventRow[] = [];
    const alerts: EventRow[] = [];
    for (const r of recs) {
      for (const row of r.rows) rows.push(row);
      if (r.flags & FLAG_ALERT) alerts.push(...r.rows);
    }
    const ctx = { replay: comparePos(recs[0].pos, this.opts.openedAt) < 0 };
    for (const o of this.observers) await this.attempt(() => o(rows, ctx));
    if (this.router) for (const a of alerts) await this.attempt(() => this.router!(a));
  }

  /** A failing stage is retried a few times, then skipped with an error: it must not stop the log. */
  private async attempt(fn: () => Promise<unknown> | void): Promise<void> {
    for (let i = 1; ; i++) {
      try {
        await fn();
        return;
      } catch (e) {
        this.stats.failures++;
        if (i >= ATTEMPTS) {
          this.opts.log('error', { err: String((e as Error)?.stack ?? e) }, 'an event observer failed; its rows were skipped for it');
          return;
        }
        await new Promise((r) => setTimeout(r, 100 * i));
      }
    }
  }
}
