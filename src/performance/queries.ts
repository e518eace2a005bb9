// Performance Monitor SQL: latency percentiles, error rate, retries, timeouts and throughput by any
// grouping, bucketed series, and latency-spike detection. Builders are pure; EventStore runs them.
import type { EventStore } from '../storage/event-store.js';
import { EVENTS_TABLE } from '../storage/schema.js';
import { ParamBag, whereClause, type EventFilter } from '../query/filters.js';

export const GROUP_DIMENSIONS = ['project_id', 'engine', 'platform', 'action', 'flow_id', 'event_type', 'status', 'error_type', 'severity', 'user_id', 'session_id', 'trace_id'] as const;
export type Dimension = (typeof GROUP_DIMENSIONS)[number];

/** An event counts as an error when the aggregator fingerprinted it (see isErrorLike). */
export const IS_ERROR = "fingerprint != ''";
export const IS_TIMEOUT = "(lower(status) = 'timeout' OR positionCaseInsensitive(error_type, 'timeout') > 0)";

export interface SpikeOptions {
  windowMs: number;
  baselineMs: number;
  factor: number;
  minCount: number;
}

export const DEFAULT_SPIKE: SpikeOptions = { windowMs: 5 * 60_000, baselineMs: 60 * 60_000, factor: 2, minCount: 5 };

export interface PerformanceGroup {
  group: Record<string, string>;
  count: number;
  errors: number;
  error_rate: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  avg_retries: number | null;
  max_retries: number | null;
  timeouts: number;
  throughput_per_min: number;
  latency_spike: { spike: boolean; window_p95: number | null; baseline_p95: number | null; factor: number };
}

const num = (v: unknown): number | null => (v === null || v === undefined || Number.isNaN(Number(v)) ? null : Number(v));

export async function performance(
  events: EventStore, f: EventFilter, groupBy: readonly Dimension[], range: { from: number; to: number },
  spike: SpikeOptions = DEFAULT_SPIKE, limit = 1000,
): Promise<PerformanceGroup[]> {
  const bag = new ParamBag();
  // the baseline reaches back before `from` when the range is short
  const scanFrom = Math.min(range.from, range.to - spike.windowMs - spike.baselineMs);
  const where = whereClause({ ...f, from: scanFrom, to: range.to }, bag);
  const from = bag.add(range.from, 'Int64');
  const win = bag.add(range.to - spike.windowMs, 'Int64');
  const base = bag.add(range.to - spike.windowMs - spike.baselineMs, 'Int64');
  const inRange = `timestamp >= ${from}`;
  const dims = groupBy.map((d) => `${d} AS g_${d}`).join(', ');
  const rows = await events.query<Record<string, unknown>>(
    `SELECT ${dims ? dims + ',' : ''}
       countIf(${inRange}) AS count,
       countIf(${inRange} AND ${IS_ERROR}) AS errors,
       quantilesExactIf(0.5, 0.95, 0.99)(duration_ms, ${inRange}) AS q,
       countIf(${inRange} AND isNotNull(duration_ms)) AS timed,
       maxIf(duration_ms, ${inRange}) AS max,
       avgIf(retries, ${inRange}) AS avg_retries,
       maxIf(retries, ${inRange}) AS max_retries,
       countIf(${inRange} AND ${IS_TIMEOUT}) AS timeouts,
       quantileExactIf(0.95)(duration_ms, timestamp >= ${win}) AS window_p95,
       countIf(timestamp >= ${win} AND isNotNull(duration_ms)) AS window_n,
       quantileExactIf(0.95)(duration_ms, timestamp >= ${base} AND timestamp < ${win}) AS baseline_p95
     FROM ${EVENTS_TABLE} WHERE ${where}
     ${groupBy.length ? `GROUP BY ${groupBy.map((d) => `g_${d}`).join(', ')}` : ''}
     HAVING count > 0
     ORDER BY count DESC LIMIT ${limit}`,
    bag.params,
  );
  const minutes = Math.max(1 / 60, (range.to - range.from) / 60_000);
  return rows.map((r) => {
    // with no durations the quantiles come back as zeros: say "no data" instead
    const q = Number(r.timed) > 0 ? ((r.q as (number | null)[] | null) ?? []) : [];
    const count = Number(r.count);
    const errors = Number(r.errors);
    const windowP95 = Number(r.window_n) > 0 ? num(r.window_p95) : null;
    const baselineP95 = num(r.baseline_p95);
    const group: Record<string, string> = {};
    for (const d of groupBy) group[d] = String(r[`g_${d}`]);
    return {
      group,
      count,
      errors,
      error_rate: count ? errors / count : 0,
      p50: num(q[0]), p95: num(q[1]), p99: num(q[2]),
      max: Number(r.timed) > 0 ? num(r.max) : null,
      avg_retries: num(r.avg_retries),
      max_retries: num(r.max_retries),
      timeouts: Number(r.timeouts),
      throughput_per_min: count / minutes,
      latency_spike: {
        spike: isSpike(windowP95, baselineP95, Number(r.window_n), spike),
        window_p95: windowP95,
        baseline_p95: baselineP95,
        factor: spike.factor,
      },
    };
  });
}

