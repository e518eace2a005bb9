// Change correlation: deploy and config_change events, and the error groups that appeared or rose
// right after them. A change "applies" to an error when they share the project and, when both know
// their flow, the flow: a project-wide change (no flow_id) applies to every flow of its project.
import { toStoredEvent, type EventRow, type StoredEvent } from '../event.js';
import { EVENTS_TABLE } from '../storage/schema.js';
import type { CursorPosition, EventStore } from '../storage/event-store.js';
import { ParamBag, whereClause, type EventFilter } from '../query/filters.js';
import { CHANGE_EVENT_TYPES, toTimelineEntry, type TimelineEntry } from './timeline.js';
import type { DiffEntry } from './diff.js';

export interface CorrelationOptions {
  /** Errors are counted this long before and after a change. */
  windowMs: number;
  /** A group "rose" when its count after the change is at least factor × its count before (before counted as at least 1). */
  factor: number;
  /** ...and at least this many. */
  minEvents: number;
}

export const DEFAULT_CORRELATION: CorrelationOptions = { windowMs: 3_600_000, factor: 2, minEvents: 3 };

/** Pure: whether `after` errors following a change are a rise over `before` errors preceding it. */
export function isSpike(before: number, after: number, factor: number, minEvents: number): boolean {
  return after >= minEvents && after >= factor * Math.max(before, 1);
}

/** Pure: whether a change with flow `changeFlow` may have caused an error seen in `errorFlow`. */
export function changeApplies(changeFlow: string, errorFlow: string): boolean {
  return changeFlow === '' || errorFlow === '' || changeFlow === errorFlow;
}

export interface ImpactRow {
  /** 1-based index into the changes passed in. */
  ci: number;
  fingerprint: string;
  before_n: number;
  after_n: number;
  /** The group's first event at or after the change. */
  first_after: number;
  error_type: string;
  message: string;
  engine: string;
  platform: string;
}

/**
 * For each change, the error groups with events in the window after it (within its project and
 * applicable flows), with their counts in the windows before and after. One query for all changes.
 */
export async function changeImpacts(events: EventStore, changes: readonly EventRow[], windowMs: number, fingerprints?: readonly string[]): Promise<ImpactRow[]> {
  if (changes.length === 0) return [];
  const ts = changes.map((c) => Number(c.timestamp));
  const bag = new ParamBag();
  const f: EventFilter = {
    projects: [...new Set(changes.map((c) => c.project_id))],
    eq: fingerprints ? { fingerprint: [...fingerprints] } : {},
    attrs: [],
    from: Math.max(0, Math.min(...ts) - windowMs),
    to: Math.max(...ts) + windowMs,
  };
  const where = whereClause(f, bag);
  const T = bag.add(ts, 'Array(Int64)');
  const P = bag.add(changes.map((c) => c.project_id), 'Array(String)');
  const F = bag.add(changes.map((c) => c.flow_id), 'Array(String)');
  const W = bag.add(windowMs, 'Int64');
  const types = bag.add([...CHANGE_EVENT_TYPES], 'Array(String)');
  const rows = await events.query<Record<keyof ImpactRow, string | number>>(
    `SELECT ci, fingerprint,
       countIf(timestamp < ${T}[ci]) AS before_n, countIf(timestamp >= ${T}[ci]) AS after_n,
       minIf(timestamp, timestamp >= ${T}[ci]) AS first_after,
       any(error_type) AS error_type, any(message) AS message, any(engine) AS engine, any(platform) AS platform
     FROM ${EVENTS_TABLE} ARRAY JOIN arrayEnumerate(${T}) AS ci
     WHERE ${where} AND fingerprint != '' AND event_type NOT IN ${types}
       AND project_id = ${P}[ci] AND timestamp >= ${T}[ci] - ${W} AND timestamp < ${T}[ci] + ${W}
       AND (${F}[ci] = '' OR flow_id = '' OR flow_id = ${F}[ci])
     GROUP BY ci, fingerprint
     HAVING after_n > 0`,
    bag.params,
  );
  return rows.map((r) => ({
    ci: Number(r.ci), fingerprint: String(r.fingerprint), before_n: Number(r.before_n), after_n: Number(r.after_n),
    first_after: Number(r.first_after), error_type: String(r.error_type), message: String(r.message),
    engine: String(r.engine), platform: String(r.platform),
  }));
}

