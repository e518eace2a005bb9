// The loader: moves the log into storage in large blocks and checkpoints after each. It is the only
// writer of events. A block is dropped of rows whose (project, id) storage already holds, then
// inserted; on a data error the insert is bisected (insertIsolating) and the rows storage refuses are
// quarantined, so one poison row never holds up the log. Any other failure (storage down, slow, full)
// leaves the block where it is and retries with backoff while the log absorbs new requests.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventRow } from '../event.js';
import type { IdProbe } from '../storage/event-store.js';
import { insertIsolating, isClickHouseDataError } from '../collector/isolate.js';
import { compactLine, lineStarts } from '../storage/compact-row.js';
import type { Cursor } from './cursor.js';
import { failpoint } from './failpoint.js';
import { TimeSlice, Wakeable } from './wake.js';
import { comparePos, FLAG_CLIENT_IDS, type LogRecord, type Pos, type RowKey } from './record.js';
import { claimantOf } from './claimant.js';

/** A cluster's shared id registry (src/storage/id-claims.ts) and this node's name in it. */
export interface ClaimRegistry {
  node: string;
  /** Returns the keys (`project\0id`) another copy holds: those rows are not stored. */
  claim(claims: { row: { project_id: string; id: string }; claimant: string }[]): Promise<Set<string>>;
}

/** What the loader needs from storage (EventStore implements it). */
export interface WriterStore {
  insert(rows: readonly EventRow[]): Promise<void>;
  /** One insert of rows already in the insert format (storage/compact-row.ts), one per line. */
  insertLines(lines: Buffer): Promise<void>;
  /** Probes carry the event's times: storage looks for each id where its event would be. */
  existingIds(probes: readonly IdProbe[]): Promise<Set<string>>;
}

export interface LoaderOptions {
  /** Rows per storage insert, at most (whole records: a larger record goes alone). */
  blockRows: number;
  /** Longest the loader gathers rows before an insert while the log is quiet. */
  intervalMs: number;
  /** An insert that takes longer is reported as stuck (and awaited before its retry). */
  insertTimeoutMs: number;
  /** Where quarantined rows are written (one JSON line each). */
  quarantineDir: string;
  /** Records before this position may have been loaded before a restart: every id is checked. */
  uncertainBefore: Pos;
  log: (level: 'warn' | 'error' | 'info', obj: object, msg: string) => void;
  /** Called after each block is stored and checkpointed. */
  onLoaded: () => void;
  /**
   * On a cluster: client ids are claimed before each insert, and a row whose id another copy holds
   * (another node's log, or an earlier record of this one) is not stored. Absent on one node.
   */
  claims?: ClaimRegistry;
  /**
   * On storage only this engine writes to: the ids storage may hold (stored-ids.ts). An id it knows
   * is not stored is not looked for in storage. Never together with `claims`.
   */
  storedIds?: KnownIds;
}

/** The loader's view of StoredIds. */
export interface KnownIds {
  mayBeStored(project: string, id: string): boolean;
  add(project: string, id: string): void;
}

export const BACKOFF_MIN_MS = 50;
export const BACKOFF_MAX_MS = 5000;
const MAX_BLOCK_BYTES = 64 << 20;
/**
 * Preparing a block (id look-ups, duplicates, its bytes) is a pass over up to 50,000 rows: tens of
 * milliseconds at once on a slow core (a few µs a row), with every request (and refusal) behind it.
 * It gives the event loop a turn every few milliseconds.
 */
const BLOCK_SLICE_MS = 5;

export class Loader {
  readonly stats = {
    blocks: 0, rowsLoaded: 0, rowsTakenThisRun: 0, duplicates: 0, failures: 0, stuck: 0, quarantined: 0,
    lastLoadMs: 0, lastLoadRows: 0, lastError: '', retrying: false,
    /** Rows whose id was looked for in storage, and rows whose look-up the id filter made unneeded. */
    idProbes: 0, idProbesSkipped: 0,
    /** Time spent in the duplicate check (storage probe and claims) and in inserts, over all blocks. */
    checkMs: 0, insertMs: 0,
  };
  private running: Promise<void> | undefined;
  private stopping = false;
  private deadline = Infinity;
  private nudged = false;
  private readonly waker = new Wakeable();
  /** After a failed insert some rows may be stored: check every id until a block succeeds. */
  private uncertain = false;
  private readonly waiters: { until: Pos; resolve: () => void }[] = [];

  /** The id filter, decided once: never where a claims registry says what other nodes stored. */
  private readonly storedIds: KnownIds | undefined;

