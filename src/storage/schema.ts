// The event tables, in ClickHouse SQL that also runs on clickhouse-server 18.16: timestamps are Int64
// milliseconds (no DateTime64), retention is by dropping day partitions (no TTL), attributes are two
// parallel arrays (no JSON functions needed to filter on them). What a server adds beyond that
// (LowCardinality, codecs, skip indexes) is chosen from its version: see StorageFeatures.
import { EVENT_COLUMNS } from '../event.js';

export const EVENTS_TABLE = 'events';
export const ROLLUP_TABLE = 'error_rollup';
export const HOUR_MS = 3_600_000;

/** The lookup table of the previous layout (five rows per event); dropped by migrate.ts. */
export const LEGACY_KEYS_TABLE = 'event_keys';

/** What the storage engine supports beyond 18.16's baseline. */
export interface StorageFeatures {
  /** LowCardinality(String) columns. */
  lowCardinality: boolean;
  /** Column codecs (Delta, ZSTD). */
  codecs: boolean;
  /** Data-skipping indexes (bloom_filter). */
  skipIndexes: boolean;
  /** Window functions (`count() OVER ()`). */
  windowFunctions: boolean;
}

/** chDB, and any server from 21.9 on. */
export const ALL_FEATURES: StorageFeatures = { lowCardinality: true, codecs: true, skipIndexes: true, windowFunctions: true };

/** What a server of this version (`SELECT version()`) supports. */
export function serverFeatures(version: string): StorageFeatures {
  const major = Number(version.split('.')[0]);
  if (!Number.isFinite(major)) return ALL_FEATURES;
  return {
    // 18.x has it as an experimental type whose functions keep returning LowCardinality (the
    // rollup view's String states then refuse it): plain String there
    lowCardinality: major >= 19,
    codecs: major >= 19,
    // bloom_filter indexes arrived in 19.6, behind a setting until 20.1
    skipIndexes: major >= 20,
    // experimental from 21.1, on by default from 21.9
    windowFunctions: major > 21 || (major === 21 && Number(version.split('.')[1]) >= 9),
  };
}

type Kind = 'lc' | 'key' | 'string' | 'time' | 'text' | 'plain';

/**
 * The events table's columns, in EVENT_COLUMNS order, by kind: `lc` low-cardinality strings (a few
 * hundred values per part: engines, platforms, flows, users), `string` high-cardinality ones (ids),
 * `time` millisecond timestamps (Delta + ZSTD: 1.9 B/event against 5.0 plain and 2.7 with DoubleDelta,
 * measured on bench/ingest's events), `text` message and stack (ZSTD(3); ZSTD(9) saves 0.35 B/event
 * on `message` but doubles its compression time at insert, bench/codec-cost). LowCardinality columns get
 * ZSTD(1) too (their keys are LZ4 otherwise: 1.75 B/event less on bench/ingest's events, most of it
 * engine, platform and action); `key` is project_id, first in the sort key, where codecs gain nothing.
 */
const EVENT_SCHEMA: readonly (readonly [name: string, base: string, kind: Kind])[] = [
  ['id', 'String', 'string'],
  ['timestamp', 'Int64', 'time'],
  ['received_at', 'Int64', 'time'],
  ['project_id', 'String', 'key'],
  ['event_type', 'String', 'lc'],
  ['engine', 'String', 'lc'],
  ['triggered_by', 'String', 'lc'],
  ['flow_id', 'String', 'lc'],
  ['session_id', 'String', 'string'],
  ['user_id', 'String', 'lc'],
  ['trace_id', 'String', 'string'],
  ['span_id', 'String', 'string'],
  ['platform', 'String', 'lc'],
  ['action', 'String', 'lc'],
  ['status', 'String', 'lc'],
  ['severity', 'String', 'lc'],
  ['error_type', 'String', 'lc'],
  ['message', 'String', 'text'],
  ['stack', 'String', 'text'],
  ['duration_ms', 'Nullable(Float64)', 'string'],
  ['retries', 'Nullable(UInt32)', 'string'],
  ['fingerprint', 'String', 'lc'],
  ['alert', 'UInt8', 'plain'],
  ['sampled', 'UInt8', 'plain'],
  ['attr_keys', 'Array(String)', 'lc'],
  ['attr_values', 'Array(String)', 'string'],
];

