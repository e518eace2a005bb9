import { describe, expect, it } from 'vitest';
import { HOUR_MS } from '../storage/schema.js';
import { cutoff, DAY_MS, latestCutoff, plan, type RetentionPolicy } from './policy.js';

const NOW = Date.parse('2026-06-15T12:34:56Z');
const policy: RetentionPolicy = { defaultDays: 30, overrides: new Map([['long', 90], ['short', 7]]) };
const at = (daysAgo: number) => NOW - daysAgo * DAY_MS;

describe('retention policy', () => {
  it('cuts each project at its own retention, on a whole hour', () => {
    expect(cutoff(policy, 'any', NOW)).toBe(Date.parse('2026-05-16T12:00:00Z'));
    expect(cutoff(policy, 'long', NOW)).toBe(Date.parse('2026-03-17T12:00:00Z'));
    expect(cutoff(policy, 'short', NOW) % HOUR_MS).toBe(0);
    expect(latestCutoff(policy, NOW)).toBe(cutoff(policy, 'short', NOW));
  });

  it('drops a partition only when every project in it is past retention; deletes per project otherwise', () => {
    const p = plan([
      // only default projects, all old: dropped whole
      { partition: '20260401', project_id: 'a', oldest: at(75), newest: at(75) + 1000 },
      { partition: '20260401', project_id: 'b', oldest: at(75), newest: at(75) + 1000 },
      // the long-retention project shares the day: the day stays, a's rows go
      { partition: '20260402', project_id: 'a', oldest: at(74), newest: at(74) },
      { partition: '20260402', project_id: 'long', oldest: at(74), newest: at(74) },
      // a partition straddling the cutoff: kept, the old rows deleted
      { partition: '20260516', project_id: 'c', oldest: at(30) - 5 * HOUR_MS, newest: at(30) + 5 * HOUR_MS },
      // the short project's week-old rows go even in a recent partition; others' are kept
      { partition: '20260601', project_id: 'short', oldest: at(14), newest: at(14) },
      { partition: '20260601', project_id: 'a', oldest: at(14), newest: at(14) },
    ], policy, NOW);
    expect(p.drop).toEqual(['20260401']);
    expect(p.deletes).toEqual([
      { project_id: 'a', before: cutoff(policy, 'a', NOW) },
      { project_id: 'c', before: cutoff(policy, 'c', NOW) },
      { project_id: 'short', before: cutoff(policy, 'short', NOW) },
    ]);
  });
});
