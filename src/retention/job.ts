// The retention job: at start and then every MONITORING_RETENTION_INTERVAL_MS (at most an hour), on
// one node at a time (a lease in the control store), it removes what is past each project's
// retention from the event store and from the alert history.
import { randomBytes } from 'node:crypto';
import type { EventStore } from '../storage/event-store.js';
import type { SqlDb } from '../storage/sql-db.js';
import { AlertStore } from '../alerts/store.js';
import { enforceEventRetention, type TableReport } from './event-retention.js';
import { pruneAlertHistory, type HistoryReport } from './history-retention.js';
import type { RetentionPolicy } from './policy.js';

export interface RetentionReport {
  ran_at: string;
  took_ms: number;
  default_days: number;
  overrides: Record<string, number>;
  events: TableReport[];
  history: HistoryReport;
}

export interface RetentionDeps {
  events: EventStore;
  meta: SqlDb;
  defaultDays: number;
  /** Projects whose settings override the default. */
  overrides: () => ReadonlyMap<string, number>;
  intervalMs: number;
  /** The deadline of each query the job runs. */
  queryTimeoutMs: number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

const LEASE = 'retention';

export class RetentionJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionReport> | undefined;
  private readonly holder = `node-${randomBytes(6).toString('hex')}`;
  private readonly leases: AlertStore;
  last: RetentionReport | undefined;

  constructor(private readonly deps: RetentionDeps) {
    this.leases = new AlertStore(deps.meta);
  }

  policy(): RetentionPolicy {
    return { defaultDays: this.deps.defaultDays, overrides: this.deps.overrides() };
  }

  /** Runs now (or joins the run under way). */
  run(now = Date.now()): Promise<RetentionReport> {
    this.running ??= this.enforce(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async enforce(now: number): Promise<RetentionReport> {
    const started = Date.now();
    const policy = this.policy();
    const events = await enforceEventRetention(this.deps.events.transport, policy, now, { queryTimeoutMs: this.deps.queryTimeoutMs });
    const history = await pruneAlertHistory(this.deps.meta, policy, now);
    this.last = {
      ran_at: new Date(started).toISOString(), took_ms: Date.now() - started, default_days: policy.defaultDays,
      overrides: Object.fromEntries(policy.overrides), events, history,
    };
    return this.last;
  }

  /** The periodic run; another node holding the lease runs it instead. */
  private async tick(): Promise<void> {
    try {
      const now = Date.now();
      if (!(await this.leases.acquireLease(LEASE, this.holder, now, this.deps.intervalMs * 2))) return;
      await this.run(now);
    } catch (e) {
      this.deps.log?.('retention run failed', { err: String((e as Error)?.message ?? e) });
    }
  }

  /** The first run a minute after start (or sooner with a shorter interval), then every interval. */
  start(firstDelayMs = Math.min(60_000, this.deps.intervalMs)): void {
    const loop = (ms: number) => {
      this.timer = setTimeout(() => void this.tick().finally(() => this.timer && loop(this.deps.intervalMs)), ms);
      this.timer.unref();
    };
    loop(firstDelayMs);
  }

  /** Stops the timer; a run under way gets a few seconds to finish (what it did is kept either way). */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
  }
}
