// The write path, assembled: ingest → log (answered once durable) → loader → storage, and
// log → observers → alerts. Owns the checkpoint, the read-your-writes barrier for queries, the ids
// known at answer time and the bounded shutdown.
import { mkdirSync } from 'node:fs';
import type { EventRow } from '../event.js';
import { Loader, type WriterStore } from './loader.js';
import { WriteAheadLog, type AppendedListener } from './log.js';
import { ObserverRunner, type AlertRouter, type Observer } from './observe.js';

export interface WritePathOptions {
  dir: string;
  maxBytes: number;
  maxWaitingBytes: number;
  blockRows: number;
  intervalMs: number;
  insertTimeoutMs: number;
  segmentBytes?: number;
  memoryBytes?: number;
  log: (level: 'warn' | 'error' | 'info', obj: object, msg: string) => void;
}

export interface Accepted {
  /** Events of this request whose id was already acknowledged (known at answer time; see README). */
  duplicates: number;
}

/** Client-supplied ids recently made durable, so an immediate resend is answered as a duplicate. */
const RECENT_IDS = 100_000;
const CHECKPOINT_EVERY_MS = 100;
/**
 * How often the log is looked at for a consumed last segment to let go of: when nothing was appended
 * since the last look, or the segment holds ROLL_BYTES already, it is replaced by an empty one (a
 * segment is otherwise deleted only once full, up to 64 MB of loaded records kept for nothing).
 */
const ROLL_CHECK_MS = 1000;
const ROLL_BYTES = 4 << 20;

export class WritePath {
  private readonly recent = new Map<string, true>();
  private checkpointTimer: NodeJS.Timeout | undefined;
  private rollTimer: NodeJS.Timeout | undefined;
  private lastEnd = '';
  private checkpointFailures = 0;
  readonly stats = { answerDuplicates: 0, rolls: 0, releasedAtStop: 0 };

  private constructor(
    readonly log: WriteAheadLog,
    readonly loader: Loader,
    readonly observers: ObserverRunner,
    private readonly opts: WritePathOptions,
  ) {}

  static async open(store: WriterStore, opts: WritePathOptions): Promise<WritePath> {
    mkdirSync(opts.dir, { recursive: true });
    const log = await WriteAheadLog.open({ dir: opts.dir, maxBytes: opts.maxBytes, maxWaitingBytes: opts.maxWaitingBytes, segmentBytes: opts.segmentBytes, memoryBytes: opts.memoryBytes });
    for (const r of log.repairs) {
      opts.log('warn', { segment: r.segment, valid_bytes: r.validBytes, cut_bytes: r.cutBytes, reason: r.reason }, 'write-ahead log: a torn or corrupted tail was cut at the last valid record');
    }
    for (const p of log.problems) opts.log('warn', {}, `write-ahead log: ${p}`);
    let wp: WritePath | undefined;
    const loader = new Loader(log.loader, store, {
      blockRows: opts.blockRows, intervalMs: opts.intervalMs, insertTimeoutMs: opts.insertTimeoutMs,
      quarantineDir: opts.dir, uncertainBefore: log.openedAt, log: opts.log,
      onLoaded: () => wp?.checkpointNow(),
    });
    const observers = new ObserverRunner(log.observer, {
      openedAt: log.openedAt, log: opts.log, onObserved: () => wp?.checkpointSoon(),
    });
    wp = new WritePath(log, loader, observers, opts);
    return wp;
  }

  /** Stages fed from the log (alert rules, error groups), in order, before the observer moves on. */
  observe(o: Observer): void {
    this.observers.add(o);
  }

  routeAlertsWith(r: AlertRouter): void {
    this.observers.routeAlertsWith(r);
  }

  /** Live consumers (the tail): every durable group as it is written. */
  onAppended(l: AppendedListener): void {
    this.log.onAppended(l);
  }

  /** Starts the loader and the observers (which first replay what the last run left). */
  start(): void {
    this.loader.start();
    this.observers.start();
    this.rollTimer ??= setInterval(() => void this.rollIfIdle(), ROLL_CHECK_MS);
    this.rollTimer.unref();
  }

  private async rollIfIdle(): Promise<void> {
    const end = this.log.end;
    const key = `${end.seg}:${end.off}`;
    const idle = key === this.lastEnd;
    this.lastEnd = key;
    if (!idle && end.off < ROLL_BYTES) return;
    if (await this.log.rollIfConsumed()) this.stats.rolls++;
  }

  /**
   * Appends a request's rows; resolves once they are durable. Rows repeating an id of this request,
   * or an id acknowledged shortly before, are left out and counted as duplicates.
   */
  async accept(rows: EventRow[], opts: { clientIds: boolean; alert?: boolean }): Promise<Accepted> {
    let keep = rows;
    let duplicates = 0;
    if (opts.clientIds) {
      const seen = new Set<string>();
      keep = rows.filter((r) => {
        const key = `${r.project_id}\u0000${r.id}`;
        if (seen.has(key) || this.recent.has(key)) return false;
        seen.add(key);
        return true;
      });
      duplicates = rows.length - keep.length;
      this.stats.answerDuplicates += duplicates;
    }
    if (keep.length === 0) return { duplicates };
    await this.log.append(keep, opts);
    if (opts.clientIds) this.remember(keep);
    return { duplicates };
  }

  private remember(rows: readonly EventRow[]): void {
    for (const r of rows) this.recent.set(`${r.project_id}\u0000${r.id}`, true);
    if (this.recent.size > RECENT_IDS) {
      let drop = this.recent.size - RECENT_IDS;
      for (const k of this.recent.keys()) {
        if (drop-- <= 0) break;
        this.recent.delete(k);
      }
    }
  }

  /** Read-your-writes: waits (at most ms) until what was acknowledged before this call is in storage. */
  async visible(ms: number): Promise<boolean> {
    if (ms <= 0) return true;
    // compared with segment ends made equal to the next segment's start: after an idle roll the end
    // is {next, 0} while the loader's place is the old segment's end
    const end = this.log.end;
    if (this.log.loader.passed(end)) return true;
    return this.loader.loadedUpTo(end, ms);
  }

  checkpointNow(): void {
    if (this.checkpointTimer) {
      clearTimeout(this.checkpointTimer);
      this.checkpointTimer = undefined;
    }
    try {
      this.log.checkpoint();
    } catch (e) {
      // the positions stay in memory; the next checkpoint writes them
      if (this.checkpointFailures++ % 100 === 0) this.opts.log('error', { err: String(e) }, 'write-ahead log checkpoint could not be written');
    }
  }

  private checkpointSoon(): void {
    this.checkpointTimer ??= setTimeout(() => this.checkpointNow(), CHECKPOINT_EVERY_MS);
  }

  /**
   * Refuses new requests, then loads and observes what it can within deadlineMs; what is left stays
   * in the log for the next start (it is durable already).
   */
  async close(deadlineMs: number): Promise<void> {
    if (this.rollTimer) clearInterval(this.rollTimer);
    await this.log.stopAppends();
    const half = Math.max(100, Math.floor(deadlineMs / 2));
    await Promise.all([this.loader.stop(half), this.observers.stop(half)]);
    this.checkpointNow();
    // everything loaded and observed: no segment is kept for the next start to skip over
    this.stats.releasedAtStop = this.log.releaseConsumed();
  }
}
