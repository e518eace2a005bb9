// Error groups: GET /monitoring/errors, GET|PATCH /monitoring/errors/:fingerprint.
import type {} from '../auth/http.js'; // request.principal (the tenant guard's augmentation)
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { toStoredEvent, type FieldError } from '../event.js';
import { badRequest, HttpError } from '../http/errors.js';
import type { EngineDeps } from '../engine-deps.js';
import { readFilter } from '../query/http.js';
import { asInt, asSingle, type EventFilter } from '../query/filters.js';
import { GROUP_STATES, statusKey, type GroupState, type GroupStatus } from './groups.js';
import {
  autoInterval, countGroups, fillBuckets, GROUP_SORTS, groupKey, groupTop, groupTotals, listGroups, projectsWithFingerprint,
  type GroupKeys, type GroupRow, type GroupSort, type GroupTotal,
} from './queries.js';

export const DEFAULT_RANGE_MS = 14 * 24 * 3600 * 1000;
/** Longest a state change waits for the observers to record a group storage already shows. */
const OBSERVED_WAIT_MS = 5000;
/** Paging by offset re-aggregates the skipped groups; past this, narrow the search instead. */
export const MAX_GROUP_OFFSET = 100_000;

export interface ErrorRouteOptions extends EngineDeps {
  /** Suspect changes for a group (the audit stage's change correlation), injected so this stage does not depend on that one. */
  suspects?: (project: string, fingerprint: string) => Promise<unknown[]>;
}

/** from/to with defaults: the last 14 days, like an issue tracker's default view. */
export function range(f: EventFilter): { from: number; to: number } {
  const to = f.to ?? Date.now() + 1;
  const from = f.from ?? to - DEFAULT_RANGE_MS;
  f.from = from;
  f.to = to;
  return { from, to };
}

/** One error group as the API shows it (the dashboard reads this type too). */
export type ErrorGroupSummary = ReturnType<typeof describe>;

function describe(g: GroupRow, status: GroupStatus | undefined, total: GroupTotal | undefined) {
  const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
  return {
    project_id: g.project_id,
    fingerprint: g.fingerprint,
    error_type: g.error_type,
    message: g.message,
    engine: g.engine,
    platform: g.platform,
    count: g.count,
    total_count: total?.count ?? g.count,
    sampled_out: g.sampled_out,
    users_affected: g.users,
    sessions_affected: g.sessions,
    first_seen: iso(Math.min(total?.first_seen ?? g.first_seen, status?.first_seen ?? Infinity)),
    last_seen: iso(total?.last_seen ?? g.last_seen),
    state: status?.state ?? 'open',
    regression: status?.regressed_at ? { at: iso(status.regressed_at), count: status.regressions } : null,
    resolved_at: iso(status?.resolved_at),
  };
}

const PatchBody = Type.Object({ state: Type.Union(GROUP_STATES.map((s) => Type.Literal(s))) }, { additionalProperties: false });

