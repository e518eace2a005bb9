// Error-group SQL: groups are the events GROUP BY fingerprint, so counts are always exact and need no
// second copy of the data. The builders are pure (filter in, SQL + params out); run() does the I/O.
import type { EventStore } from '../storage/event-store.js';
import { EVENTS_TABLE } from '../storage/schema.js';
import { ParamBag, whereClause, type EventFilter } from '../query/filters.js';
import { groupsActiveIn, groupStates, MERGED_COLUMNS } from './rollup.js';

export type GroupSort = 'count' | 'last_seen' | 'first_seen' | 'users';
export const GROUP_SORTS: readonly GroupSort[] = ['count', 'last_seen', 'first_seen', 'users'];

export interface GroupRow {
  project_id: string;
  fingerprint: string;
  error_type: string;
  message: string;
  engine: string;
  platform: string;
  count: number;
  sampled_out: number;
  users: number;
  sessions: number;
  first_seen: number;
  last_seen: number;
  /** Counts per bucket start, when the listing was asked for a trend; buckets with no events are absent. */
  trend?: Map<number, number>;
}

const SORT_SQL: Record<GroupSort, string> = {
  count: 'count DESC',
  last_seen: 'last_seen_ DESC',
  first_seen: 'first_seen_ DESC',
  users: 'users_ DESC, count DESC',
};

/**
 * Groups to keep or leave out by "project/fingerprint" key: how the listing filters on a group's
 * state, which lives in the control store, inside the SQL, so paging and totals stay exact.
 */
export interface GroupKeys {
  keep: boolean;
  keys: string[];
}

export function groupKey(project: string, fingerprint: string): string {
  // project ids never contain "/" (event.ts), so the key is unambiguous
  return `${project}/${fingerprint}`;
}

function keysWhere(keys: GroupKeys | undefined, bag: ParamBag): string {
  if (!keys) return '';
  return ` WHERE concat(project_id, '/', fingerprint) ${keys.keep ? 'IN' : 'NOT IN'} ${bag.add(keys.keys, 'Array(String)')}`;
}

export interface GroupPage {
  rows: GroupRow[];
  /** How many groups the listing pages through; undefined when the storage cannot say in the same pass. */
  total?: number;
}

/**
 * A page of groups. Asked `withTotal`, where the storage has window functions, the total number of
 * groups comes in the same pass (`count() OVER ()` over the grouped rows, before LIMIT), else from
 * countGroups(). Asked a trend (`trendMs`, the bucket width), each group's counts per bucket come in the same pass too.
 */
export async function listGroups(
  events: EventStore, f: EventFilter, sort: GroupSort, limit: number,
  page: { offset?: number; keys?: GroupKeys; withTotal?: boolean; trendMs?: number } = {},
): Promise<GroupPage> {
  const bag = new ParamBag();
  const offset = page.offset ? `${page.offset}, ` : '';
  const withTotal = page.withTotal === true && events.transport.features.windowFunctions;
  const extra = (withTotal ? ', count() OVER () AS total_' : '') + (page.trendMs !== undefined ? ', sumMap([b], [n]) AS trend_' : '');
  const rows = await events.query<RawGroupRow & { total_?: number; trend_?: [unknown[], unknown[]] }>(
    `SELECT ${MERGED_COLUMNS}${extra} FROM (${groupStates(f, bag, page.trendMs)})${keysWhere(page.keys, bag)}
     GROUP BY project_id, fingerprint ORDER BY ${SORT_SQL[sort]}, project_id, fingerprint LIMIT ${offset}${limit}`,
    bag.params,
  );
  // a page past the end has no row to carry the total
  const total = !withTotal ? undefined : rows.length > 0 ? Number(rows[0].total_) : page.offset ? undefined : 0;
  return { rows: rows.map((r) => (r.trend_ ? { ...numbers(r), trend: trendMap(r.trend_) } : numbers(r))), total };
}

/** sumMap's (keys, values) tuple, which JSON gives as a pair of arrays. */
function trendMap([keys, values]: [unknown[], unknown[]]): Map<number, number> {
  const out = new Map<number, number>();
  for (let i = 0; i < keys.length; i++) out.set(Number(keys[i]), Number(values[i]));
  return out;
}

/** How many groups listGroups() would page through. */
export async function countGroups(events: EventStore, f: EventFilter, keys?: GroupKeys): Promise<number> {
  const bag = new ParamBag();
  const rows = await events.query<{ n: number }>(
    `SELECT count() AS n FROM (SELECT project_id, fingerprint FROM (${groupStates(f, bag)})${keysWhere(keys, bag)} GROUP BY project_id, fingerprint)`,
    bag.params,
  );
  return Number(rows[0]?.n ?? 0);
}

/** A group's all-time figures the listing shows beside the range's (total_count, first and last seen). */
export interface GroupTotal {
  count: number;
  first_seen: number;
  last_seen: number;
}

