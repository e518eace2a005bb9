// Logs → Datadog's HTTP logs intake (v2): a JSON array of entries, gzip, DD-API-KEY. Requests are cut
// at Datadog's limits: at most 1,000 entries and 5 MB (uncompressed) each.
import type { EventRow } from '../event.js';
import type { DatadogTarget } from './config.js';

export const DATADOG_LIMITS = { maxEntries: 1000, maxBytes: 5 * 1024 * 1024 } as const;

const STATUS: Record<string, string> = {
  debug: 'debug', info: 'info', low: 'notice', warning: 'warning', warn: 'warning', medium: 'warning',
  error: 'error', high: 'error', critical: 'critical', fatal: 'emergency',
};

/** One stored event → one Datadog log entry (reserved attributes where Datadog has them). */
export function datadogEntry(row: EventRow, t: DatadogTarget): Record<string, unknown> {
  const attributes: Record<string, string> = {};
  for (let i = 0; i < row.attr_keys.length; i++) attributes[row.attr_keys[i]] = row.attr_values[i];
  const tags = [`project_id:${row.project_id}`, `event_type:${row.event_type}`];
  if (t.tags) tags.push(t.tags);
  const entry: Record<string, unknown> = {
    ddsource: t.ddsource ?? 'puraify',
    ddtags: tags.join(','),
    service: row.engine || t.service || 'unknown',
    message: row.message,
    status: STATUS[row.severity.toLowerCase()] ?? (row.event_type === 'error' ? 'error' : 'info'),
    timestamp: Number(row.timestamp),
    puraify: {
      id: row.id, project_id: row.project_id, event_type: row.event_type, fingerprint: row.fingerprint || undefined,
      flow_id: row.flow_id || undefined, session_id: row.session_id || undefined, action: row.action || undefined,
      status: row.status || undefined, platform: row.platform || undefined, attributes,
    },
  };
  if (attributes.hostname) entry.hostname = attributes.hostname;
  if (row.duration_ms !== null) entry.duration = Number(row.duration_ms) * 1e6; // Datadog: nanoseconds
  if (row.user_id) entry.usr = { id: row.user_id };
  if (row.trace_id) entry.trace_id = row.trace_id;
  if (row.span_id) entry.span_id = row.span_id;
  if (row.error_type || row.stack) entry.error = { kind: row.error_type || undefined, message: row.message, stack: row.stack || undefined };
  return entry;
}

/**
 * Entries → request bodies (JSON arrays) within the limits. A stored event is at most 64 KB
 * (LIMITS.maxEventBytes), far under Datadog's 1 MB per entry, so no entry needs cutting.
 */
export function datadogBodies(rows: readonly EventRow[], t: DatadogTarget): { body: string; entries: number; ids: string[] }[] {
  const bodies: { body: string; entries: number; ids: string[] }[] = [];
  let parts: string[] = [];
  let ids: string[] = [];
  let bytes = 2;
  for (const row of rows) {
    const json = JSON.stringify(datadogEntry(row, t));
    const size = Buffer.byteLength(json) + 1;
    if (parts.length > 0 && (parts.length >= DATADOG_LIMITS.maxEntries || bytes + size > DATADOG_LIMITS.maxBytes)) {
      bodies.push({ body: `[${parts.join(',')}]`, entries: parts.length, ids });
      parts = [];
      ids = [];
      bytes = 2;
    }
    parts.push(json);
    ids.push(row.id);
    bytes += size;
  }
  if (parts.length) bodies.push({ body: `[${parts.join(',')}]`, entries: parts.length, ids });
  return bodies;
}
