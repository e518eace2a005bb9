// Sessions: the list (one row per session with its extent and counts), one session's events, and
// the sessions and users that hit the same errors around the same time.
import type { EventRow } from '../event.js';
import { EVENTS_TABLE } from '../storage/schema.js';
import type { EventStore } from '../storage/event-store.js';
import { ParamBag, whereClause, type EventFilter } from '../query/filters.js';
import { isErrorRow } from './timeline.js';

// ---- the list ---------------------------------------------------------------------------------

export interface SessionCursor {
  /** The session's first timestamp. */
  t: number;
  p: string;
  s: string;
}

export function encodeSessionCursor(c: SessionCursor): string {
  return Buffer.from(JSON.stringify({ k: 'sessions', ...c })).toString('base64url');
}

export function decodeSessionCursor(raw: string): SessionCursor | undefined {
  if (raw.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(raw)) return undefined;
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (v.k !== 'sessions' || typeof v.t !== 'number' || !Number.isSafeInteger(v.t)) return undefined;
    if (typeof v.p !== 'string' || typeof v.s !== 'string' || v.p.length > 256 || v.s.length > 1024) return undefined;
    return { t: v.t, p: v.p, s: v.s };
  } catch {
    return undefined;
  }
}

export interface SessionListItem {
  id: string;
  project_id: string;
  start: string;
  end: string;
  duration_ms: number;
  events: number;
  errors: number;
  has_error: boolean;
  users: string[];
  user_count: number;
  flows: string[];
  flow_count: number;
}

export interface SessionListOptions {
  hasError?: boolean;
  limit: number;
  after?: SessionCursor;
}

interface SessionAggRow {
  project_id: string;
  session_id: string;
  first_ts: number | string;
  last_ts: number | string;
  events: number | string;
  errors: number | string;
  users: string[];
  user_count: number | string;
  flows: string[];
  flow_count: number | string;
}

/** How many users and flows a session row names (the counts are exact). A literal in the SQL. */
const LIST_CAP = 20;

/**
 * Sessions newest first. With a user or flow filter, a session is listed whole (every user and
 * flow in it) when that user or flow appears in it; otherwise the counts cover the time range.
 */
export async function listSessions(events: EventStore, filter: EventFilter, opts: SessionListOptions):
  Promise<{ sessions: SessionListItem[]; next?: SessionCursor }> {
  const bag = new ParamBag();
  let where: string;
  const narrowed = (filter.eq.user_id?.length ?? 0) > 0 || (filter.eq.flow_id?.length ?? 0) > 0;
  if (narrowed) {
    const sub = `SELECT DISTINCT project_id, session_id FROM ${EVENTS_TABLE} WHERE ${whereClause(filter, bag)} AND session_id != ''`;
    const outer: EventFilter = { projects: filter.projects, eq: { project_id: filter.eq.project_id }, attrs: [] };
    where = `${whereClause(outer, bag)} AND (project_id, session_id) IN (${sub})`;
  } else {
    where = `${whereClause(filter, bag)} AND session_id != ''`;
  }
  const having: string[] = [];
  if (opts.hasError === true) having.push('errors > 0');
  if (opts.hasError === false) having.push('errors = 0');
  if (opts.after) {
    const t = bag.add(opts.after.t, 'Int64');
    const p = bag.add(opts.after.p, 'String');
    const s = bag.add(opts.after.s, 'String');
    having.push(`(first_ts < ${t} OR (first_ts = ${t} AND (project_id < ${p} OR (project_id = ${p} AND session_id < ${s}))))`);
  }
  const rows = await events.query<SessionAggRow>(
    `SELECT project_id, session_id, min(timestamp) AS first_ts, max(timestamp) AS last_ts, count() AS events,
       countIf(fingerprint != '') AS errors,
       arraySlice(groupUniqArrayIf(user_id, user_id != ''), 1, ${LIST_CAP}) AS users, uniqExactIf(user_id, user_id != '') AS user_count,
       arraySlice(groupUniqArrayIf(flow_id, flow_id != ''), 1, ${LIST_CAP}) AS flows, uniqExactIf(flow_id, flow_id != '') AS flow_count
     FROM ${EVENTS_TABLE} WHERE ${where}
     GROUP BY project_id, session_id
     ${having.length ? `HAVING ${having.join(' AND ')}` : ''}
     ORDER BY first_ts DESC, project_id DESC, session_id DESC
     LIMIT ${opts.limit + 1}`,
    bag.params,
  );
  let next: SessionCursor | undefined;
  if (rows.length > opts.limit) {
    rows.length = opts.limit;
    const last = rows[rows.length - 1];
    next = { t: Number(last.first_ts), p: last.project_id, s: last.session_id };
  }
  return {
    sessions: rows.map((r) => {
      const start = Number(r.first_ts);
      const end = Number(r.last_ts);
      return {
        id: r.session_id,
        project_id: r.project_id,
        start: new Date(start).toISOString(),
        end: new Date(end).toISOString(),
        duration_ms: end - start,
        events: Number(r.events),
        errors: Number(r.errors),
        has_error: Number(r.errors) > 0,
        users: [...r.users].sort(),
        user_count: Number(r.user_count),
        flows: [...r.flows].sort(),
        flow_count: Number(r.flow_count),
      };
    }),
    next,
  };
}

// ---- one session ------------------------------------------------------------------------------

export const MAX_SESSION_EVENTS = 10_000;