/** A column's type (with codec) as created on a store with these features. */
export function eventColumnType(name: string, f: StorageFeatures): { type: string; codec: string } {
  const col = EVENT_SCHEMA.find((c) => c[0] === name);
  if (!col) throw new Error(`no event column ${name}`);
  const [, base, kind] = col;
  let type = base;
  if ((kind === 'lc' || kind === 'key') && f.lowCardinality) {
    // LowCardinality inside Array only where codecs are (18.16's experimental type is top-level only)
    if (base === 'String') type = 'LowCardinality(String)';
    else if (base === 'Array(String)' && f.codecs) type = 'Array(LowCardinality(String))';
  }
  let codec = '';
  if (f.codecs) {
    if (kind === 'time') codec = 'CODEC(Delta, ZSTD(1))';
    else if (kind === 'text') codec = 'CODEC(ZSTD(3))';
    else if (kind === 'string' || kind === 'lc' || (kind === 'key' && type === base)) codec = 'CODEC(ZSTD(1))';
  }
  return { type, codec };
}

/**
 * Skip indexes replacing the old `event_keys` table (five rows per event, larger than the events):
 * one bloom filter per granule over the lookup keys. Events are sorted by (project_id, timestamp),
 * and a session's, trace's or request's events are close in time, so a lookup reads the few
 * granules whose filter matches — with or without a project named. Measured on bench/ingest's
 * events: 1.3 (id), 1.0 (session), 0.6 (user) B/event; traces and fingerprints less.
 */
export const EVENT_INDEXES: readonly (readonly [name: string, expr: string, type: string])[] = [
  ['idx_id', 'id', 'bloom_filter(0.01)'],
  ['idx_session', 'session_id', 'bloom_filter(0.01)'],
  ['idx_trace', 'trace_id', 'bloom_filter(0.01)'],
  ['idx_user', 'user_id', 'bloom_filter(0.01)'],
  ['idx_fingerprint', 'fingerprint', 'bloom_filter(0.01)'],
];

/** The events partition key: one partition per UTC day, dropped whole by retention. */
export const EVENTS_PARTITION_BY = 'toYYYYMMDD(toDateTime(intDiv(timestamp, 1000)))';
export const ROLLUP_PARTITION_BY = 'toYYYYMM(toDateTime(intDiv(hour, 1000)))';

/**
 * Every table that holds event data, for retention (drop partitions older than a cutoff, delete a
 * project's rows). `time` is the column in epoch milliseconds the partition key is made from;
 * `partition` how wide one partition is. Keep it in step with schemaStatements().
 */
export const EVENT_TABLES: readonly { table: string; time: string; partitionBy: string; partition: 'day' | 'month'; project: string }[] = [
  { table: EVENTS_TABLE, time: 'timestamp', partitionBy: EVENTS_PARTITION_BY, partition: 'day', project: 'project_id' },
  { table: ROLLUP_TABLE, time: 'hour', partitionBy: ROLLUP_PARTITION_BY, partition: 'month', project: 'project_id' },
];

export function eventsTableStatement(f: StorageFeatures): string {
  const columns = EVENT_SCHEMA.map(([name]) => {
    const { type, codec } = eventColumnType(name, f);
    return `${name} ${type}${codec ? ' ' + codec : ''}`;
  });
  if (f.skipIndexes) for (const [name, expr, type] of EVENT_INDEXES) columns.push(`INDEX ${name} ${expr} TYPE ${type} GRANULARITY 1`);
  return `CREATE TABLE IF NOT EXISTS ${EVENTS_TABLE} (${columns.join(', ')})
     ENGINE = MergeTree()
     PARTITION BY ${EVENTS_PARTITION_BY}
     ORDER BY (project_id, timestamp)`;
}

