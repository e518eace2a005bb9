// The event tables, in ClickHouse SQL that also runs on clickhouse-server 18.16: timestamps are Int64
// milliseconds (no DateTime64), retention is by dropping day partitions (no TTL), attributes are two
// parallel arrays (no JSON functions needed to filter on them).
import { EVENT_COLUMNS } from '../event.js';

export const EVENTS_TABLE = 'events';
export const KEYS_TABLE = 'event_keys';
export const ROLLUP_TABLE = 'error_rollup';
export const HOUR_MS = 3_600_000;

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

/** An event-derived table as retention and usage see it: its time column (Int64 ms) and partition grain. */
export interface EventTable {
  name: string;
  timeColumn: string;
  /** The partition key is this grain of timeColumn: toYYYYMMDD (day) or toYYYYMM (month). */
  partition: 'day' | 'month';
}

/** Every table that holds data derived from events, with how it is partitioned (kept in step with the DDL below). */
export const EVENT_TABLES: readonly EventTable[] = [
  { name: EVENTS_TABLE, timeColumn: 'timestamp', partition: 'day' },
  { name: KEYS_TABLE, timeColumn: 'timestamp', partition: 'month' },
  { name: ROLLUP_TABLE, timeColumn: 'hour', partition: 'month' },
];

/** The partition expression of a table in EVENT_TABLES (as in its PARTITION BY). */
export function partitionExpr(t: EventTable): string {
  return `${t.partition === 'day' ? 'toYYYYMMDD' : 'toYYYYMM'}(toDateTime(intDiv(${t.timeColumn}, 1000)))`;
}

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
    ...rollupStatements(),
  ];
}


/**
 * The error rollup's state columns, in order, with the expression that makes each state from raw
 * events. The aggregator reads them (aggregator/rollup.ts); the materialized view below writes them.
 */
export const ROLLUP_STATES: readonly (readonly [name: string, type: string, fromEvents: string])[] = [
  ['c', 'AggregateFunction(count)', 'countState()'],
  ['sampled_out', 'AggregateFunction(sum, UInt8)', 'sumState(sampled)'],
  ['users', 'AggregateFunction(uniqExactIf, String, UInt8)', "uniqExactIfState(user_id, user_id != '')"],
  ['sessions', 'AggregateFunction(uniqExactIf, String, UInt8)', "uniqExactIfState(session_id, session_id != '')"],
  ['first_seen', 'AggregateFunction(min, Int64)', 'minState(timestamp)'],
  ['last_seen', 'AggregateFunction(max, Int64)', 'maxState(timestamp)'],
  ['g_error_type', 'AggregateFunction(argMax, String, Int64)', 'argMaxState(error_type, timestamp)'],
  ['g_message', 'AggregateFunction(argMax, String, Int64)', 'argMaxState(message, timestamp)'],
  ['g_engine', 'AggregateFunction(argMax, String, Int64)', 'argMaxState(engine, timestamp)'],
  ['g_platform', 'AggregateFunction(argMax, String, Int64)', 'argMaxState(platform, timestamp)'],
];

/**
 * `error_rollup`: per (project, fingerprint, hour) aggregate states, filled as events are inserted,
 * so listing error groups over days reads a few thousand rows instead of every error event.
 */
function rollupStatements(): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${ROLLUP_TABLE} (project_id String, fingerprint String, hour Int64, ${ROLLUP_STATES.map(([n, t]) => `${n} ${t}`).join(', ')})
     ENGINE = AggregatingMergeTree()
     PARTITION BY toYYYYMM(toDateTime(intDiv(hour, 1000)))
     ORDER BY (project_id, fingerprint, hour)`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${ROLLUP_TABLE}_mv TO ${ROLLUP_TABLE} AS
     SELECT project_id, fingerprint, intDiv(timestamp, ${HOUR_MS}) * ${HOUR_MS} AS hour, ${ROLLUP_STATES.map(([n, , e]) => `${e} AS ${n}`).join(', ')}
     FROM ${EVENTS_TABLE} WHERE fingerprint != ''
     GROUP BY project_id, fingerprint, hour`,
  ];
}
