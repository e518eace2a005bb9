// The event store's first layout, verbatim (before migrate.ts): plain String columns, the
// five-rows-per-event event_keys table and its view, the rollup view over plain columns.
export const FIRST_LAYOUT = [
  `CREATE TABLE events (id String, timestamp Int64, received_at Int64, project_id String, event_type String, engine String,
     triggered_by String, flow_id String, session_id String, user_id String, trace_id String, span_id String, platform String,
     action String, status String, severity String, error_type String, message String, stack String, duration_ms Nullable(Float64),
     retries Nullable(UInt32), fingerprint String, alert UInt8, sampled UInt8, attr_keys Array(String), attr_values Array(String))
   ENGINE = MergeTree() PARTITION BY toYYYYMMDD(toDateTime(intDiv(timestamp, 1000))) ORDER BY (project_id, timestamp)`,
  `CREATE TABLE event_keys (project_id String, kind String, value String, timestamp Int64, id String)
   ENGINE = MergeTree() PARTITION BY toYYYYMM(toDateTime(intDiv(timestamp, 1000))) ORDER BY (kind, value, project_id, timestamp)`,
  `CREATE MATERIALIZED VIEW event_keys_mv TO event_keys AS
   SELECT project_id, k.1 AS kind, k.2 AS value, timestamp, id
   FROM events ARRAY JOIN [('id', id), ('session', session_id), ('trace', trace_id), ('user', user_id), ('fingerprint', fingerprint)] AS k
   WHERE k.2 != ''`,
  `CREATE TABLE error_rollup (project_id String, fingerprint String, hour Int64, c AggregateFunction(count),
     sampled_out AggregateFunction(sum, UInt8), users AggregateFunction(uniqExactIf, String, UInt8),
     sessions AggregateFunction(uniqExactIf, String, UInt8), first_seen AggregateFunction(min, Int64), last_seen AggregateFunction(max, Int64),
     g_error_type AggregateFunction(argMax, String, Int64), g_message AggregateFunction(argMax, String, Int64),
     g_engine AggregateFunction(argMax, String, Int64), g_platform AggregateFunction(argMax, String, Int64))
   ENGINE = AggregatingMergeTree() PARTITION BY toYYYYMM(toDateTime(intDiv(hour, 1000))) ORDER BY (project_id, fingerprint, hour)`,
  `CREATE MATERIALIZED VIEW error_rollup_mv TO error_rollup AS
   SELECT project_id, fingerprint, intDiv(timestamp, 3600000) * 3600000 AS hour, countState() AS c, sumState(sampled) AS sampled_out,
     uniqExactIfState(user_id, user_id != '') AS users, uniqExactIfState(session_id, session_id != '') AS sessions,
     minState(timestamp) AS first_seen, maxState(timestamp) AS last_seen, argMaxState(error_type, timestamp) AS g_error_type,
     argMaxState(message, timestamp) AS g_message, argMaxState(engine, timestamp) AS g_engine, argMaxState(platform, timestamp) AS g_platform
   FROM events WHERE fingerprint != '' GROUP BY project_id, fingerprint, hour`,
];