export async function errorRoutes(app: FastifyInstance, opts: ErrorRouteOptions): Promise<void> {
  const { events, errorGroups: groups, limiter } = opts;

  app.get('/monitoring/errors', { config: { scope: 'read' } }, async (req) => {
    const errors: FieldError[] = [];
    const q = req.query as Record<string, unknown>;
    const f = readFilter(req, ['sort', 'limit', 'offset', 'state', 'interval'], errors);
    const sort = (asSingle(q.sort, 'sort', errors) ?? 'count') as GroupSort;
    if (!GROUP_SORTS.includes(sort)) errors.push({ field: 'sort', message: `must be one of ${GROUP_SORTS.join(', ')}` });
    const state = asSingle(q.state, 'state', errors) as GroupState | undefined;
    if (state !== undefined && !GROUP_STATES.includes(state)) errors.push({ field: 'state', message: `must be one of ${GROUP_STATES.join(', ')}` });
    const limit = asInt(q.limit, 'limit', 1, 1000, errors) ?? 100;
    const offset = asInt(q.offset, 'offset', 0, MAX_GROUP_OFFSET, errors) ?? 0;
    const intervalS = asInt(q.interval, 'interval', 1, 30 * 86400, errors);
    if (errors.length) throw badRequest(errors);
    const { from, to } = range(f);
    const interval = intervalS ? intervalS * 1000 : autoInterval(from, to, 48);
    if ((to - from) / interval > 2000) throw badRequest([{ field: 'interval', message: 'gives more than 2000 buckets' }]);

    return limiter(async () => {
      // state lives in the control store; the groups in other states than "open" are few, so
      // they go into the SQL as a key list and paging and the total stay exact
      let keys: GroupKeys | undefined;
      if (state) {
        const notOpen = await groups.notOpen(f.projects);
        keys = state === 'open'
          ? { keep: false, keys: notOpen.map((s) => groupKey(s.project_id, s.fingerprint)) }
          : { keep: true, keys: notOpen.filter((s) => s.state === state).map((s) => groupKey(s.project_id, s.fingerprint)) };
      }
      // one round: the page carries its total and trends; the all-time totals and the states are
      // read beside it, side by side on the storage's read sessions (src/storage/chdb-transport.ts)
      const [page, totals, statuses] = await Promise.all([
        listGroups(events, f, sort, limit, { offset, keys, withTotal: true, trendMs: interval }),
        groupTotals(events, f),
        groups.statuses(f.eq.project_id?.length ? f.eq.project_id : f.projects),
      ]);
      const picked = page.rows;
      // a page that is not full (and not past the end) is the last one: no second aggregation for the total
      const last = picked.length < limit && (offset === 0 || picked.length > 0);
      const total = page.total ?? (last ? offset + picked.length : await countGroups(events, f, keys));
      return {
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        interval_s: interval / 1000,
        total,
        offset,
        next_offset: offset + picked.length < total ? offset + picked.length : null,
        groups: picked.map((r) => {
          const k = statusKey(r.project_id, r.fingerprint);
          return { ...describe(r, statuses.get(k), totals.get(k)), trend: fillBuckets(r.trend, from, to, interval).map((b) => b.count) };
        }),
      };
    });
  });

  /** The one project this fingerprint means for the caller, or a clear error. */
  async function groupProject(req: FastifyRequest, f: EventFilter, fingerprint: string): Promise<string> {
    if (f.eq.project_id?.length === 1) return f.eq.project_id[0];
    const found = await projectsWithFingerprint(events, f.projects, fingerprint);
    if (found.length === 0) throw new HttpError(404, 'not_found', `no error group ${fingerprint}`);
    if (found.length > 1) throw badRequest([{ field: 'project_id', message: `fingerprint ${fingerprint} exists in several projects; name one` }]);
    return found[0];
  }

  app.get('/monitoring/errors/:fingerprint', { config: { scope: 'read' } }, async (req) => {
    const errors: FieldError[] = [];
    const { fingerprint } = req.params as { fingerprint: string };
    if (!/^[\w.:-]{1,256}$/.test(fingerprint)) throw badRequest([{ field: 'fingerprint', message: 'is not a fingerprint' }]);
    const q = req.query as Record<string, unknown>;
    const f = readFilter(req, ['samples', 'interval'], errors);
    const samples = asInt(q.samples, 'samples', 1, 100, errors) ?? 10;
    const intervalS = asInt(q.interval, 'interval', 1, 30 * 86400, errors);
    if (errors.length) throw badRequest(errors);
    return limiter(async () => {
      const project = await groupProject(req, f, fingerprint);
      f.projects = [project];
      f.eq = { ...f.eq, project_id: [project], fingerprint: [fingerprint] };
      const { from, to } = range(f);
      const interval = intervalS ? intervalS * 1000 : autoInterval(from, to, 48);
      // one round: nothing below depends on another's answer
      const [{ rows }, totals, status, top, page, suspects] = await Promise.all([
        listGroups(events, f, 'count', 1, { trendMs: interval }),
        groupTotals(events, { ...f, from: undefined, to: undefined }), // all time: found even when the range has no event
        groups.get(project, fingerprint),
        groupTop(events, f),
        events.search({ ...f, from: undefined, to: undefined }, { order: 'desc', limit: samples }),
        opts.suspects ? opts.suspects(project, fingerprint) : [],
      ]);
      const total = totals.get(statusKey(project, fingerprint));
      // no event in the range: the group is described from all time (a rare second round)
      const g = rows[0] ?? (total && (await listGroups(events, { ...f, from: undefined, to: undefined }, 'count', 1)).rows[0]);
      if (!g) throw new HttpError(404, 'not_found', `no error group ${fingerprint} in project ${project}`);
      const sampleEvents = page.rows.map(toStoredEvent);
      const latestWithStack = sampleEvents.find((e) => e.stack);
      return {
        ...describe(rows[0] ?? { ...g, count: 0 }, status, total),
        interval_s: interval / 1000,
        trend: fillBuckets(rows[0]?.trend, from, to, interval),
        samples: sampleEvents,
        stack: latestWithStack?.stack ?? null,
        top: {
          platforms: top.filter((t) => t.dimension === 'platform').map(({ value, count }) => ({ value, count })),
          actions: top.filter((t) => t.dimension === 'action').map(({ value, count }) => ({ value, count })),
          flows: top.filter((t) => t.dimension === 'flow_id').map(({ value, count }) => ({ value, count })),
          users: top.filter((t) => t.dimension === 'user_id').map(({ value, count }) => ({ value, count })),
          engines: top.filter((t) => t.dimension === 'engine').map(({ value, count }) => ({ value, count })),
        },
        suspect_changes: suspects,
      };
    });
  });

  app.patch('/monitoring/errors/:fingerprint', { config: { scope: 'admin' }, schema: { body: PatchBody } }, async (req) => {
    const errors: FieldError[] = [];
    const { fingerprint } = req.params as { fingerprint: string };
    if (!/^[\w.:-]{1,256}$/.test(fingerprint)) throw badRequest([{ field: 'fingerprint', message: 'is not a fingerprint' }]);
    const f = readFilter(req, [], errors);
    if (errors.length) throw badRequest(errors);
    const { state } = req.body as { state: GroupState };
    const project = await groupProject(req, f, fingerprint);
    let updated = await groups.setState(project, fingerprint, state, req.principal.name);
    // a group already in storage whose events the observers have not reached yet (they record its
    // state, and its new_group alert, and may run behind the loader): wait for them, then set it
    if (!updated && (await projectsWithFingerprint(events, [project], fingerprint)).length > 0 && (await opts.writePath.observed(OBSERVED_WAIT_MS))) {
      updated = await groups.setState(project, fingerprint, state, req.principal.name);
    }
    if (!updated) throw new HttpError(404, 'not_found', `no error group ${fingerprint} in project ${project}`);
    await opts.recordAdminAction(req.principal, `set_group_state_${state}`, { project_id: project, kind: 'error_group', id: fingerprint }, { state });
    return { project_id: project, fingerprint, state: updated.state, resolved_at: updated.resolved_at ? new Date(updated.resolved_at).toISOString() : null };
  });
}
