// Alert rules: the input schema, validation with field-named errors, defaults, and the two ways a
// rule's filter is applied — as an EventFilter (bound-parameter SQL, for windowed rules) and in
// memory by matchesFilter() (for instant rules on rows as they are written), from one parse. A
// rule selects events with `query` (the query language, as GET /monitoring/logs?query=) and/or
// `filter` (the parameter vocabulary: exact fields, `attr.<key>`, `q`, plus `alert`); both apply.
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { FILTER_FIELDS, type EventRow, type FieldError, type FilterField } from '../event.js';
import { addQuery, parseFilter, type EventFilter } from '../query/filters.js';
import { matchesFilter } from '../query/match.js';
import { QUERY_LIMITS } from '../query/language/parser.js';

export const RULE_KINDS = ['event', 'threshold', 'error_rate', 'latency', 'new_group', 'regression', 'spike'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];
/** Kinds evaluated periodically from counts over a window. */
export const WINDOWED_KINDS: ReadonlySet<RuleKind> = new Set(['threshold', 'error_rate', 'latency', 'spike']);
/** Kinds fired by single events or aggregator signals; their groups resolve after window_s without a match. */
export const INSTANT_KINDS: ReadonlySet<RuleKind> = new Set(['event', 'new_group', 'regression']);
export const SEVERITIES = ['debug', 'info', 'warning', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const DEFAULTS = {
  window_s: 300,
  repeat_interval_s: 3600,
  min_count: { error_rate: 10, latency: 5, spike: 10 } as Partial<Record<RuleKind, number>>,
  /** spike: the baseline is the mean count per window over this many preceding windows. */
  baselineWindows: 12,
} as const;

const ProjectId = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$' });
const Id = Type.String({ minLength: 1, maxLength: 128 });

/** What a client sends to create (POST) or replace (PUT) a rule. */
export const RuleInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    project_id: Type.Optional(ProjectId),
    kind: Type.String(),
    filter: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    /** The query language, e.g. `status:error platform:(Slack OR Notion) -"rate limit"`. */
    query: Type.Optional(Type.String({ maxLength: QUERY_LIMITS.maxLength })),
    threshold: Type.Optional(Type.Number()),
    window_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 86400 })),
    min_count: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000 })),
    baseline_window_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86400 })),
    group_by: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 140 }), { maxItems: 5 })),
    channels: Type.Array(Id, { maxItems: 20 }),
    severity: Type.String(),
    repeat_interval_s: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 * 86400 })),
    send_resolved: Type.Optional(Type.Boolean()),
    enabled: Type.Optional(Type.Boolean()),
    /** For feedback_loop channels: what the end user should be told. */
    user_message: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type RuleInput = Static<typeof RuleInput>;
const ruleChecker = TypeCompiler.Compile(RuleInput);

/** The filter as stored and shown: field → values (one value shown as a string), q, alert. */
export type RuleFilter = Record<string, string | string[] | boolean>;

/** A rule's selection ready for matching: an EventFilter without projects or time range. */
export type MatchFilter = EventFilter;

/** A validated rule with every default applied (what the store keeps in `spec`). */
export interface RuleSpec {
  name: string;
  project_id: string | null;
  kind: RuleKind;
  filter: RuleFilter;
  /** Query-language text; null when the rule selects by `filter` alone. */
  query: string | null;
  threshold: number | null;
  window_s: number;
  min_count: number | null;
  baseline_window_s: number | null;
  group_by: string[];
  channels: string[];
  severity: Severity;
  repeat_interval_s: number;
  send_resolved: boolean;
  enabled: boolean;
  user_message: string | null;
}

export interface Rule extends RuleSpec {
  id: string;
  created_at: number;
  updated_at: number;
  created_by: string | null;
}

/** A rule with its filter parsed once, as the evaluator and the instant path use it. */
export interface CompiledRule extends Rule {
  match: MatchFilter;
}

