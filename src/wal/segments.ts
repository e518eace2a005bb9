// The log's files: numbered segments, appended with group commit, read back from any position,
// deleted once every consumer has passed them. Opening scans the segments that are still needed and
// cuts each at the end of its last valid record: a torn or corrupted tail is reported and removed,
// never a reason not to start.
import { closeSync, constants, fdatasyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, statSync, unlinkSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventRow } from '../event.js';
import { failpoint } from './failpoint.js';
import { comparePos, decodeRecord, HEADER_BYTES, HeldRecord, readRecord, type LogRecord, type Pos } from './record.js';
import { TimeSlice } from './wake.js';

const NAME = /^(\d{10})\.wal$/;
const segName = (n: number) => `${String(n).padStart(10, '0')}.wal`;
/**
 * Segments are written O_DSYNC: a write returns once its data is on disk, as writev + fdatasync did
 * in two trips to the thread pool (one-event requests: ~0.06 ms of ~1.3 ms, bench/README).
 */
const SEGMENT_FLAGS = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC;
const READ_CHUNK = 1 << 20;
/** Longest single read of a segment: what a block of rows needs, not the whole backlog. */
const MAX_READ = 8 << 20;
/** Longest stretch of record decoding before a read yields to the event loop. */
const DECODE_SLICE_MS = 8;

export interface Repair {
  segment: number;
  /** Where the valid records end (the segment was cut here). */
  validBytes: number;
  /** Bytes removed. */
  cutBytes: number;
  reason: string;
}

/** What a record is, before the log gives it a place. */
export interface RecordBody {
  flags: number;
  rows: EventRow[];
  lines: Buffer;
}

interface PendingAppend {
  buf: Buffer;
  body: RecordBody;
  resolve: (a: LogRecord) => void;
  reject: (e: unknown) => void;
}

export class SegmentFiles {
  /** Segment number → durable size in bytes. The last one is being appended to. */
  private readonly sizes = new Map<number, number>();
  private current = 0;
  private fh: FileHandle | undefined;
  private pending: PendingAppend[] = [];
  private pendingBytes = 0;
  private writing = false;
  private broken: unknown;
  /** Called after each durable group, in order, with what was appended. */
  onDurable: (group: LogRecord[]) => void = () => undefined;
  /** Whether every consumer has passed this position (set by the log). */
  isConsumed: (p: Pos) => boolean = () => false;
  readonly stats = { fsyncs: 0, appends: 0, lastFsyncMs: 0 };

  private constructor(readonly dir: string, private readonly segmentBytes: number) {}

  /** Opens the log, repairing torn or corrupt tails of segments from `from` on. */
  static async open(dir: string, segmentBytes: number, from: Pos | undefined): Promise<{ files: SegmentFiles; repairs: Repair[] }> {
    mkdirSync(dir, { recursive: true });
    const files = new SegmentFiles(dir, segmentBytes);
    const numbers = readdirSync(dir).map((n) => NAME.exec(n)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
    const repairs: Repair[] = [];
    for (const n of numbers) {
      const path = join(dir, segName(n));
      const size = statSync(path).size;
      // segments before the oldest consumer were fully consumed; they are deleted, not scanned
      if (from && n < from.seg) {
        unlinkSync(path);
        continue;
      }
      const valid = scanValidPrefix(path, size);
      if (valid.bytes < size) {
        const fd = openSync(path, 'r+');
        try {
          ftruncateSync(fd, valid.bytes);
          fdatasyncSync(fd);
        } finally {
          closeSync(fd);
        }
        repairs.push({ segment: n, validBytes: valid.bytes, cutBytes: size - valid.bytes, reason: valid.reason });
      }
      // the oldest consumer's segment, read to its end (a stop that could not remove it, or a crash
      // after the checkpoint): nothing in it is needed any more
      if (from && n === from.seg && from.off >= valid.bytes) {
        unlinkSync(path);
        continue;
      }
      files.sizes.set(n, valid.bytes);
    }
    // a new segment per start: old tails stay as they are, and appends never follow a repaired cut
    files.current = Math.max(0, from?.seg ?? 0, ...files.sizes.keys()) + 1;
    await files.openCurrent();
    return { files, repairs };
  }

  private async openCurrent(): Promise<void> {
    this.fh = await open(join(this.dir, segName(this.current)), SEGMENT_FLAGS);
    this.sizes.set(this.current, 0);
    await syncDir(this.dir);
  }

  /** Where the next record will start; everything before it is durable. */
  get end(): Pos {
    return { seg: this.current, off: this.sizes.get(this.current) ?? 0 };
  }

  /** Bytes in segment files, plus what waits for the next fsync. */
  get usedBytes(): number {
    let n = this.pendingBytes;
    for (const s of this.sizes.values()) n += s;
    return n;
  }

  get waitingBytes(): number {
    return this.pendingBytes;
  }

  get segmentCount(): number {
    return this.sizes.size;
  }

  /** Appends one framed record; resolves once it is on disk (an O_DSYNC write). */
  append(buf: Buffer, body: RecordBody): Promise<LogRecord> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<LogRecord>((resolve, reject) => {
      this.pending.push({ buf, body, resolve, reject });
      this.pendingBytes += buf.length;
      if (!this.writing) void this.writeLoop();
    });
  }

