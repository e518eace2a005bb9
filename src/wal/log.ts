// The write-ahead log: ingest appends a request's rows and answers once they are on disk; two
// consumers follow it — the loader (into storage) and the observers (alert rules, error groups,
// alert routing) — each with its own place, kept in the checkpoint. A segment is deleted once both
// have passed it. The log is bounded: when it is full, append() refuses with a 503 + Retry-After
// rather than letting memory or disk grow.
import type { EventRow } from '../event.js';
import { readCheckpoint, writeCheckpoint, type Checkpoint } from './checkpoint.js';
import { Cursor, KEYS_HEAP_PER_LOG_BYTE } from './cursor.js';
import { comparePos, FLAG_ALERT, FLAG_CLIENT_IDS, FrameBuilder, HEADER_BYTES, HeldRecord, recordLines, type LogRecord, type Pos } from './record.js';
import { UNSLICED, type Slicer } from './wake.js';
import { SegmentFiles, type Repair } from './segments.js';

export interface WalOptions {
  dir: string;
  maxBytes: number;
  /** Bytes accepted but not yet fsync'd before appends are refused (the group-commit queue). */
  maxWaitingBytes: number;
  /** Defaults to maxBytes / 8, at most 64 MB. */
  segmentBytes?: number;
  /**
   * Per consumer: heap held by records kept in memory for it before it reads them back from disk.
   * At most 128 MB (the engine's comes from its heap limit, memory-budget.ts), and at most maxBytes / 8.
   */
  memoryBytes?: number;
}

/** The log cannot take the request now: answer 503 (507 when the disk is full) with Retry-After. */
export class WalUnavailableError extends Error {
  constructor(message: string, readonly status: 503 | 507, readonly retryAfterS: number) {
    super(message);
  }
}

const release = (r: LogRecord): void => {
  if (r instanceof HeldRecord) r.release();
};

/** Rows encoded between two looks at the request's slice (~1 ms of encoding on a slow core). */
const ENCODE_CHUNK_ROWS = 64;

export type AppendedListener = (records: readonly LogRecord[]) => void;

export interface WalStats {
  appendedRecords: number;
  appendedRows: number;
  refusedFull: number;
  refusedBusy: number;
  writeFailures: number;
}

export class WriteAheadLog {
  readonly loader: Cursor;
  /** Bytes of requests waiting for the next fsync. */
  get fsyncWaitingBytes(): number {
    return this.files.waitingBytes;
  }
  readonly observer: Cursor;
  /** The durable end when the log was opened: records before it may have been consumed already. */
  readonly openedAt: Pos;
  readonly stats: WalStats = { appendedRecords: 0, appendedRows: 0, refusedFull: 0, refusedBusy: 0, writeFailures: 0 };
  private readonly listeners: AppendedListener[] = [];
  private closed = false;
  private lastCheckpoint = '';
  private checkpointing: Promise<void> = Promise.resolve();
  private checkpointQueued: Promise<void> | undefined;

  private constructor(
    private readonly files: SegmentFiles,
    private readonly opts: WalOptions,
    checkpoint: Checkpoint,
    readonly repairs: Repair[],
    readonly problems: string[],
  ) {
    const memory = Math.min(opts.memoryBytes ?? 128 << 20, Math.max(1 << 20, Math.floor(opts.maxBytes / 8)));
    // the loader needs a record's keys and lines only: its rows are held for the observers, and let
    // go when they have passed the record or never held it (HeldRecord.release)
    this.loader = new Cursor(files, files.clamp(checkpoint.loaded), memory, { heapPerLogByte: KEYS_HEAP_PER_LOG_BYTE });
    this.observer = new Cursor(files, files.clamp(checkpoint.observed), memory, { onPassed: release });
    this.openedAt = files.end;
    files.isConsumed = (p) => comparePos(files.normalize(this.loader.pos), p) >= 0 && comparePos(files.normalize(this.observer.pos), p) >= 0;
    files.onDurable = (recs) => {
      for (const r of recs) {
        if (!this.observer.offer(r)) release(r);
        this.loader.offer(r);
      }
      for (const l of this.listeners) {
        try {
          l(recs);
        } catch {
          // a listener's failure must not fail a write that is already durable
        }
      }
    };
  }

  static async open(opts: WalOptions): Promise<WriteAheadLog> {
    const { checkpoint, problem } = readCheckpoint(opts.dir);
    const start: Checkpoint = checkpoint ?? { loaded: { seg: 0, off: 0 }, observed: { seg: 0, off: 0 } };
    const oldest = comparePos(start.loaded, start.observed) <= 0 ? start.loaded : start.observed;
    const segmentBytes = opts.segmentBytes ?? Math.min(64 << 20, Math.max(64 << 10, Math.floor(opts.maxBytes / 8)));
    const { files, repairs } = await SegmentFiles.open(opts.dir, segmentBytes, oldest.seg > 0 ? oldest : undefined);
    return new WriteAheadLog(files, opts, start, repairs, problem ? [problem] : []);
  }