  constructor(private readonly cursor: Cursor, private readonly store: WriterStore, private readonly opts: LoaderOptions) {
    this.storedIds = opts.claims ? undefined : opts.storedIds;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Load what is waiting now instead of gathering more (a query wants to see it). */
  nudge(): void {
    this.nudged = true;
    this.waker.wake();
  }

  /** Resolves once everything before `until` is in storage, or after ms. */
  loadedUpTo(until: Pos, ms: number): Promise<boolean> {
    if (comparePos(this.cursor.pos, until) >= 0) return Promise.resolve(true);
    this.nudge();
    return new Promise((resolve) => {
      const w = { until, resolve: () => resolve(true) };
      this.waiters.push(w);
      setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      }, ms).unref();
    });
  }

  /** Loads what it can until `deadline` (ms from now), then stops; the rest stays in the log. */
  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    this.deadline = Date.now() + deadlineMs;
    this.waker.wake();
    if (this.running) await Promise.race([this.running, sleep(deadlineMs + 100)]);
  }

  private async loop(): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    while (true) {
      if (this.stopping && (Date.now() >= this.deadline || this.cursor.caughtUp)) return;
      if (!this.stopping) await this.gather();
      let recs: LogRecord[];
      try {
        recs = await this.cursor.peek(this.opts.blockRows, MAX_BLOCK_BYTES);
      } catch (e) {
        this.opts.log('error', { err: String(e) }, 'the write-ahead log could not be read; retrying');
        await this.pause(BACKOFF_MAX_MS);
        continue;
      }
      if (recs.length === 0) continue;
      try {
        await this.loadBlock(recs);
        backoff = BACKOFF_MIN_MS;
        this.stats.retrying = false;
      } catch (e) {
        this.uncertain = true;
        this.stats.failures++;
        this.stats.retrying = true;
        this.stats.lastError = String((e as Error)?.message ?? e).slice(0, 300);
        this.opts.log('warn', { err: this.stats.lastError, retry_in_ms: backoff }, 'storage refused a block; it stays in the write-ahead log and is retried');
        await this.pause(backoff * (0.5 + Math.random() / 2));
        backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
      }
    }
  }

  /** Waits until a block is worth an insert: blockRows waiting, intervalMs passed, or a nudge. */
  private async gather(): Promise<void> {
    await this.cursor.waitForRecords(1000);
    if (this.cursor.caughtUp) return;
    const started = Date.now();
    while (!this.stopping && !this.nudged && Date.now() - started < this.opts.intervalMs) {
      if (this.cursor.rowsWaiting(this.opts.blockRows) >= this.opts.blockRows || this.cursor.behindBytes >= MAX_BLOCK_BYTES) break;
      await this.pause(Math.min(20, this.opts.intervalMs));
    }
    this.nudged = false;
  }

  private pause(ms: number): Promise<void> {
    return this.waker.sleep(ms);
  }

  private async loadBlock(recs: LogRecord[]): Promise<void> {
    const started = performance.now();
    const checked: IdProbe[] = [];
    let thisRun = 0;
    // after a failed insert this run, every id is looked for in storage, the filter notwithstanding
    const known = this.uncertain ? undefined : this.storedIds;
    let skipped = 0;
    const slice = new TimeSlice(BLOCK_SLICE_MS);
    for (const r of recs) {
      if (slice.due()) await slice.next();
      const before = comparePos(r.pos, this.opts.uncertainBefore) < 0;
      if (!before) thisRun += r.keys.length;
      if (!(this.uncertain || before || r.flags & FLAG_CLIENT_IDS)) continue;
      for (const key of r.keys) {
        if (known && !known.mayBeStored(key.project_id, key.id)) skipped++;
        else checked.push(key);
      }
    }
    this.stats.idProbesSkipped += skipped;
    const checkStarted = performance.now();
    this.stats.idProbes += checked.length;
    const [stored, claimedElsewhere] = await Promise.all([
      checked.length ? this.store.existingIds(checked) : new Set<string>(),
      this.opts.claims ? this.claimBlock(recs, this.opts.claims) : undefined,
    ]);
    for (const k of claimedElsewhere ?? []) stored.add(k);
    if (this.storedIds) for (const k of stored) addKey(this.storedIds, k);
    this.stats.checkMs += performance.now() - checkStarted;
    // the block's bytes: a record's lines as they are in the log, or only its fresh lines
    const seen = new Set<string>();
    const fresh: RowKey[] = [];
    /** Each record's fresh rows (all when undefined), for the rare insert bisected with whole rows. */
    const keptOf: [LogRecord, number[] | undefined][] = [];
    const parts: Buffer[] = [];
    for (const r of recs) {
      if (slice.due()) await slice.next();
      let kept: number[] | undefined;
      for (let i = 0; i < r.keys.length; i++) {
        const row = r.keys[i];
        const key = `${row.project_id}\u0000${row.id}`;
        if (stored.has(key) || seen.has(key)) {
          this.stats.duplicates++;
          kept ??= Array.from({ length: i }, (_, j) => j);
          continue;
        }
        seen.add(key);
        fresh.push(row);
        kept?.push(i);
      }
      keptOf.push([r, kept]);
      if (!r.lines) {
        const all = r.rows;
        for (const i of kept ?? all.keys()) parts.push(Buffer.from(compactLine(all[i]) + '\n'));
      } else if (!kept) parts.push(r.lines);
      else {
        const starts = lineStarts(r.lines);
        for (const i of kept) parts.push(r.lines.subarray(starts[i], starts[i + 1]));
      }
    }
    let failed: { row: EventRow; error: unknown }[] = [];
    const insertStarted = performance.now();
    // in the filter before the insert is tried: whatever becomes of the insert (refused, cut off by a
    // deadline and finished later), the filter never says "not stored" of a row storage may hold
    if (this.storedIds) {
      for (let i = 0; i < fresh.length; i++) {
        if ((i & 1023) === 0 && slice.due()) await slice.next();
        this.storedIds.add(fresh[i].project_id, fresh[i].id);
      }
    }
    if (fresh.length > 0) {
      try {
        await this.insertWithWatch(fresh.length, () => this.store.insertLines(Buffer.concat(parts)));
      } catch (e) {
        if (!isClickHouseDataError(e)) throw e;
        // a row storage refuses for a data reason: find it by bisection, store the rest
        const rows = keptOf.flatMap(([rec, kept]) => {
          const all = rec.rows; // parsed again from the lines on each use once the observers let go of them
          return kept ? kept.map((i) => all[i]) : all;
        });
        const result = await insertIsolating(rows, (part) => this.insertWithWatch(part.length, () => this.store.insert(part)), isClickHouseDataError);
        failed = result.failed;
      }
    }
    this.stats.insertMs += performance.now() - insertStarted;
    if (failed.length) this.quarantine(failed);
    failpoint.hit('loader-after-insert');
    this.cursor.commit(recs[recs.length - 1]);
    this.uncertain = false;
    this.stats.blocks++;
    this.stats.rowsTakenThisRun += thisRun;
    this.stats.rowsLoaded += fresh.length - failed.length;
    this.stats.lastLoadRows = fresh.length;
    this.stats.lastLoadMs = performance.now() - started;
    this.opts.onLoaded();
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (comparePos(this.cursor.pos, this.waiters[i].until) >= 0) this.waiters.splice(i, 1)[0].resolve();
    }
  }

  /** Claims the block's client ids; an error (registry unreachable) fails the block, which is retried. */
  private claimBlock(recs: readonly LogRecord[], registry: ClaimRegistry): Promise<Set<string>> {
    const claims = [];
    for (const r of recs) {
      if (!(r.flags & FLAG_CLIENT_IDS)) continue;
      const claimant = claimantOf(registry.node, r.pos);
      for (const row of r.keys) claims.push({ row, claimant });
    }
    return claims.length ? registry.claim(claims) : Promise.resolve(new Set<string>());
  }

  /** An insert past insertTimeoutMs is reported; it is awaited, never raced by its own retry. */
  private async insertWithWatch(rows: number, insert: () => Promise<void>): Promise<void> {
    const p = insert();
    let timer: NodeJS.Timeout | undefined;
    const watch = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.stats.stuck++;
        this.opts.log('error', { rows, ms: this.opts.insertTimeoutMs }, 'a storage insert is stuck; waiting for it before retrying');
        resolve();
      }, this.opts.insertTimeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([p, watch.then(() => p)]);
    } finally {
      clearTimeout(timer);
    }
  }

  private quarantine(failed: { row: EventRow; error: unknown }[]): void {
    this.stats.quarantined += failed.length;
    const lines = failed.map((f) => JSON.stringify({ at: new Date().toISOString(), error: String((f.error as Error)?.message ?? f.error).slice(0, 500), row: f.row })).join('\n') + '\n';
    try {
      appendFileSync(join(this.opts.quarantineDir, 'quarantine.ndjson'), lines);
    } catch (e) {
      this.opts.log('error', { err: String(e) }, 'quarantined rows could not be written to the dead-letter file');
    }
    this.opts.log('error', { rows: failed.length, ids: failed.slice(0, 10).map((f) => f.row.id), file: join(this.opts.quarantineDir, 'quarantine.ndjson') }, 'storage refused rows for a data reason; they are quarantined');
  }
}

function addKey(ids: KnownIds, key: string): void {
  const nul = key.indexOf('\u0000');
  ids.add(key.slice(0, nul), key.slice(nul + 1));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
