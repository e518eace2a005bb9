// Audit exports of any size in bounded memory. The matching range is cut into time windows of at
// most `maxRows` events (from a count per hour, refined per minute, second and millisecond where
// one bucket holds more), and each window is read from storage in time order, a page at a time,
// and turned into NDJSON or CSV. So neither the engine's sort (ClickHouse runs in-process) nor
// this process ever holds more than a window's worth of sorting and a page of rows, and the HTTP
// reply's backpressure stops the reads while the client is slow.
import type { EventRow } from '../event.js';
import { EVENTS_TABLE } from '../storage/schema.js';
import type { CursorPosition, EventStore } from '../storage/event-store.js';
import { ParamBag, whereClause, type EventFilter } from '../query/filters.js';
import { toTimelineEntry } from './timeline.js';
import { csvHeader, entryToCsv } from './csv.js';

export type ExportFormat = 'ndjson' | 'csv';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['ndjson', 'csv'];

/** Rows per window: a window is about one page, so each row is read from storage about once. */
export const DEFAULT_WINDOW_ROWS = 10_000;
const BUCKETS = [3_600_000, 60_000, 1000, 1] as const;

export interface Bucket {
  start: number;
  n: number;
}

/**
 * Pure: cut points that split consecutive buckets (sorted by start, each `size` ms wide) into runs
 * of at most maxRows; a bucket holding more than maxRows on its own is returned in `oversized`
 * (its own cut points are found at a finer size).
 */
export function planCuts(buckets: readonly Bucket[], size: number, maxRows: number): { cuts: number[]; oversized: Bucket[] } {
  const cuts: number[] = [];
  const oversized: Bucket[] = [];
  let acc = 0;
  for (const b of buckets) {
    if (b.n > maxRows) {
      if (acc > 0) cuts.push(b.start);
      cuts.push(b.start + size);
      oversized.push(b);
      acc = 0;
    } else if (acc + b.n > maxRows) {
      cuts.push(b.start);
      acc = b.n;
    } else {
      acc += b.n;
    }
  }
  return { cuts, oversized };
}

/** Pure: consecutive [from, to) windows over the filter's range, split at the cut points. */
export function windowsFromCuts(cuts: readonly number[], from: number | undefined, to: number | undefined): { from?: number; to?: number }[] {
  const inside = [...new Set(cuts)].filter((c) => (from === undefined || c > from) && (to === undefined || c < to)).sort((a, b) => a - b);
  const bounds: (number | undefined)[] = [from, ...inside, to];
  const out: { from?: number; to?: number }[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) out.push({ from: bounds[i], to: bounds[i + 1] });
  return out;
}

async function bucketCounts(events: EventStore, filter: EventFilter, size: number, within?: { size: number; starts: number[] }): Promise<Bucket[]> {
  const bag = new ParamBag();
  let where = whereClause(filter, bag);
  if (within) where += ` AND intDiv(timestamp, ${bag.add(within.size, 'Int64')}) IN ${bag.add(within.starts.map((s) => s / within.size), 'Array(Int64)')}`;
  const rows = await events.query<{ b: number | string; n: number | string }>(
    `SELECT intDiv(timestamp, ${bag.add(size, 'Int64')}) AS b, count() AS n FROM ${EVENTS_TABLE} WHERE ${where} GROUP BY b ORDER BY b`,
    bag.params,
  );
  return rows.map((r) => ({ start: Number(r.b) * size, n: Number(r.n) }));
}

/**
 * The windows an export of `filter` is read in, and how many rows matched when they were planned.
 * One count query per level (hour, then minute, second and millisecond inside the buckets that
 * held more than maxRows), so planning costs at most four scans of the timestamp column.
 */
export async function exportWindows(events: EventStore, filter: EventFilter, maxRows = DEFAULT_WINDOW_ROWS):
  Promise<{ windows: { from?: number; to?: number }[]; rows: number }> {
  const cuts: number[] = [];
  let rows = 0;
  let within: { size: number; starts: number[] } | undefined;
  for (let level = 0; level < BUCKETS.length; level++) {
    const size = BUCKETS[level];
    const buckets = await bucketCounts(events, filter, size, within);
    if (level === 0) rows = buckets.reduce((s, b) => s + b.n, 0);
    // plan each parent bucket on its own: their edges are cuts already
    const oversized: Bucket[] = [];
    const parent = within?.size ?? Infinity;
    for (let i = 0; i < buckets.length;) {
      const p = Number.isFinite(parent) ? Math.floor(buckets[i].start / parent) : 0;
      let j = i;
      while (j < buckets.length && (Number.isFinite(parent) ? Math.floor(buckets[j].start / parent) : 0) === p) j++;
      const plan = planCuts(buckets.slice(i, j), size, maxRows);
      cuts.push(...plan.cuts);
      oversized.push(...plan.oversized);
      i = j;
    }
    if (oversized.length === 0 || level + 1 === BUCKETS.length) break;
    within = { size, starts: oversized.map((b) => b.start) };
  }
  return { windows: windowsFromCuts(cuts, filter.from, filter.to), rows };
}

/** Turns rows into output text. */
export function convertRows(rows: readonly EventRow[], format: ExportFormat): string {
  let out = '';
  for (const r of rows) out += convertRow(r, format);
  return out;
}

function convertRow(r: EventRow, format: ExportFormat): string {
  const entry = toTimelineEntry(r);
  return format === 'csv' ? entryToCsv(entry) : JSON.stringify(entry) + '\n';
}

/** Rows per storage query of an export. */
export const EXPORT_PAGE_ROWS = 10_000;
/** Output is handed on in pieces of about this size, so backpressure acts on small units. */
const PIECE_CHARS = 64 * 1024;

/**
 * The export as text pieces, in time order, over windows planned by exportWindows(). Each window
 * is read in keyset pages (EventStore.search): ordinary queries, so an export neither holds chDB's
 * one streaming cursor nor is cut off by other queries (any query on the session ends an open chDB
 * stream: "No active streaming query"). Pulling drives the reads: while the consumer does not pull
 * (backpressure), nothing more is read; return() (the reply was closed) or the signal stops it.
 */
export async function* exportText(
  events: EventStore, filter: EventFilter, format: ExportFormat, windows: readonly { from?: number; to?: number }[],
  opts: { signal?: AbortSignal; pageRows?: number } = {},
): AsyncGenerator<string> {
  let piece = format === 'csv' ? csvHeader() : '';
  for (const w of windows) {
    const wf: EventFilter = { ...filter, from: w.from, to: w.to };
    let after: CursorPosition | undefined;
    do {
      if (opts.signal?.aborted) return;
      const page = await events.search(wf, { order: 'asc', limit: opts.pageRows ?? EXPORT_PAGE_ROWS, after });
      for (const r of page.rows) {
        piece += convertRow(r, format);
        if (piece.length >= PIECE_CHARS) {
          yield piece;
          piece = '';
        }
      }
      after = page.next;
    } while (after);
  }
  if (piece) yield piece;
}