  /** Group commit: everything that arrived while the last fsync ran goes in one write and one fsync. */
  private async writeLoop(): Promise<void> {
    this.writing = true;
    while (this.pending.length > 0) {
      const group = this.pending;
      this.pending = [];
      let bytes = 0;
      for (const p of group) bytes += p.buf.length;
      this.pendingBytes -= bytes;
      try {
        let size = this.sizes.get(this.current)!;
        if (size > 0 && size + bytes > this.segmentBytes) {
          await this.rotate();
          size = 0;
        }
        const started = performance.now();
        if (failpoint.enabled('wal-torn-write')) {
          // half of the group reaches the file, then the process dies: a torn tail
          const all = Buffer.concat(group.map((p) => p.buf));
          await writeAll(this.fh!, [all.subarray(0, Math.max(1, all.length >> 1))], size);
          failpoint.hit('wal-torn-write');
        } else failpoint.hit('wal-torn-write');
        failpoint.hit('wal-before-fsync');
        // durable when the write returns (O_DSYNC): one trip to the thread pool, not two
        await writeAll(this.fh!, group.map((p) => p.buf), size);
        failpoint.hit('wal-after-fsync');
        this.stats.fsyncs++;
        this.stats.appends += group.length;
        this.stats.lastFsyncMs = performance.now() - started;
        const out: LogRecord[] = [];
        let off = size;
        for (const p of group) {
          out.push(new HeldRecord({ seg: this.current, off }, { seg: this.current, off: off + p.buf.length }, p.body.flags, p.body.rows, p.body.lines, p.buf.length));
          off += p.buf.length;
        }
        this.sizes.set(this.current, off);
        // consumers first, then the requests: a record is visible to the loader before its 200
        this.onDurable(out);
        group.forEach((p, i) => p.resolve(out[i]));
      } catch (e) {
        // a failed write (disk full) may have left part of the group on disk: cut it off; if even
        // that fails, go on in a new segment; if that fails too, refuse appends from now on
        const cut = await this.fh!.truncate(this.sizes.get(this.current)!).then(() => true, () => false);
        if (!cut) await this.rotate().catch((err) => (this.broken = err));
        else if ((e as NodeJS.ErrnoException).code === 'ENOSPC' && this.sizes.get(this.current)! > 0 && this.isConsumed(this.end)) {
          // the disk is full and the segment being appended to is consumed already: a new segment
          // lets it go, which is the room the next append needs
          await this.rotate().then(() => this.deleteBefore(this.end), (err) => (this.broken = err));
        }
        for (const p of group) p.reject(e);
      }
    }
    this.writing = false;
  }

