// GET /monitoring/projects/:id/usage: a project's events and bytes per day. `bytes` is the project's
// share (by rows) of the events table's on-disk size for that day's partition; `raw_bytes` the size
// of its events' fields as stored, uncompressed. Days are the events table's day partitions.
import { EVENTS_TABLE } from '../storage/schema.js';
import type { EventStore } from '../storage/event-store.js';

export interface UsageDay {
  /** YYYY-MM-DD */
  day: string;
  events: number;
  bytes: number;
  raw_bytes: number;
}

const STRING_FIELDS = [
  'id', 'project_id', 'event_type', 'engine', 'triggered_by', 'flow_id', 'session_id', 'user_id', 'trace_id', 'span_id',
  'platform', 'action', 'status', 'severity', 'error_type', 'message', 'stack', 'fingerprint',
];
/** timestamp, received_at, duration_ms, retries, alert, sampled */
const FIXED_BYTES = 8 + 8 + 8 + 4 + 1 + 1;
const RAW_BYTES = `${STRING_FIELDS.map((f) => `length(${f})`).join(' + ')} + ${FIXED_BYTES}
  + arraySum(arrayMap(x -> length(x), attr_keys)) + arraySum(arrayMap(x -> length(x), attr_values))`;

const dayOf = (p: string): string => `${p.slice(0, 4)}-${p.slice(4, 6)}-${p.slice(6, 8)}`;

export async function projectUsage(events: EventStore, project: string, from: number, to: number): Promise<UsageDay[]> {
  const days = await events.query<{ p: string; events: number; raw: number }>(
    `SELECT toString(toYYYYMMDD(toDateTime(intDiv(timestamp, 1000)))) AS p, count() AS events, sum(${RAW_BYTES}) AS raw
     FROM ${EVENTS_TABLE} WHERE project_id = {project:String} AND timestamp >= {from:Int64} AND timestamp < {to:Int64}
     GROUP BY p ORDER BY p`,
    { project, from, to },
  );
  if (days.length === 0) return [];
  const parts = await events.query<{ partition: string; rows: number; disk: number }>(
    `SELECT partition, sum(rows) AS rows, sum(bytes_on_disk) AS disk FROM system.parts
     WHERE active AND database = currentDatabase() AND table IN {tables:Array(String)} AND partition IN {parts:Array(String)}
     GROUP BY partition`,
    { tables: [EVENTS_TABLE, `${EVENTS_TABLE}_local`], parts: days.map((d) => String(d.p)) },
  );
  const disk = new Map(parts.map((p) => [String(p.partition), { rows: Number(p.rows), disk: Number(p.disk) }]));
  return days.map((d) => {
    const part = disk.get(String(d.p));
    const n = Number(d.events);
    return {
      day: dayOf(String(d.p)),
      events: n,
      bytes: part && part.rows > 0 ? Math.round((part.disk * Math.min(n, part.rows)) / part.rows) : 0,
      raw_bytes: Number(d.raw),
    };
  });
}
