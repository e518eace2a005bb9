// The alert-management routes the dashboard uses: acknowledge (no repeats for the rest of the
// episode), rule preview over stored events, mark all notifications read, one alert group, and
// dashboard links in payloads that name the project. A real engine and a loopback receiver.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, removeDir, startEngine, sleep, until, type TestEngine } from '../../test/helpers.js';
import { simulate, stepFor } from './preview.js';

let t: TestEngine;
let server: http.Server;
let base = '';
const got: { path: string; json: any }[] = [];
beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ path: req.url ?? '', json: JSON.parse(body || 'null') });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t = await startEngine({ MONITORING_ALERT_EVAL_INTERVAL_MS: '200', MONITORING_PUBLIC_URL: 'https://mon.example.test' });
});
afterAll(async () => {
  await t?.close();
  if (t) removeDir(t.dataDir);
  await new Promise((r) => server?.close(r));
});

describe('preview (pure)', () => {
  it('counts firing episodes, not firing windows', () => {
    const times = [0, 60_000, 120_000, 180_000, 240_000];
    const b = new Map([[0, 5], [60_000, 6], [180_000, 7]].map(([t, c]) => [t, { t, count: c, errors: 0, p95: null }]));
    const r = simulate({ kind: 'threshold', threshold: 5, min_count: null, window_s: 60, baseline_window_s: null }, times, b, 60);
    expect(r.values).toEqual([5, 6, 0, 7, 0]);
    expect(r.fired_at).toEqual([0, 180_000]);
  });
  it('steps are at least the window and at most 1440 per range', () => {
    expect(stepFor(300, 24)).toBe(300);
    expect(stepFor(10, 24)).toBe(60);
    expect(stepFor(60, 168)).toBe(420);
  });
});

