// Retention and usage on a real engine (chDB and the control store of this run): events past each
// project's retention are gone from every event table after the job runs, the newer ones all stay;
// alert history goes with them; usage reports events and bytes per day; retention changes are audited.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, removeDir, startEngine, type TestEngine } from '../../test/helpers.js';
import { AlertStore, type Delivery } from '../alerts/store.js';
import { EVENT_TABLES } from '../storage/schema.js';
import { DAY_MS } from './policy.js';

let t: TestEngine;
const NOW = Date.now();
const ago = (days: number, plusMs = 0) => new Date(NOW - days * DAY_MS + plusMs).toISOString();

/** [project, days ago, expected to survive] */
const PLAN: [string, number, boolean][] = [
  ['ret_a', 100, false], // a partition of old default-retention events only: dropped whole
  ['ret_a', 45, false],
  ['ret_long', 45, true], // same day, a project keeping 90 days: that day stays, ret_a's rows go
  ['ret_long', 120, false],
  ['ret_a', 31, false],
  ['ret_a', 29, true],
  ['ret_a', 1, true],
  ['ret_short', 10, false], // keeps 7 days
  ['ret_short', 3, true],
  ['ret_a', 0, true],
];
const ids = new Map<string, boolean>();

async function rowsPerTable(project: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of EVENT_TABLES) {
    const [r] = await t.engine.events.query<{ n: number }>(`SELECT count() AS n FROM ${table.table} WHERE project_id = {p:String}`, { p: project });
    out[table.table] = Number(r.n);
  }
  return out;
}

async function oldestPerTable(project: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of EVENT_TABLES) {
    const [r] = await t.engine.events.query<{ m: number }>(`SELECT min(${table.time}) AS m FROM ${table.table} WHERE project_id = {p:String}`, { p: project });
    out[table.table] = Number(r.m);
  }
  return out;
}

beforeAll(async () => {
  t = await startEngine({ MONITORING_RETENTION_DAYS: '30' });
  for (const [project, days] of [['ret_long', 90], ['ret_short', 7]] as const) {
    const cur = await call(t.url, 'GET', `/monitoring/projects/${project}/settings`);
    expect(cur.body.retention_days).toBeUndefined();
    const put = await call(t.url, 'PUT', `/monitoring/projects/${project}/settings`, { body: { ...cur.body, retention_days: days } });
    expect(put.status).toBe(200);
    expect(put.body.retention_days).toBe(days);
  }
  // errors with a fingerprint (the rollup), sessions and users (the lookup table) on every day
  const events = PLAN.flatMap(([project, days], i) => [0, 1].map((k) => ({
    project_id: project, timestamp: ago(days, -k * 60_000), status: 'error', error_type: `E${i}`, message: `failure ${i}.${k}`,
    session_id: `s-${i}`, user_id: `u-${i}`, trace_id: `t-${i}-${k}`,
  })));
  const res = await call(t.url, 'POST', '/monitoring/logs', { body: events });
  expect(res.status).toBe(200);
  expect(res.body.accepted).toBe(events.length);
  res.body.ids.forEach((id: string, j: number) => ids.set(id, PLAN[Math.floor(j / 2)][2]));
});
afterAll(async () => {
  await t.close();
  removeDir(t.dataDir);
});

