// Pure parts of the alerts stage: rule validation, row matching, windowed verdicts, repeat timing,
// backoff, silences.
import { describe, expect, it } from 'vitest';
import { normalize, type EventRow } from '../event.js';
import { compileRule, labelsOf, parseRuleFilter, validateRule, type Rule } from './rules.js';
import { matchesFilter } from '../query/match.js';
import { baselinePerWindow, evaluateWindow, groupId, notificationId, repeatDue, retryDelayMs, type WindowStats } from './evaluate.js';
import { findSilence, silenceMatches, validateSilence, type Silence } from './silences.js';

function row(input: Record<string, unknown>): EventRow {
  const r = normalize({ project_id: 'p1', ...input }, Date.now());
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.row;
}

function rule(body: Record<string, unknown>): Rule {
  const v = validateRule({ name: 'r', channels: [], severity: 'high', ...body });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return { ...v.spec, id: 'rule_1', created_at: 0, updated_at: 0, created_by: null };
}

const fieldsOf = (body: Record<string, unknown>): string[] => {
  const v = validateRule(body);
  return v.ok ? [] : v.errors.map((e) => e.field);
};

describe('validateRule', () => {
  const base = { name: 'r', kind: 'event', channels: [], severity: 'critical' };

  it('applies defaults per kind', () => {
    const ev = rule({ kind: 'event', filter: { severity: 'critical' } });
    expect(ev).toMatchObject({ window_s: 300, repeat_interval_s: 3600, send_resolved: true, enabled: true, group_by: [], threshold: null, project_id: null });
    const ng = rule({ kind: 'new_group' });
    expect(ng).toMatchObject({ group_by: ['fingerprint'], send_resolved: false });
    const er = rule({ kind: 'error_rate', threshold: 0.2 });
    expect(er.min_count).toBe(10);
    const sp = rule({ kind: 'spike', threshold: 3, window_s: 60 });
    expect(sp.baseline_window_s).toBe(720);
  });

  it('names the field of every problem', () => {
    expect(fieldsOf({ ...base, name: undefined })).toEqual(['name']);
    expect(fieldsOf({ ...base, kind: 'sometimes' })).toEqual(['kind']);
    expect(fieldsOf({ ...base, severity: 'urgent' })).toEqual(['severity']);
    expect(fieldsOf({ ...base, kind: 'threshold' })).toEqual(['threshold']);
    expect(fieldsOf({ ...base, kind: 'threshold', threshold: 2.5 })).toEqual(['threshold']);
    expect(fieldsOf({ ...base, kind: 'error_rate', threshold: 20 })).toEqual(['threshold']);
    expect(fieldsOf({ ...base, kind: 'spike', threshold: 0.5 })).toEqual(['threshold']);
    expect(fieldsOf({ ...base, threshold: 3 })).toEqual(['threshold']);
    expect(fieldsOf({ ...base, window_s: 0 })).toEqual(['window_s']);
    expect(fieldsOf({ ...base, window_s: 'soon' })).toEqual(['window_s']);
    expect(fieldsOf({ ...base, group_by: ['nope'] })).toEqual(['group_by.0']);
    expect(fieldsOf({ ...base, group_by: ['engine', 'engine'] })).toEqual(['group_by.1']);
    expect(fieldsOf({ ...base, channels: 'ch_1' })).toEqual(['channels']);
    expect(fieldsOf({ ...base, channels: ['a', 'a'] })).toEqual(['channels.1']);
    expect(fieldsOf({ ...base, filter: { colour: 'red' } })).toEqual(['filter.colour']);
    expect(fieldsOf({ ...base, filter: { project_id: 'x' } })).toEqual(['filter.project_id']);
    expect(fieldsOf({ ...base, filter: { alert: 'yes' } })).toEqual(['filter.alert']);
    expect(fieldsOf({ ...base, filter: { severity: 3 } })).toEqual(['filter.severity']);
    expect(fieldsOf({ ...base, min_count: 3 })).toEqual(['min_count']);
    expect(fieldsOf({ ...base, surprise: 1 })).toEqual(['surprise']);
    expect(fieldsOf({ ...base, project_id: 'bad project' })).toEqual(['project_id']);
    expect(validateRule([]).ok).toBe(false);
  });

  it('treats null as not set', () => {
    expect(validateRule({ ...base, threshold: null, project_id: null, user_message: null }).ok).toBe(true);
  });
});

