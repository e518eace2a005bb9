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

export class Cursor {
  private queue: LogRecord[] = [];
  private queueBytes = 0;
  /** False from the first record left out of memory until the cursor has caught up with the log. */
  private inMemory = true;
  private readonly waker = new Wakeable();

  constructor(private readonly files: SegmentFiles, public pos: Pos, private readonly memoryBudget: number) {}

  /** Called with each durable record, in order. */
  offer(rec: LogRecord): void {
    if (this.inMemory && this.queueBytes + rec.bytes * HEAP_PER_LOG_BYTE <= this.memoryBudget) {
      this.queue.push(rec);
      this.queueBytes += rec.bytes * HEAP_PER_LOG_BYTE;
    } else {
      this.inMemory = false;
    }
    this.waker.wake();
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
      this.queueBytes -= this.queue.shift()!.bytes * HEAP_PER_LOG_BYTE;
    }
  }
}
