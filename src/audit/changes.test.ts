import { describe, expect, it } from 'vitest';
import { changeApplies, classifyImpacts, isSpike, pickSuspects, DEFAULT_CORRELATION, type ImpactRow } from './changes.js';
import { row } from './test-rows.js';

const H = 3_600_000;
const T = Date.parse('2025-07-25T10:00:00Z');
const impact = (p: Partial<ImpactRow>): ImpactRow => ({
  ci: 1, fingerprint: 'fp', before_n: 0, after_n: 1, first_after: T, error_type: 'e', message: 'm', engine: 'x', platform: 'p', ...p,
});

describe('change correlation rules', () => {
  it('a rise is factor × the count before (at least 1) and at least minEvents', () => {
    expect(isSpike(5, 10, 2, 3)).toBe(true);
    expect(isSpike(5, 9, 2, 3)).toBe(false);
    expect(isSpike(0, 3, 2, 3)).toBe(true);
    expect(isSpike(0, 2, 2, 3)).toBe(false);
    expect(isSpike(1, 2, 2, 1)).toBe(true);
  });

  it('a change applies to an error when their flows match or either is unknown', () => {
    expect(changeApplies('', 'f1')).toBe(true);
    expect(changeApplies('f1', '')).toBe(true);
    expect(changeApplies('f1', 'f1')).toBe(true);
    expect(changeApplies('f1', 'f2')).toBe(false);
  });

  it('classifies a change\'s groups as new (first seen within the window) or risen, and drops the rest', () => {
    const c = row({ timestamp: T, project_id: 'pf' });
    const first = new Map([['pf\u0000new', T + 60_000], ['pf\u0000old', T - 10 * H], ['pf\u0000flat', T - 10 * H]]);
    const out = classifyImpacts(c, [
      impact({ fingerprint: 'old', before_n: 2, after_n: 9 }),
      impact({ fingerprint: 'flat', before_n: 6, after_n: 6 }),
      impact({ fingerprint: 'new', before_n: 0, after_n: 2, first_after: T + 60_000 }),
    ], first, DEFAULT_CORRELATION);
    expect(out.map((e) => [e.fingerprint, e.kind, e.rise])).toEqual([['new', 'new', 2], ['old', 'spike', 4.5]]);
    expect(out[0].first_seen).toBe(new Date(T + 60_000).toISOString());
  });
});

describe('pickSuspects', () => {
  const group = { first: T, firstFlow: 'f1', lookbackMs: 24 * H };

  it('names the most recent applicable change before the group started', () => {
    const older = row({ id: 'older', timestamp: T - 3 * H, event_type: 'deploy' });
    const recent = row({ id: 'recent', timestamp: T - H, event_type: 'config_change', flow_id: 'f1' });
    const otherFlow = row({ id: 'other', timestamp: T - 60_000, event_type: 'config_change', flow_id: 'f2' });
    const after = row({ id: 'after', timestamp: T + H, event_type: 'config_change' });
    const tooOld = row({ id: 'too-old', timestamp: T - 25 * H, event_type: 'deploy' });
    const s = pickSuspects(group, [], [after, otherFlow, recent, older, tooOld], [], DEFAULT_CORRELATION);
    expect(s.map((x) => [x.reason, x.change.id, x.lag_ms])).toEqual([['started', 'recent', H]]);
    expect(pickSuspects(group, [], [tooOld, otherFlow], [], DEFAULT_CORRELATION)).toEqual([]);
  });

  it('names the most recent change before each rise, and no change that no rise followed', () => {
    const c1 = row({ id: 'c1', timestamp: T + 2 * H, event_type: 'deploy' });
    const c2 = row({ id: 'c2', timestamp: T + 2 * H + 60_000, event_type: 'config_change' });
    const quiet = row({ id: 'quiet', timestamp: T + 5 * H, event_type: 'config_change' });
    const onset = T + 2 * H + 120_000;
    const s = pickSuspects(group, [c1, c2, quiet], [c1, c2, quiet], [
      impact({ ci: 1, before_n: 1, after_n: 20, first_after: onset }),
      impact({ ci: 2, before_n: 1, after_n: 20, first_after: onset }),
      impact({ ci: 3, before_n: 5, after_n: 6, first_after: T + 5 * H + 1 }),
    ], DEFAULT_CORRELATION);
    expect(s.map((x) => [x.reason, x.change.id, x.before, x.after, x.lag_ms])).toEqual([['spike', 'c2', 1, 20, 60_000]]);
  });
});
