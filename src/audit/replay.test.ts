import { describe, expect, it } from 'vitest';
import { buildReplay, compareSteps } from './replay.js';
import { row } from './test-rows.js';

const T = Date.parse('2025-07-25T10:00:00Z');

describe('buildReplay', () => {
  const steps = [
    row({ id: 'a', timestamp: T, received_at: T + 100, user_id: 'u1', flow_id: 'f1', action: 'login' }),
    row({ id: 'b', timestamp: T + 1000, received_at: T + 5000, user_id: 'u1', action: 'open', duration_ms: 200 }),
    row({ id: 'c', timestamp: T + 3000, received_at: T + 5000, action: 'send' }),
    row({ id: 'z', timestamp: T + 3000, received_at: T + 4000, action: 'tie-first-arrival' }),
    row({ id: 'e', timestamp: T + 7000, received_at: T + 7100, status: 'error', error_type: 'api_timeout', fingerprint: 'fp', message: 'timed out' }),
    row({ id: 'f', timestamp: T + 8000, received_at: T + 8100, status: 'error', fingerprint: 'fp2', user_id: 'u2' }),
  ];

  it('orders by time, ties by arrival then id, whatever the input order', () => {
    const shuffled = [steps[4], steps[2], steps[0], steps[5], steps[3], steps[1]];
    const r = buildReplay('s1', shuffled);
    expect(r.steps.map((s) => s.id)).toEqual(['a', 'b', 'z', 'c', 'e', 'f']);
    expect(buildReplay('s1', [...shuffled].reverse()).steps.map((s) => s.id)).toEqual(['a', 'b', 'z', 'c', 'e', 'f']);
    expect(compareSteps(steps[2], steps[2])).toBe(0);
  });

  it('gives offsets, gaps and step durations (reported, else until the next step)', () => {
    const r = buildReplay('s1', steps);
    expect(r.steps.map((s) => s.offset_ms)).toEqual([0, 1000, 3000, 3000, 7000, 8000]);
    expect(r.steps.map((s) => s.gap_ms)).toEqual([null, 1000, 2000, 0, 4000, 1000]);
    expect(r.steps.map((s) => s.step_duration_ms)).toEqual([1000, 200, 0, 4000, 1000, null]);
    expect(r.steps.map((s) => s.step_duration_source)).toEqual(['until_next', 'reported', 'until_next', 'until_next', 'until_next', null]);
  });

  it('marks the first error and what led to it', () => {
    const r = buildReplay('s1', steps);
    expect(r.steps.filter((s) => s.is_error).map((s) => s.id)).toEqual(['e', 'f']);
    expect(r.steps.filter((s) => s.first_error).map((s) => s.id)).toEqual(['e']);
    expect(r.first_error).toMatchObject({ step: 4, id: 'e', error_type: 'api_timeout', fingerprint: 'fp', offset_ms: 7000 });
    expect(r.led_to.map((s) => [s.id, s.before_error_ms])).toEqual([['a', 7000], ['b', 6000], ['z', 4000], ['c', 4000]]);
    expect(r.led_to_total).toBe(4);
    const short = buildReplay('s1', steps, { lead: 2 });
    expect(short.led_to.map((s) => s.id)).toEqual(['z', 'c']);
    expect(short.led_to_total).toBe(4);
  });

  it('flags late arrivals: received after an event that happened later', () => {
    const r = buildReplay('s1', steps);
    // b and c arrived at +5000, after z (+4000) which happened at the same time as c: b and c are late
    expect(r.steps.map((s) => s.arrived_late)).toEqual([false, true, false, false, false, false]);
  });

  it('summarises the session', () => {
    expect(buildReplay('s1', steps).session).toEqual({
      id: 's1', project_id: 'pf', start: '2025-07-25T10:00:00.000Z', end: '2025-07-25T10:00:08.000Z', duration_ms: 8000,
      events: 6, errors: 2, users: ['u1', 'u2'], flows: ['f1'], engines: ['execution'],
    });
  });

  it('copes with a session without errors and an empty one', () => {
    const r = buildReplay('s2', steps.slice(0, 2));
    expect(r.first_error).toBeNull();
    expect(r.led_to).toEqual([]);
    expect(r.led_to_total).toBe(0);
    expect(buildReplay('s3', []).steps).toEqual([]);
  });
});