export function schemaStatements(f: StorageFeatures = ALL_FEATURES): string[] {
  if (EVENT_SCHEMA.length !== EVENT_COLUMNS.length || EVENT_SCHEMA.some(([n], i) => n !== EVENT_COLUMNS[i])) {
    throw new Error('schema and EVENT_COLUMNS disagree');
  }
  return [eventsTableStatement(f), ...rollupStatements(f)];
}

/**
 * The error rollup's state columns, in order, with the expression that makes each state from raw
 * events. The aggregator reads them (aggregator/rollup.ts); the materialized view below writes them.
 */
export const ROLLUP_STATES: readonly (readonly [name: string, type: string, fromEvents: string])[] = [
  ['c', 'AggregateFunction(count)', 'countState()'],
  ['sampled_out', 'AggregateFunction(sum, UInt8)', 'sumState(sampled)'],
  ['users', 'AggregateFunction(uniqExactIf, String, UInt8)', "uniqExactIfState(toString(user_id), user_id != '')"],
  ['sessions', 'AggregateFunction(uniqExactIf, String, UInt8)', "uniqExactIfState(session_id, session_id != '')"],
  ['first_seen', 'AggregateFunction(min, Int64)', 'minState(timestamp)'],
  ['last_seen', 'AggregateFunction(max, Int64)', 'maxState(timestamp)'],
  ['g_error_type', 'AggregateFunction(argMax, String, Int64)', 'argMaxState(toString(error_type), timestamp)'],
  ['g_message', 'AggregateFunction(argMax, String, Int64)', 'argMaxState(message, timestamp)'],
  ['g_engine', 'AggregateFunction(argMax, String, Int64)', 'argMaxState(toString(engine), timestamp)'],
  ['g_platform', 'AggregateFunction(argMax, String, Int64)', 'argMaxState(toString(platform), timestamp)'],
];

/**
 * The codec of the rollup's state columns where the server has codecs: ZSTD(9) takes the rollup from
 * 5.9 to 3.8 B/event on bench/ingest's events (LZ4 by default; ZSTD(1) 4.4, ZSTD(3) 4.1). The rollup
 * holds a row per group and hour, not per event, so the slower level costs ~0.05 µs per event at
 * insert (bench/codec-cost). The key columns keep the default. Existing stores get it at start.
 */
export function rollupStateCodec(f: StorageFeatures): string {
  return f.codecs ? 'CODEC(ZSTD(9))' : '';
}

/**
 * `error_rollup`: per (project, fingerprint, hour) aggregate states, filled as events are inserted,
 * so listing error groups over days reads a few thousand rows instead of every error event.
 */
function rollupStatements(f: StorageFeatures): string[] {
  const codec = rollupStateCodec(f);
  return [
    `CREATE TABLE IF NOT EXISTS ${ROLLUP_TABLE} (project_id String, fingerprint String, hour Int64, ${ROLLUP_STATES.map(([n, t]) => `${n} ${t}${codec ? ' ' + codec : ''}`).join(', ')})
     ENGINE = AggregatingMergeTree()
     PARTITION BY ${ROLLUP_PARTITION_BY}
     ORDER BY (project_id, fingerprint, hour)`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${ROLLUP_TABLE}_mv TO ${ROLLUP_TABLE} AS
     SELECT toString(project_id) AS project_id, toString(fingerprint) AS fingerprint, intDiv(timestamp, ${HOUR_MS}) * ${HOUR_MS} AS hour, ${ROLLUP_STATES.map(([n, , e]) => `${e} AS ${n}`).join(', ')}
     FROM ${EVENTS_TABLE} WHERE fingerprint != ''
     GROUP BY project_id, fingerprint, hour`,
  ];
}