/** When each group was first seen in its project (ever), keyed "project\0fingerprint". */
export async function firstSeen(events: EventStore, projects: readonly string[], fingerprints: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (projects.length === 0 || fingerprints.length === 0) return out;
  const bag = new ParamBag();
  const where = whereClause({ projects, eq: { fingerprint: [...fingerprints] }, attrs: [] }, bag);
  const rows = await events.query<{ project_id: string; fingerprint: string; first_ts: number | string }>(
    `SELECT project_id, fingerprint, min(timestamp) AS first_ts FROM ${EVENTS_TABLE} WHERE ${where} GROUP BY project_id, fingerprint`,
    bag.params,
  );
  for (const r of rows) out.set(`${r.project_id}\u0000${r.fingerprint}`, Number(r.first_ts));
  return out;
}

// ---- GET /monitoring/changes ------------------------------------------------------------------

export interface ChangeError {
  fingerprint: string;
  kind: 'new' | 'spike';
  error_type: string;
  message: string;
  engine: string;
  platform: string;
  before: number;
  after: number;
  /** after / max(before, 1). */
  rise: number;
  first_seen: string;
  first_after_change: string;
}

export interface ChangeWithErrors extends TimelineEntry {
  errors: ChangeError[];
}

/** At most this many error groups are listed under one change (new ones first, then by count). */
export const MAX_ERRORS_PER_CHANGE = 50;

/** Pure: the error groups of one change that were new or rose, from its impact rows. */
export function classifyImpacts(change: EventRow, impacts: readonly ImpactRow[], first: ReadonlyMap<string, number>, opts: CorrelationOptions): ChangeError[] {
  const t = Number(change.timestamp);
  const out: ChangeError[] = [];
  for (const r of impacts) {
    const seen = first.get(`${change.project_id}\u0000${r.fingerprint}`) ?? r.first_after;
    const isNew = seen >= t && seen < t + opts.windowMs;
    if (!isNew && !isSpike(r.before_n, r.after_n, opts.factor, opts.minEvents)) continue;
    out.push({
      fingerprint: r.fingerprint, kind: isNew ? 'new' : 'spike', error_type: r.error_type, message: r.message,
      engine: r.engine, platform: r.platform, before: r.before_n, after: r.after_n,
      rise: Math.round((r.after_n / Math.max(r.before_n, 1)) * 100) / 100,
      first_seen: new Date(seen).toISOString(), first_after_change: new Date(r.first_after).toISOString(),
    });
  }
  out.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'new' ? -1 : 1) || b.after - a.after || (a.fingerprint < b.fingerprint ? -1 : 1));
  return out.slice(0, MAX_ERRORS_PER_CHANGE);
}

export async function listChanges(events: EventStore, filter: EventFilter, page: { limit: number; after?: CursorPosition }, opts: CorrelationOptions):
  Promise<{ changes: ChangeWithErrors[]; next?: CursorPosition }> {
  const f: EventFilter = { ...filter, eq: { ...filter.eq, event_type: [...CHANGE_EVENT_TYPES] } };
  const found = await events.search(f, { order: 'desc', limit: page.limit, after: page.after });
  const impacts = await changeImpacts(events, found.rows, opts.windowMs);
  const first = await firstSeen(events, [...new Set(found.rows.map((c) => c.project_id))], [...new Set(impacts.map((i) => i.fingerprint))]);
  const byChange = new Map<number, ImpactRow[]>();
  for (const r of impacts) {
    const list = byChange.get(r.ci);
    if (list) list.push(r);
    else byChange.set(r.ci, [r]);
  }
  return {
    changes: found.rows.map((c, i) => ({ ...toTimelineEntry(c), errors: classifyImpacts(c, byChange.get(i + 1) ?? [], first, opts) })),
    next: found.next,
  };
}

// ---- suspects of an error group ---------------------------------------------------------------

export interface SuspectOptions extends Partial<CorrelationOptions> {
  /** How long before a group's first event a change may be and still be its suspect. Default 24 h. */
  lookbackMs?: number;
  /** At most this many changes are examined (the most recent in the group's life). Default 200. */
  maxChanges?: number;
}

export interface SuspectChange {
  /** started: the most recent change before the group's first event; spike: the most recent change before a rise. */
  reason: 'started' | 'spike';
  /** The change event itself. */
  change: StoredEvent;
  /** What the change changed, when it carries before/after values. */
  diff?: DiffEntry[];
  /** The group's first event after the change (its first event ever, for "started"). */
  onset: string;
  /** From the change to the onset. */
  lag_ms: number;
  /** Error counts in the window before and after the change (spike only). */
  before?: number;
  after?: number;
}