export function pathToField(path: string): string {
  return path.replace(/^\//, '').replace(/\//g, '.') || '(body)';
}

/**
 * Validates a rule body; every error names its field. Semantic checks (threshold per kind, filter
 * vocabulary, group_by fields) follow the schema check. Tenant and channel checks are the caller's.
 */
export function validateRule(input: unknown): { ok: true; spec: RuleSpec } | { ok: false; errors: FieldError[] } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, errors: [{ field: '(body)', message: 'must be a JSON object' }] };
  }
  const errors: FieldError[] = [];
  // null means "not set" for the optional fields (project_id null = every project)
  input = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== null));
  if (!ruleChecker.Check(input)) {
    const seen = new Set<string>();
    for (const e of ruleChecker.Errors(input)) {
      const field = pathToField(e.path);
      let message = e.message.toLowerCase();
      if (e.value === undefined && !e.path.includes('/', 1)) message = 'is required';
      if (message.startsWith('unexpected property')) message = 'is not a known field';
      if (seen.has(field)) continue;
      seen.add(field);
      errors.push({ field, message });
      if (errors.length >= 10) break;
    }
    return { ok: false, errors };
  }
  const r = input as RuleInput;
  if (!(RULE_KINDS as readonly string[]).includes(r.kind)) errors.push({ field: 'kind', message: `must be one of ${RULE_KINDS.join(', ')}` });
  if (!(SEVERITIES as readonly string[]).includes(r.severity)) errors.push({ field: 'severity', message: `must be one of ${SEVERITIES.join(', ')}` });
  if (errors.length) return { ok: false, errors };
  const kind = r.kind as RuleKind;

  const match = parseRuleFilter(r.filter ?? {}, errors);
  if (r.query) addQuery(match, r.query, 'query', errors);

  // threshold per kind
  const t = r.threshold ?? null;
  if (WINDOWED_KINDS.has(kind)) {
    if (t === null) errors.push({ field: 'threshold', message: `is required for kind ${kind}` });
    else if (!Number.isFinite(t)) errors.push({ field: 'threshold', message: 'must be a finite number' });
    else if (kind === 'threshold' && (!Number.isInteger(t) || t < 1)) errors.push({ field: 'threshold', message: 'must be a whole number of events ≥ 1' });
    else if (kind === 'error_rate' && !(t > 0 && t <= 1)) errors.push({ field: 'threshold', message: 'must be an error share above 0 and at most 1 (0.05 = 5%)' });
    else if (kind === 'latency' && !(t > 0)) errors.push({ field: 'threshold', message: 'must be a p95 duration in ms above 0' });
    else if (kind === 'spike' && !(t >= 1)) errors.push({ field: 'threshold', message: 'must be a multiple of the baseline ≥ 1 (3 = three times the usual count)' });
  } else if (t !== null) {
    errors.push({ field: 'threshold', message: `is not used by kind ${kind}` });
  }
  if (r.min_count != null && !(kind === 'error_rate' || kind === 'latency' || kind === 'spike')) {
    errors.push({ field: 'min_count', message: 'is only used by kinds error_rate, latency and spike' });
  }
  if (r.baseline_window_s != null && kind !== 'spike') {
    errors.push({ field: 'baseline_window_s', message: 'is only used by kind spike' });
  }
  const window_s = r.window_s ?? DEFAULTS.window_s;
  if (kind === 'spike' && r.baseline_window_s != null && r.baseline_window_s < window_s) {
    errors.push({ field: 'baseline_window_s', message: 'must be at least window_s' });
  }

  // group_by
  const defaultGroupBy = kind === 'new_group' || kind === 'regression' ? ['fingerprint'] : [];
  const group_by = r.group_by ?? defaultGroupBy;
  const seenGroup = new Set<string>();
  group_by.forEach((g, i) => {
    const field = `group_by.${i}`;
    if (seenGroup.has(g)) errors.push({ field, message: `${g} is listed twice` });
    seenGroup.add(g);
    if (g.startsWith('attr.')) {
      const name = g.slice(5);
      if (name.length === 0 || name.length > 128) errors.push({ field, message: 'attribute name must be 1..128 characters' });
    } else if (!(FILTER_FIELDS as readonly string[]).includes(g) || g === 'id') {
      errors.push({ field, message: `must be one of ${FILTER_FIELDS.filter((f) => f !== 'id').join(', ')} or attr.<key>` });
    }
  });
  const seenCh = new Set<string>();
  r.channels.forEach((c, i) => {
    if (seenCh.has(c)) errors.push({ field: `channels.${i}`, message: `${c} is listed twice` });
    seenCh.add(c);
  });
  if (errors.length) return { ok: false, errors };

  const instantNoResolve = kind === 'new_group' || kind === 'regression';
  const spec: RuleSpec = {
    name: r.name,
    project_id: r.project_id ?? null,
    kind,
    filter: normalizeFilter(r.filter ?? {}),
    query: r.query?.trim() ? r.query : null,
    threshold: t,
    window_s,
    min_count: r.min_count ?? DEFAULTS.min_count[kind] ?? null,
    baseline_window_s: kind === 'spike' ? r.baseline_window_s ?? Math.min(window_s * DEFAULTS.baselineWindows, 30 * 86400) : null,
    group_by,
    channels: r.channels,
    severity: r.severity as Severity,
    repeat_interval_s: r.repeat_interval_s ?? DEFAULTS.repeat_interval_s,
    send_resolved: r.send_resolved ?? !instantNoResolve,
    enabled: r.enabled ?? true,
    user_message: r.user_message ?? null,
  };
  return { ok: true, spec };
}

