// CSV for audit exports: RFC 4180 (CRLF line ends, fields with quotes, commas or line breaks
// enclosed in double quotes, quotes doubled), and guarded against CSV injection: a text cell that
// a spreadsheet would read as a formula (= + - @, or a leading tab / CR) is prefixed with a quote.
import type { TimelineEntry } from './timeline.js';

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

export type CsvValue = string | number | boolean | null | undefined;

export function csvCell(v: CsvValue): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  let s = v;
  if (FORMULA_START.test(s)) s = `'${s}`;
  return NEEDS_QUOTES.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(values: readonly CsvValue[]): string {
  return values.map(csvCell).join(',') + '\r\n';
}

export const CSV_COLUMNS = [
  'id', 'time', 'project_id', 'user_id', 'session_id', 'flow_id', 'trace_id', 'event_type', 'action',
  'platform', 'engine', 'triggered_by', 'client_address', 'status', 'severity', 'duration_ms',
  'error_type', 'error_message', 'fingerprint', 'message', 'change_target', 'change_diff', 'attributes',
] as const;

export function csvHeader(): string {
  return csvLine(CSV_COLUMNS);
}

/** One timeline entry as a CSV line, in CSV_COLUMNS order (diff and attributes as JSON). */
export function entryToCsv(e: TimelineEntry): string {
  const attrs = Object.keys(e.attributes).length ? JSON.stringify(e.attributes) : '';
  return csvLine([
    e.id, e.when, e.project_id, e.who.user_id, e.who.session_id, e.what.flow_id, e.what.trace_id,
    e.what.event_type, e.what.action, e.what.platform, e.from.engine, e.from.triggered_by, e.from.address,
    e.outcome.status, e.outcome.severity, e.outcome.duration_ms, e.outcome.error?.error_type ?? '',
    e.outcome.error?.message ?? '', e.outcome.error?.fingerprint ?? '', e.what.message,
    e.change?.target ?? '', e.change?.diff ? JSON.stringify(e.change.diff) : '', attrs,
  ]);
}
