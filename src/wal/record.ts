// One log record on disk: [u32 payload length][u32 CRC-32 of the payload][payload], little-endian.
// The payload is one flags byte and the request's rows: with FLAG_COMPACT (every record this version
// writes) one line per row in storage's insert format (storage/compact-row.ts), so the loader passes
// the bytes on as they are; without it (records of earlier versions) the JSON array of rows. A record is valid only when its
// whole frame is present and its checksum matches: a torn write (crash mid-write) or a flipped bit
// ends the valid prefix of a segment there (as in Prometheus' WAL, without its 32 KB pages: our
// records are whole requests, written and made durable by one O_DSYNC write per group).
import { crc32 } from 'node:zlib';
import type { EventRow } from '../event.js';
import { compactLine, mapLines, rowFromCompact } from '../storage/compact-row.js';

export const HEADER_BYTES = 8;
/** Larger than any request can make (5 MB body), small enough that a garbage length is caught. */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/** The record's rows carry client-supplied ids: the loader checks them against storage. */
export const FLAG_CLIENT_IDS = 1;
/** The record is an engine-raised alert (POST /monitoring/alert): it is routed exactly once. */
export const FLAG_ALERT = 2;
/** The rows are newline-terminated JSONCompactEachRow lines (EVENT_COLUMNS order). */
export const FLAG_COMPACT = 4;

/** Where a record starts or ends: segment number and byte offset in it. */
export interface Pos {
  seg: number;
  off: number;
}

export function comparePos(a: Pos, b: Pos): number {
  return a.seg !== b.seg ? a.seg - b.seg : a.off - b.off;
}

/** What the loader needs of a row to check its id: the rest of the row stays in its line. */
export interface RowKey {
  id: string;
  timestamp: number;
  received_at: number;
  project_id: string;
}

export interface LogRecord {
  pos: Pos;
  end: Pos;
  flags: number;
  /** The rows. A record read back from disk parses them on first use (the observer's). */
  readonly rows: EventRow[];
  /** Each row's key, in order: the rows themselves, or from a record read back, parsed alone. */
  readonly keys: readonly RowKey[];
  /** With FLAG_COMPACT: the rows' insert-format lines, one per row, in order (a view of the frame). */
  lines?: Buffer;
  /** Bytes of the whole frame on disk. */
  bytes: number;
}

/** The frame of a record (always written with FLAG_COMPACT). */
export function encodeRecord(flags: number, rows: readonly EventRow[]): Buffer {
  const frame = new FrameBuilder(flags, rows.length);
  frame.addRows(rows, 0, rows.length);
  return frame.finish();
}

/**
 * A record's frame, written a row at a time. Each row's line goes straight into the frame's buffer:
 * concatenating a request's lines into one string first, then measuring and copying it, cost about
 * as much again as making the lines.
 */
export class FrameBuilder {
  private buf: Buffer;
  private at = HEADER_BYTES + 1;

  constructor(private readonly flags: number, rows: number) {
    this.buf = Buffer.allocUnsafe(HEADER_BYTES + 1 + Math.max(1, rows) * 512);
  }

  /** Rows from..to (exclusive), each as its newline-terminated insert-format line. */
  addRows(rows: readonly EventRow[], from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const line = compactLine(rows[i]);
      // a UTF-16 unit is at most 3 bytes of UTF-8: with this much room the line is never cut short
      this.reserve(line.length * 3 + 1);
      this.at += this.buf.write(line, this.at, 'utf8');
      this.buf[this.at++] = 10;
    }
  }

  private reserve(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.at + bytes, this.buf.length * 2));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }

  /** The whole frame: header, flags byte, lines. */
  finish(): Buffer {
    // the frame is kept in memory for the log's consumers: not with much unused room behind it
    let frame = this.buf.subarray(0, this.at);
    if (this.buf.length - this.at > this.at >> 3) frame = Buffer.from(frame);
    frame.writeUInt32LE(this.at - HEADER_BYTES, 0);
    frame[HEADER_BYTES] = this.flags | FLAG_COMPACT;
    frame.writeUInt32LE(crc32(frame.subarray(HEADER_BYTES)), 4);
    return frame;
  }
}

/** The insert-format lines of an encoded frame. */
export function recordLines(frame: Buffer): Buffer {
  return frame.subarray(HEADER_BYTES + 1);
}

function decodeCompact(lines: Buffer): EventRow[] {
  return mapLines(lines.toString('utf8'), (text, start, end) => rowFromCompact(text.slice(start, end)));
}

export type Decoded =
  | { ok: true; flags: number; keys: readonly RowKey[]; rows: () => EventRow[]; lines?: Buffer; bytes: number }
  /** `incomplete`: the buffer ends inside the frame (read more, or it is a torn tail). */
  | { ok: false; reason: 'incomplete' | 'corrupt'; detail: string };

/**
 * Decodes the frame starting at `at`. Never throws. Of compact rows only the keys are parsed now
 * (that also checks each line's shape); `rows()` parses the rest when a consumer needs them.
 */