describe('retention', () => {
  it('rejects a retention override out of range, naming the field', async () => {
    const cur = await call(t.url, 'GET', '/monitoring/projects/ret_a/settings');
    const bad = await call(t.url, 'PUT', '/monitoring/projects/ret_a/settings', { body: { ...cur.body, retention_days: 0 } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('retention_days');
  });

  it('audits a retention change with the old and new value', async () => {
    const r = await call(t.url, 'GET', '/monitoring/logs?project_id=ret_long&event_type=audit&action=update_retention');
    expect(r.status).toBe(200);
    expect(r.body.logs).toHaveLength(1);
    expect(r.body.logs[0].attributes).toMatchObject({ target_kind: 'retention', from_days: 'default (30)', to_days: '90' });
  });

  it('usage: events and bytes per day', async () => {
    const r = await call(t.url, 'GET', `/monitoring/projects/ret_a/usage?from=${encodeURIComponent(ago(200))}`);
    expect(r.status).toBe(200);
    expect(r.body.retention_days).toBe(30);
    const expected = PLAN.filter(([p]) => p === 'ret_a').length * 2;
    expect(r.body.total.events).toBe(expected);
    expect(r.body.days.length).toBeGreaterThanOrEqual(5);
    for (const d of r.body.days) {
      expect(d.day).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(d.events).toBeGreaterThan(0);
      expect(d.bytes).toBeGreaterThan(0);
      expect(d.raw_bytes).toBeGreaterThan(d.events * 40);
    }
    // the default window is the retention: the 100-, 45- and 31-day-old events are outside it
    const dflt = await call(t.url, 'GET', '/monitoring/projects/ret_a/usage');
    expect(dflt.body.total.events).toBe(expected - 6);
    expect((await call(t.url, 'GET', '/monitoring/projects/ret_a/usage?from=tomorrow')).status).toBe(400);
  });

  it('after the job, what is past retention is gone from every event table and everything newer is there', async () => {
    const before = await rowsPerTable('ret_a');
    for (const table of EVENT_TABLES) expect(before[table.table], table.table).toBeGreaterThan(0);

    // alert history: one old notification delivered, one old still pending (outbox), one recent
    const store = new AlertStore(t.engine.meta);
    const note = async (id: string, project: string, at: number, status: Delivery['status']) => {
      await t.engine.meta.tx((db) => store.insertNotification(db, {
        id, group_id: `g-${id}`, rule_id: 'r', rule_name: 'r', project_id: project, state: 'firing', kind: 'firing', silence_id: null,
        count: 1, payload: {} as never, created_at: at,
      }, [{
        id: `${id}:c`, notification_id: id, channel_id: 'c', channel_name: 'c', channel_type: 'webhook', status, attempts: 1,
        // a pending one waits for a retry far ahead, so the engine's dispatcher leaves it alone meanwhile
        next_attempt_at: status === 'pending' ? NOW + DAY_MS : at, lease_until: null, last_status: null, last_error: null, created_at: at, updated_at: at, delivered_at: null,
      }], [{ id: `${id}:ui`, notification_id: id, channel_id: 'ui', project_id: project, payload: {} as never, created_at: at, read_at: null }]));
    };
    await note('old-done', 'ret_a', NOW - 40 * DAY_MS, 'delivered');
    await note('old-pending', 'ret_a', NOW - 40 * DAY_MS, 'pending');
    await note('old-long', 'ret_long', NOW - 40 * DAY_MS, 'failed');
    await note('recent', 'ret_a', NOW - DAY_MS, 'delivered');

    const run = await call(t.url, 'POST', '/monitoring/retention/run');
    expect(run.status).toBe(200);
    const events = run.body.events.find((r: any) => r.table === 'events');
    // days holding only expired rows (100, 120, 31 and, for the 7-day project, 10 days ago) are dropped
    // whole; on the day ret_a shares with the 90-day project, ret_a's rows are deleted
    expect(events.dropped_partitions).toHaveLength(4);
    expect(events.deleted_for).toEqual(['ret_a']);

    // every event table: nothing older than each project's cutoff, counts match what should stay
    for (const [project, days] of [['ret_a', 30], ['ret_long', 90], ['ret_short', 7]] as const) {
      const oldest = await oldestPerTable(project);
      for (const table of EVENT_TABLES) expect(oldest[table.table], `${project} ${table.table}`).toBeGreaterThanOrEqual(NOW - days * DAY_MS - 3_600_000);
    }
    const kept = await rowsPerTable('ret_a');
    const keptDays = PLAN.filter(([p, , live]) => p === 'ret_a' && live).length;
    expect(kept.events).toBe(keptDays * 2);
    expect(kept.error_rollup).toBeGreaterThan(0);

    // every event that should stay is found by id; none of the others
    const all = await call(t.url, 'GET', `/monitoring/logs?from=${encodeURIComponent(ago(400))}&limit=1000&event_type=error`);
    const found = new Set(all.body.logs.map((l: any) => l.id));
    for (const [id, live] of ids) expect(found.has(id), `${id} ${live ? 'kept' : 'gone'}`).toBe(live);
    // error groups (read through the rollup) count only what is kept
    const groups = await call(t.url, 'GET', `/monitoring/errors?project_id=ret_long&from=${encodeURIComponent(ago(200))}`);
    expect(groups.status).toBe(200);
    expect(groups.body.groups.reduce((n: number, g: any) => n + g.count, 0)).toBe(2);

    // alert history: the old finished one is gone, the old one still in the outbox stays, the others by their project's retention
    expect(await store.getNotification('old-done')).toBeUndefined();
    expect(await store.getDelivery('old-done:c')).toBeUndefined();
    expect(await store.getUi('old-done:ui')).toBeUndefined();
    expect(await store.getNotification('old-pending')).toBeDefined();
    expect(await store.getDelivery('old-pending:c')).toBeDefined();
    expect(await store.getNotification('old-long')).toBeDefined();
    expect(await store.getNotification('recent')).toBeDefined();
    expect(run.body.history).toMatchObject({ notifications: 1, deliveries: 1 });

    // idempotent: a second run finds nothing more to do
    const again = await call(t.url, 'POST', '/monitoring/retention/run');
    expect(again.body.events.every((r: any) => r.dropped_partitions.length === 0 && r.deleted_for.length === 0)).toBe(true);
  });

  it('only a key for every project may run the job', async () => {
    const k = await call(t.url, 'POST', '/monitoring/keys', { body: { name: 'p-admin', scopes: ['admin'], project_id: 'ret_a' } });
    expect(k.status).toBe(201);
    const r = await call(t.url, 'POST', '/monitoring/retention/run', { token: k.body.token });
    expect(r.status).toBe(403);
  });
});
