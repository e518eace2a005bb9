// Reading the error rollup (storage/schema.ts). Counts stay exact: whole hours inside a range come
// from the rollup, the partial hours at its edges from the events themselves, and both are merged as
// aggregate states of the same types.
import { EVENTS_TABLE, HOUR_MS, ROLLUP_STATES, ROLLUP_TABLE } from '../storage/schema.js';
import type { ParamBag, EventFilter } from '../query/filters.js';
import { whereClause } from '../query/filters.js';

const HOUR = HOUR_MS;
const STATES = ROLLUP_STATES;

/** The merged group columns over a source of states (see groupStates). */
export const MERGED_COLUMNS = `project_id, fingerprint,
  argMaxMerge(g_error_type) AS error_type_, argMaxMerge(g_message) AS message_, argMaxMerge(g_engine) AS engine_,
  argMaxMerge(g_platform) AS platform_, countMerge(c) AS count, sumMerge(sampled_out) AS sampled_out_,
  uniqExactIfMerge(users) AS users_, uniqExactIfMerge(sessions) AS sessions_,
  minMerge(first_seen) AS first_seen_, maxMerge(last_seen) AS last_seen_`;

/** Whether the rollup can answer this filter: only the project, fingerprint and time may be set. */
export function rollupAnswers(f: EventFilter): boolean {
  for (const [k, v] of Object.entries(f.eq)) if (v && v.length && k !== 'project_id' && k !== 'fingerprint') return false;
  return f.attrs.length === 0 && !f.q && !f.query && f.alert === undefined && !f.hasDuration;
}

function stateColumns(): string {
  return STATES.map(([n, , e]) => `${e} AS ${n}`).join(', ');
}

/**
 * `iv`: a bound bucket width (ms). With it each row carries `b`, its bucket's start, and `n`, its
 * count, so the listing reads each group's trend in the same pass as its figures (sumMap over the rows).
 */
function rawPart(f: EventFilter, bag: ParamBag, iv?: string): string {
  const bucket = iv ? `, intDiv(timestamp, ${iv}) * ${iv} AS b, count() AS n` : '';
  return `SELECT project_id, fingerprint${bucket}, ${stateColumns()} FROM ${EVENTS_TABLE}
          WHERE ${whereClause({ ...f, hasFingerprint: true }, bag)} GROUP BY project_id, fingerprint${iv ? ', b' : ''}`;
}

function rollupWhere(f: EventFilter, bag: ParamBag, h0?: number, h1?: number): string {
  const parts: string[] = [];
  if (f.projects) parts.push(`project_id IN ${bag.add([...f.projects], 'Array(String)')}`);
  if (f.eq.project_id?.length) parts.push(`project_id IN ${bag.add(f.eq.project_id, 'Array(String)')}`);
  if (f.eq.fingerprint?.length) parts.push(`fingerprint IN ${bag.add(f.eq.fingerprint, 'Array(String)')}`);
  if (h0 !== undefined) parts.push(`hour >= ${bag.add(h0, 'Int64')}`);
  if (h1 !== undefined) parts.push(`hour < ${bag.add(h1, 'Int64')}`);
  return parts.length ? parts.join(' AND ') : '1';
}

/**
 * A subquery of (project_id, fingerprint, [b, n,] states…) rows for the events matching `f`: the
 * rollup for whole hours inside [from, to), raw events for the rest, or raw events alone when the
 * filter needs columns the rollup does not keep, or the trend's buckets (`trendMs`) are not whole
 * hours. Summed per group the states give its figures; `n` summed per `b` its trend.
 */
export function groupStates(f: EventFilter, bag: ParamBag, trendMs?: number): string {
  const iv = trendMs === undefined ? undefined : bag.add(trendMs, 'Int64');
  if (!rollupAnswers(f) || (trendMs !== undefined && trendMs % HOUR !== 0)) return rawPart(f, bag, iv);
  const h0 = f.from === undefined ? undefined : Math.ceil(f.from / HOUR) * HOUR;
  const h1 = f.to === undefined ? undefined : Math.floor(f.to / HOUR) * HOUR;
  if (h0 !== undefined && h1 !== undefined && h0 >= h1) return rawPart(f, bag, iv);
  // a rollup row is one hour of one group: its count is its own state's value
  const bucket = iv ? `, intDiv(hour, ${iv}) * ${iv} AS b, finalizeAggregation(c) AS n` : '';
  const parts = [`SELECT project_id, fingerprint${bucket}, ${STATES.map(([n]) => n).join(', ')} FROM ${ROLLUP_TABLE} WHERE ${rollupWhere(f, bag, h0, h1)}`];
  if (f.from !== undefined && h0! > f.from) parts.push(rawPart({ ...f, to: h0 }, bag, iv));
  if (f.to !== undefined && h1! < f.to) parts.push(rawPart({ ...f, from: h1 }, bag, iv));
  return parts.join(' UNION ALL ');
}

/**
 * The groups with events in [from, to) (a superset: whole hours around the edges), read from the
 * rollup alone: what bounds the all-time totals read beside a listing to the groups it can show.
 */
export function groupsActiveIn(f: EventFilter, bag: ParamBag): string {
  const h0 = f.from === undefined ? undefined : Math.floor(f.from / HOUR) * HOUR;
  const h1 = f.to === undefined ? undefined : Math.ceil(f.to / HOUR) * HOUR;
  return `SELECT DISTINCT project_id, fingerprint FROM ${ROLLUP_TABLE} WHERE ${rollupWhere(f, bag, h0, h1)}`;
}