export function decodeRecord(buf: Buffer, at: number): Decoded {
  if (buf.length - at < HEADER_BYTES) return { ok: false, reason: 'incomplete', detail: 'header cut short' };
  const len = buf.readUInt32LE(at);
  if (len < 1 || len > MAX_PAYLOAD_BYTES) return { ok: false, reason: 'corrupt', detail: `impossible record length ${len}` };
  if (buf.length - at < HEADER_BYTES + len) return { ok: false, reason: 'incomplete', detail: `record of ${len} bytes cut short` };
  const payload = buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + len);
  if (crc32(payload) !== buf.readUInt32LE(at + 4)) return { ok: false, reason: 'corrupt', detail: 'checksum mismatch' };
  const flags = payload[0];
  if (flags & FLAG_COMPACT) {
    const lines = payload.subarray(1);
    try {
      return { ok: true, flags, keys: compactKeys(lines), rows: () => decodeCompact(lines), lines, bytes: HEADER_BYTES + len };
    } catch {
      return { ok: false, reason: 'corrupt', detail: 'payload is not compact rows' };
    }
  }
  let rows: EventRow[];
  try {
    rows = JSON.parse(payload.toString('utf8', 1)) as EventRow[];
  } catch {
    return { ok: false, reason: 'corrupt', detail: 'payload is not JSON' };
  }
  if (!Array.isArray(rows)) return { ok: false, reason: 'corrupt', detail: 'payload is not a list of rows' };
  return { ok: true, flags, keys: rows, rows: () => rows, bytes: HEADER_BYTES + len };
}

/**
 * A record this process appended, handed to the consumers in memory: its rows as the request made
 * them, until release(). After that only its keys and lines are held, and rows are parsed again from
 * the lines on each use (a bisected insert, rare). The observers need the rows, the loader only the
 * keys and lines: the log releases a record's rows once the observers are done with it, so the
 * loader's backlog in memory costs about its bytes in the log, not the ~9× of rows as objects.
 */
export class HeldRecord implements LogRecord {
  private held: EventRow[] | undefined;
  keys: readonly RowKey[];

  constructor(readonly pos: Pos, readonly end: Pos, readonly flags: number, rows: EventRow[], readonly lines: Buffer, readonly bytes: number) {
    this.held = rows;
    this.keys = rows;
  }

  get rows(): EventRow[] {
    return this.held ?? decodeCompact(this.lines);
  }

  get holdsRows(): boolean {
    return this.held !== undefined;
  }

  release(): void {
    if (!this.held) return;
    this.keys = this.held.map(keyOf);
    this.held = undefined;
  }
}

function keyOf(r: EventRow): RowKey {
  return { id: r.id, timestamp: r.timestamp, received_at: r.received_at, project_id: r.project_id };
}

/** A decoded frame at `pos` as a log record; its rows are parsed on first use, once. */
export function readRecord(pos: Pos, d: Extract<Decoded, { ok: true }>): LogRecord {
  let rows: EventRow[] | undefined;
  return {
    pos, end: { seg: pos.seg, off: pos.off + d.bytes }, flags: d.flags, keys: d.keys, lines: d.lines, bytes: d.bytes,
    get rows() {
      return (rows ??= d.rows());
    },
  };
}

/**
 * Each line's key (id, timestamp, received_at, project_id: the first four columns of a compact
 * row), without parsing the rest of the line: a loader behind the log reads records back from disk,
 * and parsing whole rows there was most of its work and of the garbage it made.
 */
export function compactKeys(lines: Buffer): RowKey[] {
  return mapLines(lines.toString('utf8'), keyOfLine);
}

/** The key of one line; a line not shaped as this version writes them is parsed whole. */
function keyOfLine(text: string, start: number, end: number): RowKey {
  return fastKey(text, start, end) ?? rowFromCompact(text.slice(start, end));
}

function fastKey(text: string, start: number, end: number): RowKey | undefined {
  if (text.charCodeAt(start) !== 91) return undefined; // [
  const idAt = jsonStringAt(text, start + 1, end);
  if (!idAt || text.charCodeAt(idAt[1]) !== 44) return undefined;
  const afterTs = text.indexOf(',', idAt[1] + 1);
  const afterReceived = afterTs === -1 ? -1 : text.indexOf(',', afterTs + 1);
  if (afterReceived === -1 || afterReceived >= end) return undefined;
  const timestamp = Number(text.slice(idAt[1] + 1, afterTs));
  const received_at = Number(text.slice(afterTs + 1, afterReceived));
  const projectAt = jsonStringAt(text, afterReceived + 1, end);
  if (!projectAt || !Number.isFinite(timestamp) || !Number.isFinite(received_at)) return undefined;
  return { id: idAt[0], timestamp, received_at, project_id: projectAt[0] };
}

/** The JSON string starting at `i` (its opening quote), and the index after its closing quote. */
function jsonStringAt(text: string, i: number, end: number): [string, number] | undefined {
  if (text.charCodeAt(i) !== 34) return undefined;
  let j = i + 1;
  let escaped = false;
  for (;;) {
    if (j >= end) return undefined;
    const c = text.charCodeAt(j);
    if (c === 34) break;
    if (c === 92) {
      escaped = true;
      j += 2;
    } else j++;
  }
  return [escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j), j + 1];
}