describe('alert management routes', () => {
  it('an acknowledged group sends no repeats until it resolves; the payload links to its group', async () => {
    const ch = (await call(t.url, 'POST', '/monitoring/channels', { body: { name: 'ack-hook', type: 'webhook', project_id: 'pa', config: { url: `${base}/ack` } } })).body.id;
    const rule = await call(t.url, 'POST', '/monitoring/alert-rules', {
      body: { name: 'acks', project_id: 'pa', kind: 'event', filter: { error_type: 'quota' }, channels: [ch], severity: 'high', repeat_interval_s: 1, window_s: 60 },
    });
    expect(rule.status).toBe(201);
    await call(t.url, 'POST', '/monitoring/logs', { body: { project_id: 'pa', error_type: 'quota', message: 'quota exceeded' } });
    const first = await until('the first alert', () => got.find((g) => g.path === '/ack'));
    const n = first.json.notification;
    const groups = (await call(t.url, 'GET', '/monitoring/alert-groups?project_id=pa')).body.groups;
    expect(groups).toHaveLength(1);
    expect(n.link).toBe(`https://mon.example.test/#/alerts?project=pa&group=${groups[0].id}`);
    expect(groups[0].acknowledged_at).toBeNull();

    const ack = await call(t.url, 'POST', `/monitoring/alert-groups/${groups[0].id}/ack`);
    expect(ack.status).toBe(200);
    expect(ack.body.acknowledged_by).toBe('admin-token');
    const one = await call(t.url, 'GET', `/monitoring/alert-groups/${groups[0].id}`);
    expect(one.body).toMatchObject({ id: groups[0].id, rule_name: 'acks', state: 'firing' });
    expect(one.body.acknowledged_at).not.toBeNull();
    // more matches, well past repeat_interval_s: still one delivery
    await call(t.url, 'POST', '/monitoring/logs', { body: [1, 2, 3].map(() => ({ project_id: 'pa', error_type: 'quota' })) });
    await sleep(1800);
    expect(got.filter((g) => g.path === '/ack')).toHaveLength(1);
    // a resolved group cannot be acknowledged; a missing one is 404
    expect((await call(t.url, 'POST', '/monitoring/alert-groups/grp_nope/ack')).status).toBe(404);
  });

  it('previews a threshold rule over the last 24 h from stored events', async () => {
    const now = Date.now();
    const step = 300_000;
    const slot = Math.floor(now / step) * step;
    // two bursts of 4 in separate windows two hours apart, and 1 stray event: threshold 3 fires twice
    const at = (t: number, n: number) => Array.from({ length: n }, (_, i) => ({ project_id: 'pv', engine: 'vault', status: 'error', timestamp: t + i * 1000 }));
    const r = await call(t.url, 'POST', '/monitoring/logs', { body: [...at(slot - 4 * 3600_000 + 10_000, 4), ...at(slot - 2 * 3600_000 + 10_000, 4), ...at(slot - 3600_000 + 10_000, 1)] });
    expect(r.body.accepted).toBe(9);
    const p = await until('the preview to see the events', async () => {
      const res = await call(t.url, 'POST', '/monitoring/alert-rules/preview', { body: { name: 'x', project_id: 'pv', kind: 'threshold', threshold: 3, window_s: 300, severity: 'high' } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.series[0]?.values.reduce((a: number, b: number) => a + b, 0) === 9 && res.body;
    });
    expect(p).toMatchObject({ kind: 'threshold', step_s: 300, threshold: 3, firings: 2, groups_firing: 1, unit: 'events' });
    expect(p.times).toHaveLength(288);
    expect(p.series[0].fired_at.map((x: number) => (slot - x) / 3600_000)).toEqual([4, 2]);
    // errors name the field; channels are not needed for a preview
    const bad = await call(t.url, 'POST', '/monitoring/alert-rules/preview', { body: { name: 'x', kind: 'threshold', severity: 'high' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.errors).toEqual([expect.objectContaining({ field: 'threshold' })]);
    // a key for another project may not preview this one
    const other = (await t.engine.keys.create({ name: 'other', scopes: ['admin'], project_id: 'elsewhere' })).token;
    expect((await call(t.url, 'POST', '/monitoring/alert-rules/preview', { token: other, body: { name: 'x', project_id: 'pv', kind: 'event', severity: 'high' } })).status).toBe(403);
  });

  it('marks every notification of the caller read at once', async () => {
    const ch = (await call(t.url, 'POST', '/monitoring/channels', { body: { name: 'in-app', type: 'ui', project_id: 'pu', config: {} } })).body.id;
    const r0 = await call(t.url, 'POST', '/monitoring/alert-rules', { body: { name: 'ui', project_id: 'pu', kind: 'event', filter: { platform: 'Stripe' }, group_by: ['engine'], channels: [ch], severity: 'high' } });
    expect(r0.status, JSON.stringify(r0.body)).toBe(201);
    await call(t.url, 'POST', '/monitoring/logs', { body: [{ project_id: 'pu', engine: 'a', platform: 'Stripe' }, { project_id: 'pu', engine: 'b', platform: 'Stripe' }] });
    await until('two unread', async () => (await call(t.url, 'GET', '/monitoring/notifications?project_id=pu')).body.unread === 2);
    const key = (await t.engine.keys.create({ name: 'pu-read', scopes: ['read'], project_id: 'pu' })).token;
    const r = await call(t.url, 'POST', '/monitoring/notifications/read-all', { token: key });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ marked: 2, unread: 0 });
  });

  it('whoami names the scopes and projects of the token', async () => {
    const key = (await t.engine.keys.create({ name: 'who', scopes: ['read'], project_id: 'pw' })).token;
    expect((await call(t.url, 'GET', '/monitoring/whoami', { token: key })).body).toMatchObject({ scopes: ['read'], projects: ['pw'] });
    expect((await call(t.url, 'GET', '/monitoring/whoami')).body).toMatchObject({ name: 'admin-token', scopes: ['ingest', 'read', 'admin'], projects: null });
  });
});
