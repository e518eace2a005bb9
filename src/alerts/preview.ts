// Rule preview: what a rule would have fired over the last hours, before it is saved. The range is
// cut into consecutive windows of the rule's window_s (at least a minute, at most 1440 windows);
// each window is judged by evaluateWindow(), the evaluator's own verdict, per group. A firing is a
// window that fires after one that did not (a new episode), as the evaluator would notify it.
import type { EventStore } from '../storage/event-store.js';
import { EVENTS_TABLE } from '../storage/schema.js';
import { ParamBag, whereClause } from '../query/filters.js';
import { compileRule, toEventFilter, WINDOWED_KINDS, type RuleSpec } from './rules.js';
import { evaluateWindow, type EvalRule } from './evaluate.js';
import { ERROR_EXPR } from './service.js';

const MAX_WINDOWS = 1440;
const MIN_STEP_S = 60;
/** Groups charted (the ones that fired most); the firing count covers them all. */
const MAX_SERIES = 5;

/** One group's numbers per window, as the preview query returns them. */
export interface Bucket {
  t: number;
  count: number;
  errors: number;
  p95: number | null;
}

export interface PreviewSeries {
  labels: Record<string, string>;
  project_id: string;
  firings: number;
  /** The measured value per window (count, error share, p95 ms, ratio to baseline); null = no data. */
  values: (number | null)[];
  /** Window starts (ms) where a firing episode began. */
  fired_at: number[];
}

export interface Preview {
  kind: string;
  from: string;
  to: string;
  step_s: number;
  /** Window starts (ms), one per value of each series. */
  times: number[];
  threshold: number | null;
  unit: 'events' | 'share' | 'ms' | 'ratio';
  /** Firing episodes over all groups. */
  firings: number;
  groups_firing: number;
  groups_total: number;
  series: PreviewSeries[];
  /** Why a kind cannot be previewed exactly, or how it is approximated. */
  note: string | null;
}

export function stepFor(windowS: number, hours: number): number {
  return Math.max(windowS, MIN_STEP_S, Math.ceil((hours * 3600) / MAX_WINDOWS));
}

/** Pure: judges one group's windows; returns its values and where episodes began. */
export function simulate(rule: EvalRule & { baseline_window_s: number | null }, times: number[], buckets: Map<number, Bucket>, stepS: number): { values: (number | null)[]; fired_at: number[] } {
  const values: (number | null)[] = [];
  const fired: number[] = [];
  const baselineN = Math.max(1, Math.round((rule.baseline_window_s ?? rule.window_s) / stepS));
  const counts = times.map((t) => buckets.get(t)?.count ?? 0);
  let was = false;
  const judged = { ...rule, window_s: stepS, baseline_window_s: baselineN * stepS };
  times.forEach((t, i) => {
    const b = buckets.get(t);
    let firing: boolean;
    if (rule.kind === 'event') {
      firing = (b?.count ?? 0) > 0;
      values.push(b?.count ?? 0);
    } else {
      let baseline = 0;
      for (let j = Math.max(0, i - baselineN); j < i; j++) baseline += counts[j];
      const v = evaluateWindow(judged, { project_id: '', labels: {}, count: b?.count ?? 0, errors: b?.errors ?? 0, p95: b?.p95 ?? null, baseline, first: 0, last: 0, last_message: '' });
      firing = v.firing;
      values.push(rule.kind === 'latency' && (b?.p95 ?? null) === null ? null : v.value);
    }
    if (firing && !was) fired.push(t);
    was = firing;
  });
  return { values, fired_at: fired };
}