describe('a rule filter matches as the logs filter vocabulary does', () => {
  const r = row({ engine: 'execution', severity: 'critical', error_type: 'token_expired', message: 'Failed to send – token expired', attributes: { region: 'eu' } });
  const m = (f: Record<string, unknown>) => {
    const errors: never[] = [];
    return matchesFilter(parseRuleFilter(f, errors), r);
  };
  it('exact fields, lists, attributes, text and the alert flag', () => {
    expect(m({})).toBe(true);
    expect(m({ severity: 'critical' })).toBe(true);
    expect(m({ severity: 'high' })).toBe(false);
    expect(m({ severity: ['high', 'critical'], engine: 'execution' })).toBe(true);
    expect(m({ error_type: 'token_expired', engine: 'vault' })).toBe(false);
    expect(m({ 'attr.region': 'eu' })).toBe(true);
    expect(m({ 'attr.region': 'us' })).toBe(false);
    expect(m({ 'attr.zone': '' })).toBe(false); // absent is not empty
    expect(m({ q: 'TOKEN EXPIRED' })).toBe(true);
    expect(m({ q: 'quota' })).toBe(false);
    expect(m({ alert: false })).toBe(true);
    expect(m({ alert: true })).toBe(false);
  });
  it('labels come from group_by fields and attributes', () => {
    expect(labelsOf(['engine', 'attr.region', 'attr.none'], r)).toEqual({ engine: 'execution', 'attr.region': 'eu', 'attr.none': '' });
  });
  it('a compiled rule keeps its parsed filter', () => {
    expect(compileRule(rule({ kind: 'event', filter: { error_type: 'token_expired' } })).match.eq.error_type).toEqual(['token_expired']);
  });
});

describe('a rule query', () => {
  const r = row({ engine: 'execution', severity: 'critical', platform: 'Slack', status: 'error', duration_ms: 2500, message: 'Token expired while sending', attributes: { region: 'eu' } });
  const compiled = (body: Record<string, unknown>) => compileRule(rule({ kind: 'event', ...body }));
  it('is validated with the column of the error, on the field query', () => {
    const v = validateRule({ name: 'r', kind: 'event', channels: [], severity: 'high', query: 'status:error AND (platform:Slack' });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.errors).toEqual([{ field: 'query', message: expect.stringMatching(/^column 18: missing \)/), column: 18 }]);
  });
  it('is kept as written, and matched in memory together with the filter', () => {
    const c = compiled({ query: 'status:error platform:(Slack OR Notion) "token expired" duration_ms:>1000', filter: { engine: 'execution' } });
    expect(c.query).toBe('status:error platform:(Slack OR Notion) "token expired" duration_ms:>1000');
    expect(matchesFilter(c.match, r)).toBe(true);
    expect(matchesFilter(compiled({ query: 'status:error', filter: { engine: 'vault' } }).match, r)).toBe(false);
    expect(matchesFilter(compiled({ query: '-attr.region:eu' }).match, r)).toBe(false);
    expect(matchesFilter(compiled({ query: 'duration_ms:>3000' }).match, r)).toBe(false);
  });
  it('lifts top-level fields into the exact filter (SQL indexes, silence context)', () => {
    const c = compiled({ query: 'severity:critical timeout|expired' });
    expect(c.match.eq.severity).toEqual(['critical']);
    expect(c.match.query).toMatchObject({ kind: 'or' });
  });
  it('a rule stored before queries existed compiles with none', () => {
    const { query: _omit, ...old } = rule({ kind: 'event', filter: { severity: 'critical' } });
    expect(compileRule(old as Rule).query).toBeNull();
  });
});

describe('evaluateWindow', () => {
  const stats = (s: Partial<WindowStats>): WindowStats => ({
    project_id: 'p', labels: {}, count: 0, errors: 0, p95: null, baseline: 0, first: 0, last: 0, last_message: '', ...s,
  });
  const ev = (r: Partial<Rule>, s: Partial<WindowStats>) => evaluateWindow({ kind: 'threshold', threshold: 1, min_count: null, window_s: 60, baseline_window_s: null, ...r }, stats(s));

  it('threshold: count ≥ threshold', () => {
    expect(ev({ threshold: 5 }, { count: 5 }).firing).toBe(true);
    expect(ev({ threshold: 5 }, { count: 4 }).firing).toBe(false);
  });
  it('error_rate: share ≥ threshold with a minimum volume', () => {
    const r = { kind: 'error_rate' as const, threshold: 0.5, min_count: 10 };
    expect(ev(r, { count: 10, errors: 5 }).firing).toBe(true);
    expect(ev(r, { count: 10, errors: 4 }).firing).toBe(false);
    expect(ev(r, { count: 4, errors: 4 }).firing).toBe(false); // too few events to say
    expect(ev(r, { count: 10, errors: 5 }).text).toContain('50%');
  });
  it('latency: p95 ≥ threshold', () => {
    const r = { kind: 'latency' as const, threshold: 1000, min_count: 3 };
    expect(ev(r, { count: 5, p95: 1500 }).firing).toBe(true);
    expect(ev(r, { count: 5, p95: 900 }).firing).toBe(false);
    expect(ev(r, { count: 2, p95: 5000 }).firing).toBe(false);
    expect(ev(r, { count: 5, p95: null }).firing).toBe(false);
  });
  it('spike: count ≥ threshold × baseline per window (baseline at least 1)', () => {
    const r = { kind: 'spike' as const, threshold: 3, min_count: 5, window_s: 60, baseline_window_s: 600 };
    expect(baselinePerWindow(r, 40)).toBe(4);
    expect(ev(r, { count: 12, baseline: 40 }).firing).toBe(true);
    expect(ev(r, { count: 11, baseline: 40 }).firing).toBe(false);
    expect(ev(r, { count: 5, baseline: 0 }).firing).toBe(true);
    expect(ev(r, { count: 4, baseline: 0 }).firing).toBe(false);
  });
});