interface GroupExtent { first_ts: number | string; last_ts: number | string; first_flow: string; n: number | string }

/**
 * The changes that may have caused error group `fingerprint` of `project`, most recent first: the
 * most recent applicable change before the group's first event (within lookbackMs), and for each
 * rise of the group after a change (see isSpike) the most recent change before that rise.
 * The caller has checked that the principal may read `project`.
 */
export async function suspectChanges(events: EventStore, project: string, fingerprint: string, opts: SuspectOptions = {}): Promise<SuspectChange[]> {
  const o: CorrelationOptions = {
    windowMs: opts.windowMs ?? DEFAULT_CORRELATION.windowMs,
    factor: opts.factor ?? DEFAULT_CORRELATION.factor,
    minEvents: opts.minEvents ?? DEFAULT_CORRELATION.minEvents,
  };
  const lookback = opts.lookbackMs ?? 24 * 3_600_000;
  const bag = new ParamBag();
  const where = whereClause({ projects: [project], eq: { fingerprint: [fingerprint] }, attrs: [] }, bag);
  const [extent] = await events.query<GroupExtent>(
    `SELECT min(timestamp) AS first_ts, max(timestamp) AS last_ts, argMin(flow_id, timestamp) AS first_flow, count() AS n
     FROM ${EVENTS_TABLE} WHERE ${where}`,
    bag.params,
  );
  if (!extent || Number(extent.n) === 0) return [];
  const firstTs = Number(extent.first_ts);
  const lastTs = Number(extent.last_ts);

  const changes = (await events.search(
    { projects: [project], eq: { event_type: [...CHANGE_EVENT_TYPES] }, attrs: [], from: Math.max(0, firstTs - lookback), to: lastTs + 1 },
    { order: 'desc', limit: opts.maxChanges ?? 200 },
  )).rows;
  if (changes.length === 0) return [];
  // only changes after the start can be followed by a rise of the group
  const later = changes.filter((c) => Number(c.timestamp) > firstTs);
  const impacts = await changeImpacts(events, later, o.windowMs, [fingerprint]);
  return pickSuspects({ first: firstTs, firstFlow: extent.first_flow, lookbackMs: lookback }, later, changes, impacts, o);
}

/**
 * Pure: picks the suspects from the group's start, the candidate changes and the group's impact
 * rows (their ci indexes `impactChanges`, 1-based). Most recent change first.
 */
export function pickSuspects(
  group: { first: number; firstFlow: string; lookbackMs: number },
  impactChanges: readonly EventRow[],
  changes: readonly EventRow[],
  impacts: readonly ImpactRow[],
  opts: CorrelationOptions,
): SuspectChange[] {
  const out: SuspectChange[] = [];
  const t = (c: EventRow) => Number(c.timestamp);
  // started: the most recent applicable change at or before the first event
  let started: EventRow | undefined;
  for (const c of changes) {
    if (t(c) > group.first || group.first - t(c) > group.lookbackMs) continue;
    if (!changeApplies(c.flow_id, group.firstFlow)) continue;
    if (!started || t(c) > t(started) || (t(c) === t(started) && c.id > started.id)) started = c;
  }
  if (started) out.push(suspect('started', started, group.first));

  // spikes: changes after the start followed by a rise; of several followed by the same onset,
  // the most recent one is the suspect
  const byOnset = new Map<number, { change: EventRow; impact: ImpactRow }>();
  for (const r of impacts) {
    const c = impactChanges[r.ci - 1];
    if (!c || t(c) <= group.first) continue;
    if (!isSpike(r.before_n, r.after_n, opts.factor, opts.minEvents)) continue;
    const prev = byOnset.get(r.first_after);
    if (!prev || t(c) > t(prev.change)) byOnset.set(r.first_after, { change: c, impact: r });
  }
  for (const [onset, { change, impact }] of byOnset) {
    out.push({ ...suspect('spike', change, onset), before: impact.before_n, after: impact.after_n });
  }
  out.sort((a, b) => Date.parse(b.change.timestamp) - Date.parse(a.change.timestamp));
  return out;
}

function suspect(reason: SuspectChange['reason'], c: EventRow, onset: number): SuspectChange {
  const s: SuspectChange = {
    reason,
    change: toStoredEvent(c),
    onset: new Date(onset).toISOString(),
    lag_ms: onset - Number(c.timestamp),
  };
  const diff = toTimelineEntry(c).change?.diff;
  if (diff) s.diff = diff;
  return s;
}
