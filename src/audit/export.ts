// Audit exports of any size in bounded memory. The matching range is cut into time windows of at
// most `maxRows` events (from a count per hour, refined per minute, second and millisecond where
// one bucket holds more), and each window is streamed from storage in time order and turned into
// NDJSON or CSV one storage chunk at a time. So neither the engine's sort (ClickHouse runs
// in-process) nor this process ever holds more than a window, and the HTTP reply's backpressure
// pauses the storage stream when the client reads slowly.
import type { EventRow } from '../event.js';
import { EVENTS_TABLE } from '../storage/schema.js';
import type { EventStore } from '../storage/event-store.js';
import { ParamBag, whereClause, type EventFilter } from '../query/filters.js';
import { toTimelineEntry } from './timeline.js';
import { csvHeader, entryToCsv } from './csv.js';

export type ExportFormat = 'ndjson' | 'csv';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['ndjson', 'csv'];

/** Rows per window: a sort of this many rows is small next to the engine's own footprint. */
export const DEFAULT_WINDOW_ROWS = 50_000;
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

async function bucketCounts(events: EventStore, filter: EventFilter, size: number): Promise<Bucket[]> {
  const bag = new ParamBag();
  const where = whereClause(filter, bag);
  const rows = await events.query<{ b: number | string; n: number | string }>(
    `SELECT intDiv(timestamp, ${bag.add(size, 'Int64')}) AS b, count() AS n FROM ${EVENTS_TABLE} WHERE ${where} GROUP BY b ORDER BY b`,
    bag.params,
  );
  return rows.map((r) => ({ start: Number(r.b) * size, n: Number(r.n) }));
}

/** The windows an export of `filter` is streamed in, and how many rows matched when they were planned. */
export async function exportWindows(events: EventStore, filter: EventFilter, maxRows = DEFAULT_WINDOW_ROWS):
  Promise<{ windows: { from?: number; to?: number }[]; rows: number }> {
  const cuts: number[] = [];
  let rows = 0;
  const plan = async (f: EventFilter, level: number): Promise<void> => {
    const size = BUCKETS[level];
    const buckets = await bucketCounts(events, f, size);
    if (level === 0) rows = buckets.reduce((s, b) => s + b.n, 0);
    const p = planCuts(buckets, size, maxRows);
    cuts.push(...p.cuts);
    if (level + 1 < BUCKETS.length) {
      for (const b of p.oversized) {
        await plan({ ...f, from: Math.max(b.start, f.from ?? b.start), to: Math.min(b.start + size, f.to ?? b.start + size) }, level + 1);
      }
    }
  };
  await plan(filter, 0);
  return { windows: windowsFromCuts(cuts, filter.from, filter.to), rows };
}

/** Turns one storage chunk (JSONEachRow lines) into output text. */
export function convertChunk(text: string, format: ExportFormat): { out: string; rows: number } {
  let out = '';
  let rows = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    if (end > start) {
      const entry = toTimelineEntry(JSON.parse(text.slice(start, end)) as EventRow);
      out += format === 'csv' ? entryToCsv(entry) : JSON.stringify(entry) + '\n';
      rows++;
    }
    start = end + 1;
  }
  return { out, rows };
}

export interface ExportProgress {
  rows: number;
}

/**
 * The export as text pieces, in time order, over windows planned by exportWindows(). Pulling
 * drives the storage stream: when the consumer stops pulling (backpressure), storage is not read;
 * return() (the reply was closed) or the signal ends the storage stream.
 */
export async function* exportText(
  events: EventStore, filter: EventFilter, format: ExportFormat, windows: readonly { from?: number; to?: number }[],
  opts: { signal?: AbortSignal; progress?: ExportProgress } = {},
): AsyncGenerator<string> {
  if (format === 'csv') yield csvHeader();
  for (const w of windows) {
    const wf: EventFilter = { ...filter, from: w.from, to: w.to };
    for await (const chunk of events.stream(wf, 'asc', opts.signal)) {
      const { out, rows } = convertChunk(chunk, format);
      if (opts.progress) opts.progress.rows += rows;
      if (out) yield out;
    }
  }
}