  /**
   * Goes on in a new segment. The new file is opened before the old one is let go, so a failure
   * (no room for the file) leaves the log appending where it was.
   */
  private async rotate(): Promise<void> {
    // nothing to sync first: every write to the old segment was durable when it returned (O_DSYNC)
    const next = await open(join(this.dir, segName(this.current + 1)), SEGMENT_FLAGS);
    const old = this.fh!;
    this.fh = next;
    this.current++;
    this.sizes.set(this.current, 0);
    await old.close().catch(() => undefined);
    await syncDir(this.dir);
  }

  /**
   * While nothing is being written: when every consumer has passed the end of the segment being
   * appended to, goes on in a new one and deletes the old (its records are loaded and observed).
   * Without this an idle log keeps its last segment, up to segmentBytes of consumed records, for
   * good. Returns whether it rolled.
   */
  async rollIfConsumed(): Promise<boolean> {
    if (this.writing || this.broken || this.pending.length > 0) return false;
    if ((this.sizes.get(this.current) ?? 0) === 0 || !this.isConsumed(this.end)) return false;
    this.writing = true;
    try {
      await this.rotate();
      this.deleteBefore(this.end);
      return true;
    } catch {
      // no room for a new segment: the old one stays, appends go on in it
      return false;
    } finally {
      this.writing = false;
      if (this.pending.length > 0) void this.writeLoop();
    }
  }

  /**
   * After close(): deletes every segment, the last included, when every consumer has passed the
   * end of the log. The checkpoint then points past what is left on disk, which open() accepts
   * (a position in a segment that no longer exists moves to the next one). Returns the count.
   */
  deleteIfAllConsumed(): number {
    if (!this.broken || this.writing || this.pending.length > 0 || !this.isConsumed(this.end)) return 0;
    let removed = 0;
    for (const seg of [...this.sizes.keys()]) removed += this.remove(seg);
    return removed;
  }

  private remove(seg: number): number {
    try {
      unlinkSync(join(this.dir, segName(seg)));
    } catch {
      // already gone
    }
    this.sizes.delete(seg);
    return 1;
  }

