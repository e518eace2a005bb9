// The event tables, in ClickHouse SQL that also runs on clickhouse-server 18.16: timestamps are Int64
// milliseconds (no DateTime64), retention is by dropping day partitions (no TTL), attributes are two
// parallel arrays (no JSON functions needed to filter on them).
import { EVENT_COLUMNS } from '../event.js';

export const EVENTS_TABLE = 'events';
export const KEYS_TABLE = 'event_keys';

/**
 * `event_keys` is a narrow lookup table filled by a materialized view on every insert. It is sorted by
 * (kind, value, project_id), so finding a session's, trace's, user's or fingerprint's events, or
 * whether an id was already stored, reads a few granules instead of scanning every event — with or
 * without a project named; the (project_id, timestamp) pairs it returns then hit the events
 * table's primary key.
 */
export const KEY_KINDS = {
  id: 'id',
  session_id: 'session',
  trace_id: 'trace',
  user_id: 'user',
  fingerprint: 'fingerprint',
} as const;
export type KeyedField = keyof typeof KEY_KINDS;

export function schemaStatements(): string[] {
  const columns = [
    'id String',
    'timestamp Int64',
    'received_at Int64',
    'project_id String',
    'event_type String',
    'engine String',
    'triggered_by String',
    'flow_id String',
    'session_id String',
    'user_id String',
    'trace_id String',
    'span_id String',
    'platform String',
    'action String',
    'status String',
    'severity String',
    'error_type String',
    'message String',
    'stack String',
    'duration_ms Nullable(Float64)',
    'retries Nullable(UInt32)',
    'fingerprint String',
    'alert UInt8',
    'sampled UInt8',
    'attr_keys Array(String)',
    'attr_values Array(String)',
  ];
  if (columns.length !== EVENT_COLUMNS.length) throw new Error('schema and EVENT_COLUMNS disagree');
  const pairs = Object.entries(KEY_KINDS)
    .map(([field, kind]) => `('${kind}', ${field})`)
    .join(', ');
  return [
    `CREATE TABLE IF NOT EXISTS ${EVENTS_TABLE} (${columns.join(', ')})
     ENGINE = MergeTree()
     PARTITION BY toYYYYMMDD(toDateTime(intDiv(timestamp, 1000)))
     ORDER BY (project_id, timestamp)`,
    `CREATE TABLE IF NOT EXISTS ${KEYS_TABLE} (project_id String, kind String, value String, timestamp Int64, id String)
     ENGINE = MergeTree()
     PARTITION BY toYYYYMM(toDateTime(intDiv(timestamp, 1000)))
     ORDER BY (kind, value, project_id, timestamp)`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${KEYS_TABLE}_mv TO ${KEYS_TABLE} AS
     SELECT project_id, k.1 AS kind, k.2 AS value, timestamp, id
     FROM ${EVENTS_TABLE} ARRAY JOIN [${pairs}] AS k
     WHERE k.2 != ''`,
  ];
}
