import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, qs, startEngine, type TestEngine } from '../../test/helpers.js';
import { isSpike, DEFAULT_SPIKE } from './queries.js';

let t: TestEngine;
const T0 = Date.parse('2025-07-25T10:00:00Z');
const RANGE = { from: '2025-07-25T10:00:00Z', to: '2025-07-25T11:00:00Z' };

/** The percentile definition the API documents: the sorted value at index floor(q·n). */
function pct(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

// Deterministic durations with a long tail, per platform/action.
const slack = Array.from({ length: 200 }, (_, i) => 100 + ((i * 37) % 200) + (i % 50 === 0 ? 5000 : 0));
const notion = Array.from({ length: 120 }, (_, i) => 300 + ((i * 53) % 900));

beforeAll(async () => {
  t = await startEngine();
  const events = [
    ...slack.map((d, i) => ({
      project_id: 'pf_perf', platform: 'Slack', action: 'send_message', engine: 'execution', duration_ms: d,
      retries: i % 10 === 0 ? 2 : 0, status: i % 20 === 0 ? 'error' : 'success', timestamp: T0 + i * 10_000,
    })),
    ...notion.map((d, i) => ({
      project_id: 'pf_perf', platform: 'Notion', action: 'create_page', engine: 'execution', duration_ms: d,
      retries: 1, status: i % 4 === 0 ? 'timeout' : 'success', timestamp: T0 + i * 20_000,
    })),
  ];
  expect((await call(t.url, 'POST', '/monitoring/logs', { body: events })).body.accepted).toBe(320);
});
afterAll(async () => {
  await t.close();
});

describe('performance', () => {
  it('gives percentiles, error rate, retries, timeouts and throughput per platform/action', async () => {
    const r = await call(t.url, 'GET', `/monitoring/performance?${qs({ project_id: 'pf_perf', group_by: 'platform,action', ...RANGE })}`);
    expect(r.status).toBe(200);
    const s = r.body.groups.find((g: any) => g.group.platform === 'Slack');
    const n = r.body.groups.find((g: any) => g.group.platform === 'Notion');
    expect(s.group).toEqual({ platform: 'Slack', action: 'send_message' });
    expect(s.count).toBe(200);
    expect(s.p50).toBe(pct(slack, 0.5));
    expect(s.p95).toBe(pct(slack, 0.95));
    expect(s.p99).toBe(pct(slack, 0.99));
    expect(s.max).toBe(Math.max(...slack));
    expect(s.errors).toBe(10);
    expect(s.error_rate).toBeCloseTo(0.05, 10);
    expect(s.avg_retries).toBeCloseTo((20 * 2) / 200, 10);
    expect(s.max_retries).toBe(2);
    expect(s.timeouts).toBe(0);
    expect(s.throughput_per_min).toBeCloseTo(200 / 60, 6);
    expect(n.count).toBe(120);
    expect(n.p95).toBe(pct(notion, 0.95));
    expect(n.timeouts).toBe(30);
    expect(n.errors).toBe(30); // a timeout status is an error too
  });

  it('groups by flow, engine or nothing, and filters like /logs', async () => {
    const all = await call(t.url, 'GET', `/monitoring/performance?${qs({ project_id: 'pf_perf', group_by: 'engine', ...RANGE })}`);
    expect(all.body.groups).toHaveLength(1);
    expect(all.body.groups[0].count).toBe(320);
    expect(all.body.groups[0].p50).toBe(pct([...slack, ...notion], 0.5));
    const onlyNotion = await call(t.url, 'GET', `/monitoring/performance?${qs({ project_id: 'pf_perf', group_by: 'engine', platform: 'Notion', ...RANGE })}`);
    expect(onlyNotion.body.groups[0].count).toBe(120);
    const bad = await call(t.url, 'GET', `/monitoring/performance?${qs({ project_id: 'pf_perf', group_by: 'platform,colour' })}`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.errors[0].field).toBe('group_by');
  });

  it('flags a latency spike: the last window against its baseline', async () => {
    const now = Date.now();
    const events = [
      ...Array.from({ length: 30 }, (_, i) => ({ project_id: 'pf_spike', platform: 'Stripe', action: 'charge', duration_ms: 100 + i, timestamp: now - 50 * 60_000 + i * 60_000 })),
      ...Array.from({ length: 10 }, (_, i) => ({ project_id: 'pf_spike', platform: 'Stripe', action: 'charge', duration_ms: 900 + i, timestamp: now - 4 * 60_000 + i * 10_000 })),
      ...Array.from({ length: 30 }, (_, i) => ({ project_id: 'pf_spike', platform: 'Gmail', action: 'send', duration_ms: 100 + i, timestamp: now - 50 * 60_000 + i * 100_000 })),
    ];
    await call(t.url, 'POST', '/monitoring/logs', { body: events });
    const r = await call(t.url, 'GET', `/monitoring/performance?${qs({ project_id: 'pf_spike', group_by: 'platform' })}`);
    const stripe = r.body.groups.find((g: any) => g.group.platform === 'Stripe');
    const gmail = r.body.groups.find((g: any) => g.group.platform === 'Gmail');
    expect(stripe.latency_spike.spike).toBe(true);
    expect(stripe.latency_spike.window_p95).toBe(909);
    expect(gmail.latency_spike.spike).toBe(false);
    // a higher factor than the jump: no spike
    const lax = await call(t.url, 'GET', `/monitoring/performance?${qs({ project_id: 'pf_spike', group_by: 'platform', spike_factor: 10 })}`);
    expect(lax.body.groups.find((g: any) => g.group.platform === 'Stripe').latency_spike.spike).toBe(false);
  });

  it('says null, not 0, for groups without durations, and leaves admin actions out', async () => {
    await call(t.url, 'POST', '/monitoring/logs', { body: [{ project_id: 'pf_nodur', platform: 'Vault', message: 'access checked' }] });
    await call(t.url, 'PUT', '/monitoring/projects/pf_nodur/settings', { body: { flood_ceiling_per_minute: null, flood_sample_every: 100, redaction: { patterns: [], secret_keys: [] } } });
    const r = await call(t.url, 'GET', `/monitoring/performance?${qs({ project_id: 'pf_nodur', group_by: 'platform' })}`);
    expect(r.body.groups).toHaveLength(1);
    expect(r.body.groups[0]).toMatchObject({ group: { platform: 'Vault' }, count: 1, p50: null, p95: null, p99: null, max: null });
    const s = await call(t.url, 'GET', `/monitoring/timeseries?${qs({ project_id: 'pf_nodur', metric: 'p95', interval: 3600 })}`);
    expect(s.body.series[0].points.every((p: any) => p.value === null)).toBe(true);
  });

  it('isSpike needs enough events in the window', () => {
    expect(isSpike(1000, 100, 10, DEFAULT_SPIKE)).toBe(true);
    expect(isSpike(1000, 100, 2, DEFAULT_SPIKE)).toBe(false);
    expect(isSpike(150, 100, 10, DEFAULT_SPIKE)).toBe(false);
    expect(isSpike(null, 100, 10, DEFAULT_SPIKE)).toBe(false);
  });
});

describe('timeseries', () => {
  it('buckets with empty buckets filled', async () => {
    const r = await call(t.url, 'GET', `/monitoring/timeseries?${qs({ project_id: 'pf_perf', metric: 'count', interval: 600, from: '2025-07-25T09:40:00Z', to: '2025-07-25T11:20:00Z' })}`);
    expect(r.status).toBe(200);
    expect(r.body.series).toHaveLength(1);
    const values = r.body.series[0].points.map((p: any) => p.value);
    // 09:40, 09:50 empty; 10:00–10:50 hold the events; 11:00, 11:10 empty
    expect(values).toHaveLength(10);
    expect(values.slice(0, 2)).toEqual([0, 0]);
    expect(values.slice(8)).toEqual([0, 0]);
    expect(values.reduce((a: number, b: number) => a + b, 0)).toBe(320);
    // Slack: one event per 10 s → 60 per 10 minutes (for the 200 events: 2000 s = 33.3 min)
    const bySlack = await call(t.url, 'GET', `/monitoring/timeseries?${qs({ project_id: 'pf_perf', metric: 'count', interval: 600, group_by: 'platform', platform: 'Slack', ...RANGE })}`);
    expect(bySlack.body.series[0].group).toEqual({ platform: 'Slack' });
    expect(bySlack.body.series[0].points.map((p: any) => p.value)).toEqual([60, 60, 60, 20, 0, 0]);
  });

  it('p95 per bucket matches an independent computation; empty buckets are null', async () => {
    const r = await call(t.url, 'GET', `/monitoring/timeseries?${qs({ project_id: 'pf_perf', metric: 'p95', interval: 600, platform: 'Slack', ...RANGE })}`);
    const pts = r.body.series[0].points;
    expect(pts[0].value).toBe(pct(slack.slice(0, 60), 0.95));
    expect(pts[1].value).toBe(pct(slack.slice(60, 120), 0.95));
    expect(pts[5].value).toBeNull();
  });

  it('chooses an interval when none is given (≤ 500 points) and rejects bad metrics', async () => {
    const r = await call(t.url, 'GET', `/monitoring/timeseries?${qs({ project_id: 'pf_perf', metric: 'error_rate', from: '2025-07-01T00:00:00Z', to: '2025-08-01T00:00:00Z' })}`);
    expect(r.body.series[0].points.length).toBeLessThanOrEqual(500);
    expect(r.body.series[0].points.length).toBeGreaterThan(100);
    expect((await call(t.url, 'GET', `/monitoring/timeseries?metric=p42&project_id=pf_perf`)).status).toBe(400);
  });
});

describe('load and metrics', () => {
  it('reports events per second by project and engine, and the ingest queue', async () => {
    await call(t.url, 'POST', '/monitoring/logs', { body: Array.from({ length: 60 }, () => ({ project_id: 'pf_load', engine: 'vault' })) });
    const r = await call(t.url, 'GET', `/monitoring/load?${qs({ project_id: 'pf_load', window: 60 })}`);
    expect(r.body.by_project).toEqual([{ project_id: 'pf_load', events_per_s: 1 }]);
    expect(r.body.by_engine).toEqual([{ engine: 'vault', events_per_s: 1 }]);
    expect(r.body.ingest.queue_depth).toBe(0);
    expect(r.body.ingest.flushes).toBeGreaterThan(0);
    expect(r.body.ingest.unloaded_bytes).toBe(0);
    const m = await call(t.url, 'GET', '/metrics');
    expect(m.headers.get('content-type')).toContain('text/plain');
    expect(m.body).toMatch(/^puraify_monitoring_events_accepted_total \d+$/m);
    expect(m.body).toMatch(/^puraify_monitoring_wal_bytes [1-9]\d*$/m);
    expect(m.body).toMatch(/^puraify_monitoring_ingest_refused_total\{reason="log_full"\} 0$/m);
    // memory by where it lives: the JavaScript heap, Buffers outside it, and the embedded chDB's own
    expect(m.body).toMatch(/^nodejs_external_memory_bytes [1-9]\d*$/m);
    expect(m.body).toMatch(/^puraify_monitoring_storage_memory_bytes [1-9]\d*$/m);
  });
});