  /** Live consumers (the tail): called with every durable group, before the requests are answered. */
  onAppended(l: AppendedListener): void {
    this.listeners.push(l);
  }

  /**
   * Appends one request's rows; resolves once they are durable. Encoding them gives the event loop
   * back whenever `turn` says the request's slice is used up.
   */
  async append(rows: EventRow[], opts: { clientIds: boolean; alert?: boolean; turn?: Slicer }): Promise<LogRecord> {
    const flags = (opts.clientIds ? FLAG_CLIENT_IDS : 0) | (opts.alert ? FLAG_ALERT : 0);
    const turn = opts.turn ?? UNSLICED;
    const frame = new FrameBuilder(flags, rows.length);
    for (let i = 0; i < rows.length; i += ENCODE_CHUNK_ROWS) {
      if (turn.due()) await turn.next();
      frame.addRows(rows, i, Math.min(rows.length, i + ENCODE_CHUNK_ROWS));
    }
    // after the encoding, which may have given the loop to a stop
    if (this.closed) throw new WalUnavailableError('the engine is stopping; retry on another node or shortly', 503, 1);
    const buf = frame.finish();
    if (this.files.waitingBytes > 0 && this.files.waitingBytes + buf.length > this.opts.maxWaitingBytes) {
      this.stats.refusedBusy++;
      throw new WalUnavailableError('the engine is writing as fast as it can; retry shortly', 503, 1);
    }
    if (this.files.usedBytes + buf.length > this.opts.maxBytes) {
      this.stats.refusedFull++;
      throw new WalUnavailableError('the write-ahead log is full (storage is behind or unavailable); retry later', 503, 5);
    }
    try {
      const rec = await this.files.append(buf, { flags: buf[HEADER_BYTES], rows, lines: recordLines(buf) });
      this.stats.appendedRecords++;
      this.stats.appendedRows += rows.length;
      return rec;
    } catch (e) {
      this.stats.writeFailures++;
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') {
        throw new WalUnavailableError('the disk of the write-ahead log is full; retry later', 507, 30);
      }
      throw new WalUnavailableError(`the write-ahead log could not be written (${(e as Error).message}); retry later`, 503, 5);
    }
  }

  get usedBytes(): number {
    return this.files.usedBytes;
  }

  get maxBytes(): number {
    return this.opts.maxBytes;
  }

  get segments(): number {
    return this.files.segmentCount;
  }

  get end(): Pos {
    return this.files.end;
  }

  get fsyncs(): number {
    return this.files.stats.fsyncs;
  }

  /**
   * Deletes the segments both cursors have passed, then records the cursors durably. Deleting first
   * is safe (a checkpoint pointing into a deleted segment is moved to the next one on open, and
   * what was deleted was consumed) and it is what frees the room a full disk needs for the file.
   */
  checkpoint(): Promise<void> {
    // one write at a time, and calls made while one waits share it: it takes the places as they are
    // when it starts, and places only move forward
    if (this.checkpointQueued) return this.checkpointQueued;
    const next = this.checkpointing.then(() => {
      this.checkpointQueued = undefined;
      return this.writeCheckpoint();
    });
    this.checkpointQueued = next;
    this.checkpointing = next.catch(() => undefined);
    return next;
  }

  private async writeCheckpoint(): Promise<void> {
    const c: Checkpoint = { loaded: this.loader.pos, observed: this.observer.pos };
    const text = JSON.stringify(c);
    if (text === this.lastCheckpoint) return;
    this.files.deleteBefore(comparePos(c.loaded, c.observed) <= 0 ? c.loaded : c.observed);
    await writeCheckpoint(this.opts.dir, c);
    this.lastCheckpoint = text;
  }

  /**
   * When both consumers have passed the end of the segment being appended to and no append is under
   * way, goes on in a new segment and deletes the old one. Returns whether it did.
   */
  rollIfConsumed(): Promise<boolean> {
    return this.files.rollIfConsumed();
  }

  /**
   * After stopAppends(): when both consumers have passed the end of the log, deletes every segment
   * (the next start has nothing to replay and opens a new one). Returns how many it deleted.
   */
  releaseConsumed(): number {
    return this.files.deleteIfAllConsumed();
  }

  /** Refuses new appends and waits for the ones being written. */
  async stopAppends(): Promise<void> {
    this.closed = true;
    await this.files.close();
  }
}