  /**
   * Reads whole records from `from` on, up to `limit` (exclusive) or the durable end, at most about
   * `maxBytes`. Crosses into later segments. Returns [] when there is nothing to read.
   */
  async read(from: Pos, limit: Pos | undefined, maxBytes: number, maxRows = Infinity): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    let pos = this.normalize(from);
    let total = 0;
    let rows = 0;
    const lim = limit && this.normalize(limit);
    // stops at maxRows too: a loader behind by 64 MB decoded all of it (~9× that in heap) for each
    // block of 50,000 rows and threw the rest away, read again for the next block
    while (total < maxBytes && rows < maxRows) {
      if (lim && comparePos(pos, lim) >= 0) break;
      const size = this.sizes.get(pos.seg);
      if (size === undefined || pos.off >= size) break;
      const stop = lim && lim.seg === pos.seg ? Math.min(lim.off, size) : size;
      const path = join(this.dir, segName(pos.seg));
      let buf = await readAt(path, pos.off, Math.min(stop - pos.off, Math.max(READ_CHUNK, Math.min(maxBytes - total, MAX_READ))));
      if (buf.length >= HEADER_BYTES && HEADER_BYTES + buf.readUInt32LE(0) > buf.length) {
        // one record larger than the chunk: read exactly it
        buf = await readAt(path, pos.off, HEADER_BYTES + buf.readUInt32LE(0));
      }
      let at = 0;
      const slice = new TimeSlice(DECODE_SLICE_MS);
      while (at < buf.length && total < maxBytes && rows < maxRows) {
        // decoding is parsing: a long read gives the event loop back every few milliseconds
        if (slice.due()) await slice.next();
        const d = decodeRecord(buf, at);
        if (!d.ok) {
          if (d.reason === 'incomplete' && at > 0) break; // the rest comes with the next chunk
          throw new Error(`write-ahead log segment ${pos.seg} at ${pos.off + at}: ${d.detail}`);
        }
        if (out.length > 0 && rows + d.keys.length > maxRows) {
          rows = maxRows;
          break;
        }
        rows += d.keys.length;
        out.push(readRecord({ seg: pos.seg, off: pos.off + at }, d));
        at += d.bytes;
        total += d.bytes;
      }
      if (at === 0) break;
      pos = this.normalize({ seg: pos.seg, off: pos.off + at });
    }
    return out;
  }

  /** A position the log can serve: inside a known segment, else the start of the next one. */
  clamp(p: Pos): Pos {
    const size = this.sizes.get(p.seg);
    if (size !== undefined && p.off <= size) return p;
    const next = [...this.sizes.keys()].filter((n) => n > p.seg).sort((a, b) => a - b)[0];
    return next === undefined ? this.end : { seg: next, off: 0 };
  }

  /** A position at the end of a finished segment is the start of the next one. */
  normalize(p: Pos): Pos {
    let pos = p;
    while (pos.seg < this.current && pos.off >= (this.sizes.get(pos.seg) ?? 0)) {
      const next = [...this.sizes.keys()].filter((n) => n > pos.seg).sort((a, b) => a - b)[0];
      if (next === undefined) break;
      pos = { seg: next, off: 0 };
    }
    return pos;
  }

  /** Bytes from `from` to the durable end. */
  bytesAfter(from: Pos): number {
    let n = 0;
    for (const [seg, size] of this.sizes) {
      if (seg > from.seg) n += size;
      else if (seg === from.seg) n += Math.max(0, size - from.off);
    }
    return n;
  }

  /** Deletes the finished segments every consumer has passed. */
  deleteBefore(p: Pos): number {
    let removed = 0;
    const upto = this.normalize(p).seg;
    for (const seg of [...this.sizes.keys()]) {
      if (seg < upto && seg < this.current) removed += this.remove(seg);
    }
    return removed;
  }

  /** Waits for the appends in flight; further appends are refused. */
  async close(): Promise<void> {
    this.broken = new Error('the write-ahead log is closed');
    while (this.writing) await new Promise((r) => setTimeout(r, 1));
    await this.fh?.close().catch(() => undefined);
  }
}

/** The length of the valid record prefix of a segment file, read in chunks. */
export function scanValidPrefix(path: string, size: number): { bytes: number; reason: string } {
  const fd = openSync(path, 'r');
  const readChunk = (off: number, len: number) => {
    const buf = Buffer.allocUnsafe(len);
    return buf.subarray(0, readSync(fd, buf, 0, len, off));
  };
  try {
    let off = 0;
    while (off < size) {
      let buf = readChunk(off, Math.min(size - off, READ_CHUNK));
      if (buf.length >= HEADER_BYTES && HEADER_BYTES + buf.readUInt32LE(0) > buf.length && off + buf.length < size) {
        buf = readChunk(off, Math.min(size - off, HEADER_BYTES + buf.readUInt32LE(0)));
      }
      let at = 0;
      while (at < buf.length) {
        const d = decodeRecord(buf, at);
        if (d.ok) {
          at += d.bytes;
          continue;
        }
        // a record the chunk cut short, while the file goes on: the next chunk starts with it
        if (d.reason === 'incomplete' && at > 0 && off + buf.length < size) break;
        return { bytes: off + at, reason: d.detail };
      }
      if (at === 0) return { bytes: off, reason: 'unreadable record' };
      off += at;
    }
    return { bytes: off, reason: '' };
  } finally {
    closeSync(fd);
  }
}

async function writeAll(fh: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  let pos = position;
  let rest = bufs;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, pos);
    pos += bytesWritten;
    let skip = bytesWritten;
    const next: Buffer[] = [];
    for (const b of rest) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      next.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    rest = next;
  }
}

async function readAt(path: string, off: number, len: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(len);
    const { bytesRead } = await fh.read(buf, 0, len, off);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Makes a new or removed file name durable. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // some file systems refuse fsync on a directory; the data itself is synced
  } finally {
    await fh.close();
  }
}