/**
 * All-time totals of the groups that have events in the filter's range, within its projects and
 * fingerprints (the listing's counts are for the range). Not bound to a page's groups, so it runs
 * beside the page rather than after it. Only the cheap states are merged: the users' and sessions'
 * uniqExact and the argMax columns cost most of this statement and the listing does not show them all-time.
 * Named projects are read whole (a project's rollup rows: 12 ms at 10M events here); without them the
 * groups are first narrowed to those active in the range, which costs more (32 ms) but stays bounded.
 */
export async function groupTotals(events: EventStore, f: Pick<EventFilter, 'projects' | 'eq' | 'from' | 'to'>): Promise<Map<string, GroupTotal>> {
  const scope: EventFilter = { projects: f.projects, eq: { project_id: f.eq.project_id, fingerprint: f.eq.fingerprint }, attrs: [] };
  const bag = new ParamBag();
  // GLOBAL: on a sharded cluster a group's rows sit on several shards; the set is made once over
  // all of them, should the condition be pushed down to the shards (where a plain IN is made
  // shard-local: distributed_product_mode=local). The cluster test passes with either today.
  const narrow = f.eq.project_id?.length ? '' : ` WHERE (project_id, fingerprint) GLOBAL IN (${groupsActiveIn({ ...scope, from: f.from, to: f.to }, bag)})`;
  // a group active in the range was last seen in it or later
  const seen = f.from === undefined ? '' : ` HAVING last_seen_ >= ${bag.add(f.from, 'Int64')}`;
  const rows = await events.query<{ project_id: string; fingerprint: string; count: number; first_seen_: number; last_seen_: number }>(
    `SELECT project_id, fingerprint, countMerge(c) AS count, minMerge(first_seen) AS first_seen_, maxMerge(last_seen) AS last_seen_
     FROM (${groupStates(scope, bag)})${narrow} GROUP BY project_id, fingerprint${seen}`,
    bag.params,
  );
  return new Map(rows.map((r) => [`${r.project_id}\u0000${r.fingerprint}`, {
    count: Number(r.count), first_seen: Number(r.first_seen_), last_seen: Number(r.last_seen_),
  }]));
}

export interface TopValue {
  dimension: string;
  value: string;
  count: number;
}

/** The platforms, actions, flows and users a group hit most. */
export async function groupTop(events: EventStore, f: EventFilter, perDimension = 5): Promise<TopValue[]> {
  const bag = new ParamBag();
  const where = whereClause({ ...f, hasFingerprint: true }, bag);
  const rows = await events.query<{ dimension: string; value: string; count: number }>(
    `SELECT k.1 AS dimension, k.2 AS value, count() AS count FROM ${EVENTS_TABLE}
     ARRAY JOIN [('platform', platform), ('action', action), ('flow_id', flow_id), ('user_id', user_id), ('engine', engine)] AS k
     WHERE ${where} AND k.2 != ''
     GROUP BY dimension, value ORDER BY dimension, count DESC, value LIMIT ${perDimension} BY dimension`,
    bag.params,
  );
  return rows.map((r) => ({ dimension: r.dimension, value: r.value, count: Number(r.count) }));
}

/** Which visible projects have this fingerprint. */
export async function projectsWithFingerprint(events: EventStore, projects: readonly string[] | undefined, fingerprint: string): Promise<string[]> {
  const bag = new ParamBag();
  const where = whereClause({ projects, eq: { fingerprint: [fingerprint] }, attrs: [] }, bag);
  const rows = await events.query<{ project_id: string }>(
    `SELECT DISTINCT project_id FROM ${EVENTS_TABLE} WHERE ${where} LIMIT 100`,
    bag.params,
  );
  return rows.map((r) => r.project_id);
}

// Merged columns carry a trailing underscore: ClickHouse lets an alias shadow a column in WHERE.
interface RawGroupRow {
  project_id: string; fingerprint: string; error_type_: string; message_: string; engine_: string; platform_: string;
  count: number; sampled_out_: number; users_: number; sessions_: number; first_seen_: number; last_seen_: number;
}

function numbers(r: RawGroupRow): GroupRow {
  return {
    project_id: r.project_id, fingerprint: r.fingerprint,
    error_type: r.error_type_, message: r.message_, engine: r.engine_, platform: r.platform_,
    count: Number(r.count), sampled_out: Number(r.sampled_out_), users: Number(r.users_), sessions: Number(r.sessions_),
    first_seen: Number(r.first_seen_), last_seen: Number(r.last_seen_),
  };
}

/** Buckets of `intervalMs` from `from` to `to`, each with its count (0 when empty). */
export function fillBuckets(counts: Map<number, number> | undefined, from: number, to: number, intervalMs: number): { t: number; count: number }[] {
  const out: { t: number; count: number }[] = [];
  const start = Math.floor(from / intervalMs) * intervalMs;
  for (let t = start; t < to; t += intervalMs) out.push({ t, count: counts?.get(t) ?? 0 });
  return out;
}

/** An interval giving at most maxPoints buckets, rounded to a readable step. */
export function autoInterval(from: number, to: number, maxPoints = 500): number {
  const steps = [1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800].map((s) => s * 1000);
  const span = Math.max(1, to - from);
  for (const s of steps) if (span / s <= maxPoints) return s;
  return Math.ceil(span / maxPoints / 86_400_000) * 86_400_000;
}