/** Every stored row of a session (at most `limit`), in storage order; `truncated` when there are more. */
export async function sessionRows(events: EventStore, sessionId: string, filter: EventFilter, limit = MAX_SESSION_EVENTS):
  Promise<{ rows: EventRow[]; truncated: boolean }> {
  const f: EventFilter = { ...filter, eq: { ...filter.eq, session_id: [sessionId] } };
  const page = await events.search(f, { order: 'asc', limit });
  return { rows: page.rows, truncated: page.next !== undefined };
}

// ---- related sessions and users ---------------------------------------------------------------

export interface RelatedOptions {
  windowMs: number;
  limit: number;
}

export interface RelatedSession {
  session_id: string;
  users: string[];
  fingerprints: string[];
  errors: number;
  first_seen: string;
  last_seen: string;
}

export interface RelatedUser {
  user_id: string;
  sessions: string[];
  fingerprints: string[];
  errors: number;
  first_seen: string;
  last_seen: string;
}

export interface Related {
  session: { id: string; project_id: string; users: string[] };
  fingerprints: { fingerprint: string; error_type: string; message: string; count: number }[];
  window: { from: string | null; to: string | null; window_ms: number };
  sessions: RelatedSession[];
  users: RelatedUser[];
  truncated: boolean;
}

interface RelatedRow {
  session_id: string;
  user_id: string;
  fingerprint: string;
  n: number | string;
  first_ts: number | string;
  last_ts: number | string;
}

const RELATED_ROW_CAP = 20_000;

/**
 * Other sessions and users of the session's project that hit one of its error fingerprints from
 * `windowMs` before its first error to `windowMs` after its last. The session's own users are
 * not listed among the related users.
 */
export async function relatedTo(events: EventStore, sessionId: string, rows: readonly EventRow[], opts: RelatedOptions): Promise<Related> {
  const project = rows[0]?.project_id ?? '';
  const own = new Set(rows.map((r) => r.user_id).filter(Boolean));
  const byFp = new Map<string, { error_type: string; message: string; count: number }>();
  let minT = Infinity;
  let maxT = -Infinity;
  for (const r of rows) {
    if (!isErrorRow(r) || !r.fingerprint) continue;
    const t = Number(r.timestamp);
    minT = Math.min(minT, t);
    maxT = Math.max(maxT, t);
    const g = byFp.get(r.fingerprint);
    if (g) g.count++;
    else byFp.set(r.fingerprint, { error_type: r.error_type, message: r.message, count: 1 });
  }
  const result: Related = {
    session: { id: sessionId, project_id: project, users: [...own].sort() },
    fingerprints: [...byFp].map(([fingerprint, g]) => ({ fingerprint, ...g })),
    window: { from: null, to: null, window_ms: opts.windowMs },
    sessions: [],
    users: [],
    truncated: false,
  };
  if (byFp.size === 0) return result;
  const from = Math.max(0, minT - opts.windowMs);
  const to = maxT + opts.windowMs + 1;
  result.window.from = new Date(from).toISOString();
  result.window.to = new Date(to).toISOString();

  const bag = new ParamBag();
  const where = whereClause({ projects: [project], eq: { fingerprint: [...byFp.keys()] }, attrs: [], from, to }, bag);
  const found = await events.query<RelatedRow>(
    `SELECT session_id, user_id, fingerprint, count() AS n, min(timestamp) AS first_ts, max(timestamp) AS last_ts
     FROM ${EVENTS_TABLE} WHERE ${where} AND session_id != ${bag.add(sessionId, 'String')}
     GROUP BY session_id, user_id, fingerprint
     LIMIT ${RELATED_ROW_CAP + 1}`,
    bag.params,
  );
  if (found.length > RELATED_ROW_CAP) {
    found.length = RELATED_ROW_CAP;
    result.truncated = true;
  }

  interface Acc { keys: Set<string>; fps: Set<string>; errors: number; first: number; last: number }
  const add = (m: Map<string, Acc>, key: string, other: string, r: RelatedRow): void => {
    let a = m.get(key);
    if (!a) m.set(key, (a = { keys: new Set(), fps: new Set(), errors: 0, first: Infinity, last: -Infinity }));
    if (other) a.keys.add(other);
    a.fps.add(r.fingerprint);
    a.errors += Number(r.n);
    a.first = Math.min(a.first, Number(r.first_ts));
    a.last = Math.max(a.last, Number(r.last_ts));
  };
  const sessions = new Map<string, Acc>();
  const users = new Map<string, Acc>();
  for (const r of found) {
    if (r.session_id) add(sessions, r.session_id, r.user_id, r);
    if (r.user_id && !own.has(r.user_id)) add(users, r.user_id, r.session_id, r);
  }
  const order = (a: [string, Acc], b: [string, Acc]) => b[1].errors - a[1].errors || a[1].first - b[1].first || (a[0] < b[0] ? -1 : 1);
  const iso = (t: number) => new Date(t).toISOString();
  result.sessions = [...sessions].sort(order).slice(0, opts.limit).map(([session_id, a]) => ({
    session_id, users: [...a.keys].sort(), fingerprints: [...a.fps].sort(), errors: a.errors, first_seen: iso(a.first), last_seen: iso(a.last),
  }));
  result.users = [...users].sort(order).slice(0, opts.limit).map(([user_id, a]) => ({
    user_id, sessions: [...a.keys].sort(), fingerprints: [...a.fps].sort(), errors: a.errors, first_seen: iso(a.first), last_seen: iso(a.last),
  }));
  return result;
}