const FILTER_ONLY_FORBIDDEN: Record<string, string> = {
  project_id: "is set by the rule's project_id",
  from: 'is not used by rules (use window_s)',
  to: 'is not used by rules (use window_s)',
};

/**
 * Parses a rule filter (the GET /monitoring/logs vocabulary) into a MatchFilter; errors are named
 * `filter.<key>`.
 */
export function parseRuleFilter(raw: unknown, errors: FieldError[]): MatchFilter {
  const out: MatchFilter = { eq: {}, attrs: [] };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    errors.push({ field: 'filter', message: 'must be an object of field → value(s)' });
    return out;
  }
  const query: Record<string, unknown> = {};
  const local: FieldError[] = [];
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (FILTER_ONLY_FORBIDDEN[k]) {
      local.push({ field: k, message: FILTER_ONLY_FORBIDDEN[k] });
      continue;
    }
    if (k === 'alert') {
      if (typeof v !== 'boolean') local.push({ field: 'alert', message: 'must be true or false' });
      else out.alert = v;
      continue;
    }
    query[k] = v;
  }
  const f = parseFilter(query, [], local);
  for (const e of local) errors.push({ field: `filter.${e.field}`, message: e.message });
  out.eq = f.eq;
  out.attrs = f.attrs;
  if (f.q) out.q = f.q;
  return out;
}

function normalizeFilter(raw: Record<string, unknown>): RuleFilter {
  const out: RuleFilter = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'boolean') out[k] = v;
    else if (Array.isArray(v)) out[k] = v.length === 1 ? String(v[0]) : v.map(String);
    else if (typeof v === 'string') out[k] = v;
  }
  return out;
}

export function compileRule(r: Rule): CompiledRule {
  const errors: FieldError[] = [];
  const match = parseRuleFilter(r.filter, errors);
  // stored rules were validated; one stored before `query` existed has none
  if (r.query) addQuery(match, r.query, 'query', errors);
  return { ...r, query: r.query ?? null, match };
}

/** Does the rule apply to this row at all (its project, then its filter)? */
export function ruleMatchesRow(rule: CompiledRule, row: EventRow): boolean {
  if (rule.project_id !== null && rule.project_id !== row.project_id) return false;
  return matchesFilter(rule.match, row);
}

/** The rule's filter as SQL-ready EventFilter over [from, to). */
export function toEventFilter(rule: CompiledRule, from: number, to: number): EventFilter {
  return {
    ...rule.match,
    projects: rule.project_id ? [rule.project_id] : undefined,
    from,
    to,
    hasDuration: rule.kind === 'latency' ? true : undefined,
  };
}

/** The group_by values of one row. */
export function labelsOf(groupBy: readonly string[], row: EventRow): Record<string, string> {
  const out: Record<string, string> = {};
  for (const g of groupBy) {
    if (g.startsWith('attr.')) {
      const i = row.attr_keys.indexOf(g.slice(5));
      out[g] = i < 0 ? '' : row.attr_values[i];
    } else {
      out[g] = String((row as unknown as Record<string, unknown>)[g] ?? '');
    }
  }
  return out;
}

/** Facts about a group that silences can match on: labels, single-valued filter fields, the rule. */
export function contextOf(rule: CompiledRule, project_id: string, labels: Record<string, string>, row?: EventRow): Record<string, string> {
  const ctx: Record<string, string> = {};
  for (const [k, v] of Object.entries(rule.match.eq)) if (v && v.length === 1) ctx[k] = v[0];
  if (row) {
    for (const k of ['engine', 'platform', 'action', 'fingerprint', 'error_type', 'event_type', 'flow_id'] as const) {
      if (row[k]) ctx[k] = row[k];
    }
  }
  for (const [k, v] of Object.entries(labels)) if (!k.startsWith('attr.')) ctx[k] = v;
  ctx.project_id = project_id;
  ctx.rule_id = rule.id;
  ctx.severity = rule.severity;
  return ctx;
}