export async function previewRule(events: EventStore, spec: RuleSpec, now: number, hours = 24): Promise<Preview> {
  const rule = compileRule({ ...spec, id: 'preview', created_at: now, updated_at: now, created_by: null });
  const stepS = stepFor(rule.window_s, hours);
  const step = stepS * 1000;
  const to = Math.ceil(now / step) * step;
  const from = to - Math.ceil((hours * 3600_000) / step) * step;
  const times: number[] = [];
  for (let t = from; t < to; t += step) times.push(t);
  const unit = rule.kind === 'error_rate' ? 'share' : rule.kind === 'latency' ? 'ms' : rule.kind === 'spike' ? 'ratio' : 'events';
  const base: Preview = {
    kind: rule.kind, from: new Date(from).toISOString(), to: new Date(to).toISOString(), step_s: stepS, times,
    threshold: rule.kind === 'event' ? 1 : rule.threshold, unit, firings: 0, groups_firing: 0, groups_total: 0, series: [], note: null,
  };
  if (rule.kind === 'new_group' || rule.kind === 'regression') {
    return previewNewGroups(events, rule, base, from, to, step, rule.kind === 'regression');
  }
  // spike needs the baseline before the first window
  const baselineFrom = rule.kind === 'spike' ? from - Math.max(rule.baseline_window_s ?? 0, stepS) * 1000 : from;
  const bag = new ParamBag('v');
  const where = whereClause(toEventFilter(rule, baselineFrom, to), bag);
  const groups = rule.group_by.map((g) => (g.startsWith('attr.') ? `attr_values[indexOf(attr_keys, ${bag.add(g.slice(5), 'String')})]` : g));
  const iv = bag.add(step, 'Int64');
  const sql = `SELECT project_id AS g_project${groups.map((g, i) => `, ${g} AS g_${i}`).join('')},
      intDiv(timestamp, ${iv}) * ${iv} AS b, count() AS c, countIf(${ERROR_EXPR}) AS errs, quantile(0.95)(duration_ms) AS p95
    FROM ${EVENTS_TABLE} WHERE ${where}
    GROUP BY g_project${groups.map((_, i) => `, g_${i}`).join('')}, b
    LIMIT 200000`;
  const rows = await events.query<Record<string, unknown>>(sql, bag.params);
  const byGroup = new Map<string, { project_id: string; labels: Record<string, string>; buckets: Map<number, Bucket> }>();
  for (const r of rows) {
    const labels: Record<string, string> = {};
    rule.group_by.forEach((g, i) => (labels[g] = String(r[`g_${i}`] ?? '')));
    const key = JSON.stringify([r.g_project, labels]);
    let g = byGroup.get(key);
    if (!g) byGroup.set(key, (g = { project_id: String(r.g_project), labels, buckets: new Map() }));
    const p95 = r.p95 === null || r.p95 === undefined || !Number.isFinite(Number(r.p95)) ? null : Number(r.p95);
    g.buckets.set(Number(r.b), { t: Number(r.b), count: Number(r.c), errors: Number(r.errs), p95 });
  }
  // the baseline windows before `from` count for spike; the series start at `from`
  const all: PreviewSeries[] = [];
  for (const g of byGroup.values()) {
    const lead: number[] = [];
    for (let t = from - step; t >= baselineFrom; t -= step) lead.unshift(t);
    const sim = simulate(rule, [...lead, ...times], g.buckets, stepS);
    const values = sim.values.slice(lead.length);
    const fired = sim.fired_at.filter((t) => t >= from);
    all.push({ labels: g.labels, project_id: g.project_id, firings: fired.length, values, fired_at: fired });
  }
  all.sort((a, b) => b.firings - a.firings || sum(b.values) - sum(a.values));
  return {
    ...base,
    firings: all.reduce((n, s) => n + s.firings, 0),
    groups_firing: all.filter((s) => s.firings > 0).length,
    groups_total: all.length,
    series: all.slice(0, MAX_SERIES),
    note: WINDOWED_KINDS.has(rule.kind) || rule.kind !== 'event' ? null
      : 'event rules fire on the first matching event and resolve after window_s without one; shown per window',
  };
}

/** new_group: error groups whose first event fell in the range; regression needs state history, so it is not previewed. */
async function previewNewGroups(events: EventStore, rule: ReturnType<typeof compileRule>, base: Preview, from: number, to: number, step: number, regression: boolean): Promise<Preview> {
  if (regression) return { ...base, note: 'regressions depend on groups being resolved and coming back; they cannot be replayed from stored events' };
  const bag = new ParamBag('v');
  const f = toEventFilter(rule, 0, to);
  f.from = undefined;
  f.hasFingerprint = true;
  const where = whereClause(f, bag);
  const fromP = bag.add(from, 'Int64');
  const sql = `SELECT project_id, fingerprint, min(timestamp) AS first FROM ${EVENTS_TABLE} WHERE ${where}
    GROUP BY project_id, fingerprint HAVING first >= ${fromP} LIMIT 10000`;
  const rows = await events.query<{ project_id: string; fingerprint: string; first: unknown }>(sql, bag.params);
  const values = base.times.map(() => 0);
  const fired: number[] = [];
  for (const r of rows) {
    const i = Math.floor((Number(r.first) - from) / step);
    if (i >= 0 && i < values.length) {
      values[i]++;
      fired.push(base.times[i]);
    }
  }
  return {
    ...base, threshold: 1, firings: rows.length, groups_firing: rows.length, groups_total: rows.length,
    series: [{ labels: {}, project_id: rule.project_id ?? '', firings: rows.length, values, fired_at: [...new Set(fired)] }],
  };
}

function sum(xs: (number | null)[]): number {
  let s = 0;
  for (const x of xs) s += x ?? 0;
  return s;
}
