// One event row in storage's insert format (JSONCompactEachRow, columns in EVENT_COLUMNS order) and
// back. The write-ahead log keeps rows in this form, so the loader hands storage the bytes the
// request wrote instead of serialising every row again; EventStore.insert writes the same lines.
import { EVENT_COLUMNS, type EventRow } from '../event.js';

/** The row as one JSON array (no newline). JSON escapes every newline inside strings. */
export function compactLine(r: EventRow): string {
  return JSON.stringify([
    r.id, r.timestamp, r.received_at, r.project_id, r.event_type, r.engine, r.triggered_by,
    r.flow_id, r.session_id, r.user_id, r.trace_id, r.span_id, r.platform, r.action, r.status,
    r.severity, r.error_type, r.message, r.stack, r.duration_ms, r.retries, r.fingerprint, r.alert, r.sampled,
    r.attr_keys, r.attr_values,
  ]);
}

/** compactLine's inverse. Throws on text that is not a JSON array of the columns. */
export function rowFromCompact(line: string): EventRow {
  const v = JSON.parse(line) as unknown[];
  if (!Array.isArray(v) || v.length !== EVENT_COLUMNS.length) throw new Error('not a compact event row');
  const row = {} as Record<string, unknown>;
  for (let i = 0; i < EVENT_COLUMNS.length; i++) row[EVENT_COLUMNS[i]] = v[i];
  return row as unknown as EventRow;
}

/** Where each line of a payload of newline-terminated lines starts, plus the payload's length. */
export function lineStarts(payload: Buffer): number[] {
  const starts = [0];
  for (let at = payload.indexOf(10); at !== -1; at = payload.indexOf(10, at + 1)) starts.push(at + 1);
  if (starts[starts.length - 1] !== payload.length) starts.push(payload.length);
  return starts;
}

/** `fn` of each non-empty line of newline-separated text (given as the text and the line's bounds). */
export function mapLines<T>(text: string, fn: (text: string, start: number, end: number) => T): T[] {
  const out: T[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    if (end > start) out.push(fn(text, start, end));
    start = end + 1;
  }
  return out;
}