describe('groups, ids, repeats, backoff', () => {
  it('group ids ignore label order; notification ids are stable', () => {
    expect(groupId('r', 'p', { a: '1', b: '2' })).toBe(groupId('r', 'p', { b: '2', a: '1' }));
    expect(groupId('r', 'p', { a: '1' })).not.toBe(groupId('r', 'q', { a: '1' }));
    expect(notificationId('g', 1, 1)).toBe(notificationId('g', 1, 1));
    expect(notificationId('g', 1, 1)).not.toBe(notificationId('g', 1, 2));
    expect(notificationId('g', 1, 1)).not.toBe(notificationId('g', 2, 1));
  });
  it('repeats after the interval, never with 0, at once after a silence ends', () => {
    expect(repeatDue({ last_notified_at: null, last_silenced: 0 }, 60, false, 1000)).toBe(true);
    expect(repeatDue({ last_notified_at: 0, last_silenced: 0 }, 60, false, 59_999)).toBe(false);
    expect(repeatDue({ last_notified_at: 0, last_silenced: 0 }, 60, false, 60_000)).toBe(true);
    expect(repeatDue({ last_notified_at: 0, last_silenced: 0 }, 0, false, 1e12)).toBe(false);
    expect(repeatDue({ last_notified_at: 0, last_silenced: 1 }, 60, false, 1)).toBe(true);
    expect(repeatDue({ last_notified_at: 0, last_silenced: 1 }, 60, true, 1)).toBe(false);
  });
  it('backs off exponentially with jitter; Retry-After is a floor', () => {
    expect(retryDelayMs(1, 1000, undefined, 60_000, () => 0)).toBe(500);
    expect(retryDelayMs(1, 1000, undefined, 60_000, () => 1)).toBe(1000);
    expect(retryDelayMs(4, 1000, undefined, 60_000, () => 0)).toBe(4000);
    expect(retryDelayMs(20, 1000, undefined, 60_000, () => 1)).toBe(60_000);
    expect(retryDelayMs(1, 1000, 7000, 60_000, () => 1)).toBe(7000);
  });
});

describe('silences', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('validates with field names', () => {
    const bad = (b: Record<string, unknown>) => {
      const v = validateSilence(b, now);
      return v.ok ? [] : v.errors.map((e) => e.field);
    };
    expect(bad({ matchers: { engine: 'x' } })).toEqual(['ends_at']);
    expect(bad({ matchers: { colour: 'x' }, ends_at: now + 1 })).toEqual(['matchers.colour']);
    expect(bad({ matchers: { engine: 'x' }, ends_at: now - 1 })).toEqual(['ends_at']);
    expect(bad({ matchers: { engine: 'x' }, ends_at: 'tomorrow' })).toEqual(['ends_at']);
    expect(bad({ matchers: {}, ends_at: now + 1 })).toEqual(['matchers']);
    const ok = validateSilence({ project_id: 'p1', matchers: { engine: 'vault' }, ends_at: '2025-01-01T01:00:00Z' }, now);
    expect(ok).toEqual({ ok: true, spec: { project_id: 'p1', matchers: { engine: 'vault', project_id: 'p1' }, starts_at: now, ends_at: now + 3600_000, comment: '' } });
  });
  it('matches every matcher exactly and only while active', () => {
    const s: Silence = { id: 's', project_id: 'p1', matchers: { engine: 'vault' }, starts_at: now, ends_at: now + 1000, comment: '', created_by: null, created_at: now, updated_at: now };
    expect(silenceMatches(s, { project_id: 'p1', engine: 'vault' })).toBe(true);
    expect(silenceMatches(s, { project_id: 'p2', engine: 'vault' })).toBe(false);
    expect(silenceMatches(s, { project_id: 'p1' })).toBe(false);
    expect(findSilence([s], { project_id: 'p1', engine: 'vault' }, now + 999)).toBe(s);
    expect(findSilence([s], { project_id: 'p1', engine: 'vault' }, now + 1000)).toBeUndefined();
    expect(findSilence([s], { project_id: 'p1', engine: 'vault' }, now - 1)).toBeUndefined();
  });
});
