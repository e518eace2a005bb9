// One consumer's place in the log. Records appended by this process are handed over in memory (no
// re-read, no re-parse) while the consumer keeps up; past its memory budget, or for records written
// before a restart, it reads them back from the segment files. Either way it sees every record once,
// in log order, and moves only when commit() says the records are done with.
import { comparePos, type LogRecord, type Pos } from './record.js';
import type { SegmentFiles } from './segments.js';
import { Wakeable } from './wake.js';

/**
 * What a record held in memory costs the heap per byte of it in the log: its rows as objects and
 * its encoded lines (9.2 measured on bench/ingest's events). The memory budget counts this, not the
 * log bytes: counted in log bytes, two cursors' 64 MB budgets held over a gigabyte of heap under
 * overload.
 */
const HEAP_PER_LOG_BYTE = 9;
/** The same for a record whose rows were let go (HeldRecord.release): its lines and its rows' keys. */
export const KEYS_HEAP_PER_LOG_BYTE = 2;

export interface CursorOptions {
  /** Heap per log byte of a record held in memory (HEAP_PER_LOG_BYTE when not set). */
  heapPerLogByte?: number;
  /** Called with each record held in memory as the cursor commits past it. */
  onPassed?: (rec: LogRecord) => void;
}

export class Cursor {
  private queue: LogRecord[] = [];
  private queueBytes = 0;
  /** False from the first record left out of memory until the cursor has caught up with the log. */
  private inMemory = true;
  private readonly waker = new Wakeable();
  private readonly heapPerLogByte: number;

  constructor(private readonly files: SegmentFiles, public pos: Pos, private readonly memoryBudget: number, private readonly opts: CursorOptions = {}) {
    this.heapPerLogByte = opts.heapPerLogByte ?? HEAP_PER_LOG_BYTE;
  }

  /** Called with each durable record, in order. Answers whether the record is held in memory. */
  offer(rec: LogRecord): boolean {
    const held = this.inMemory && this.queueBytes + rec.bytes * this.heapPerLogByte <= this.memoryBudget;
    if (held) {
      this.queue.push(rec);
      this.queueBytes += rec.bytes * this.heapPerLogByte;
    } else {
      this.inMemory = false;
    }
    this.waker.wake();
    return held;
  }

  /** Estimated heap held by the records kept in memory for this cursor. */
  get memoryBytes(): number {
    return this.queueBytes;
  }

  /** Bytes of the log this cursor has not committed yet. */
  get behindBytes(): number {
    return this.files.bytesAfter(this.pos);
  }

  get caughtUp(): boolean {
    return comparePos(this.files.normalize(this.pos), this.files.end) >= 0;
  }

  /** Whether the cursor has committed everything before p (the end of a segment is the start of the next). */
  passed(p: Pos): boolean {
    return comparePos(this.files.normalize(this.pos), this.files.normalize(p)) >= 0;
  }

  /**
   * Rows waiting, counted up to `atLeast` from the records held in memory; once records are left
   * to the segment files (more waiting than the memory budget holds) it says `atLeast` without
   * reading them: counting would mean reading and decoding them again on every look.
   */
  rowsWaiting(atLeast: number): number {
    if (!this.inMemory) return atLeast;
    let rows = 0;
    for (const r of this.queue) {
      rows += r.keys.length;
      if (rows >= atLeast) break;
    }
    return rows;
  }

  /** Resolves when a record may be waiting, or after ms. */
  waitForRecords(ms: number): Promise<void> {
    return this.caughtUp ? this.waker.sleep(ms) : Promise.resolve();
  }

  /** The next records after pos (whole records, at least one if any), without moving. */
  async peek(maxRows: number, maxBytes: number): Promise<LogRecord[]> {
    const pos = this.files.normalize(this.pos);
    if (this.queue.length > 0 && comparePos(this.queue[0].pos, pos) === 0) {
      const out: LogRecord[] = [];
      let rows = 0;
      let bytes = 0;
      for (const r of this.queue) {
        if (out.length > 0 && (rows + r.keys.length > maxRows || bytes + r.bytes > maxBytes)) break;
        out.push(r);
        rows += r.keys.length;
        bytes += r.bytes;
      }
      return out;
    }
    if (this.queue.length === 0 && comparePos(pos, this.files.end) >= 0) {
      this.inMemory = true;
      return [];
    }
    const recs = await this.files.read(pos, this.queue[0]?.pos, maxBytes, maxRows);
    let rows = 0;
    let n = 0;
    while (n < recs.length && (n === 0 || rows + recs[n].keys.length <= maxRows)) rows += recs[n++].keys.length;
    return recs.slice(0, n);
  }

  /** The records up to and including `last` are done with. */
  commit(last: LogRecord): void {
    this.pos = last.end;
    while (this.queue.length > 0 && comparePos(this.queue[0].pos, last.end) < 0) {
      const rec = this.queue.shift()!;
      this.queueBytes -= rec.bytes * this.heapPerLogByte;
      this.opts.onPassed?.(rec);
    }
  }
}
