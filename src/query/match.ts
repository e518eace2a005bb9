// The same filters as the SQL in filters.ts, applied to one row in memory: for the live tail, the
// instant alert rules and anything else that must decide on an event as it is written. The query
// language part is language/evaluate.ts.
import { FILTER_FIELDS, type EventRow } from '../event.js';
import type { EventFilter } from './filters.js';
import { containsTest, predicateOf } from './language/evaluate.js';

export function matchesFilter(f: EventFilter, row: EventRow): boolean {
  if (f.projects && !f.projects.includes(row.project_id)) return false;
  for (const field of FILTER_FIELDS) {
    const values = f.eq[field];
    if (values && values.length > 0 && !values.includes(row[field])) return false;
  }
  for (const a of f.attrs) {
    const i = row.attr_keys.indexOf(a.key);
    if (i === -1 || !a.values.includes(row.attr_values[i])) return false;
  }
  const ts = Number(row.timestamp);
  if (f.from !== undefined && ts < f.from) return false;
  if (f.to !== undefined && ts >= f.to) return false;
  if (f.q) {
    const test = containsTest([f.q]);
    if (!test(row.message) && !test(row.error_type) && !test(row.stack)) return false;
  }
  if (f.alert !== undefined && (Number(row.alert) === 1) !== f.alert) return false;
  if (f.hasDuration && row.duration_ms === null) return false;
  if (f.hasFingerprint && !row.fingerprint) return false;
  if (f.excludeAudit && row.event_type === 'audit') return false;
  if (f.query && !predicateOf(f.query)(row)) return false;
  return true;
}