/** Pure: the latest window's p95 against its baseline. */
export function isSpike(windowP95: number | null, baselineP95: number | null, windowCount: number, o: SpikeOptions): boolean {
  if (windowP95 === null || baselineP95 === null || windowCount < o.minCount) return false;
  return windowP95 >= o.factor * Math.max(baselineP95, 1);
}

export const METRICS = ['count', 'errors', 'error_rate', 'p50', 'p95', 'p99', 'retries', 'timeouts', 'avg_duration'] as const;
export type Metric = (typeof METRICS)[number];

/** A duration statistic is null, not 0, for a bucket whose events carry no duration. */
function timed(expr: string): string {
  return `if(countIf(isNotNull(duration_ms)) = 0, NULL, ${expr})`;
}

const METRIC_SQL: Record<Metric, string> = {
  count: 'count()',
  errors: `countIf(${IS_ERROR})`,
  error_rate: `if(count() = 0, 0, countIf(${IS_ERROR}) / count())`,
  p50: timed('quantileExact(0.5)(duration_ms)'),
  p95: timed('quantileExact(0.95)(duration_ms)'),
  p99: timed('quantileExact(0.99)(duration_ms)'),
  retries: 'sum(retries)',
  timeouts: `countIf(${IS_TIMEOUT})`,
  avg_duration: 'avg(duration_ms)',
};

export interface Series {
  group: Record<string, string>;
  points: { t: number; value: number | null }[];
}

/** Bucketed series; every bucket of the range is present (count-like metrics 0, others null). */
export async function timeseries(
  events: EventStore, f: EventFilter, metric: Metric, groupBy: readonly Dimension[],
  range: { from: number; to: number }, intervalMs: number, maxSeries = 20,
): Promise<Series[]> {
  const bag = new ParamBag();
  const where = whereClause({ ...f, from: range.from, to: range.to }, bag);
  const iv = bag.add(intervalMs, 'Int64');
  const dims = groupBy.map((d) => `${d} AS g_${d}`);
  const rows = await events.query<Record<string, unknown>>(
    `SELECT ${[...dims, `intDiv(timestamp, ${iv}) * ${iv} AS b`, `${METRIC_SQL[metric]} AS v`].join(', ')}
     FROM ${EVENTS_TABLE} WHERE ${where}
     GROUP BY ${[...groupBy.map((d) => `g_${d}`), 'b'].join(', ')}`,
    bag.params,
  );
  const zero = metric === 'count' || metric === 'errors' || metric === 'retries' || metric === 'timeouts' || metric === 'error_rate';
  const series = new Map<string, { group: Record<string, string>; values: Map<number, number | null>; total: number }>();
  for (const r of rows) {
    const group: Record<string, string> = {};
    for (const d of groupBy) group[d] = String(r[`g_${d}`]);
    const k = JSON.stringify(group);
    let s = series.get(k);
    if (!s) series.set(k, (s = { group, values: new Map(), total: 0 }));
    const v = num(r.v);
    s.values.set(Number(r.b), v);
    s.total += Number(v ?? 0);
  }
  const start = Math.floor(range.from / intervalMs) * intervalMs;
  const picked = [...series.values()].sort((a, b) => b.total - a.total).slice(0, maxSeries);
  if (picked.length === 0 && groupBy.length === 0) picked.push({ group: {}, values: new Map(), total: 0 });
  return picked.map((s) => {
    const points: Series['points'] = [];
    for (let t = start; t < range.to; t += intervalMs) points.push({ t, value: s.values.has(t) ? s.values.get(t)! : zero ? 0 : null });
    return { group: s.group, points };
  });
}

/** Events per second per project and per engine over the last minutes, by receive time. */
export async function load(events: EventStore, f: EventFilter, windowMs: number): Promise<{ by_project: { project_id: string; events_per_s: number }[]; by_engine: { engine: string; events_per_s: number }[] }> {
  const bag = new ParamBag();
  const sinceMs = Date.now() - windowMs;
  // event time is close to receive time; bounding it lets the primary key skip old parts
  const where = whereClause({ ...f, from: sinceMs - 24 * 3600_000 }, bag);
  const since = bag.add(sinceMs, 'Int64');
  const rows = await events.query<{ k: string; v: string; c: number }>(
    `SELECT kv.1 AS k, kv.2 AS v, count() AS c FROM ${EVENTS_TABLE}
     ARRAY JOIN [('project_id', project_id), ('engine', engine)] AS kv
     WHERE ${where} AND received_at >= ${since}
     GROUP BY k, v ORDER BY c DESC LIMIT 100 BY k`,
    bag.params,
  );
  const secs = windowMs / 1000;
  return {
    by_project: rows.filter((r) => r.k === 'project_id').map((r) => ({ project_id: r.v, events_per_s: Number(r.c) / secs })),
    by_engine: rows.filter((r) => r.k === 'engine').map((r) => ({ engine: r.v, events_per_s: Number(r.c) / secs })),
  };
}
