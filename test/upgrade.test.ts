// Upgrades: the engine started on a data dir written by the previous release (test/fixtures, made by
// make-release-fixture.mjs from commit 9ce0dbc) finds every event and every setting, brings both
// schemas to the current version, and a second start changes nothing.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, removeDir, startEngine, tempDir, type TestEngine } from './helpers.js';
import { CONTROL_MIGRATIONS } from '../src/storage/control-migrations.js';
import { EVENT_MIGRATIONS } from '../src/storage/event-migrations.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'release-9ce0dbc.tar.gz');
let dir = '';
let data = '';
let t: TestEngine;
let m: any;

const ledgers = async (e: TestEngine) => ({
  control: await e.engine.meta.all<{ version: number; applied_at: number }>('SELECT version, applied_at FROM schema_migrations ORDER BY version'),
  events: (await e.engine.events.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).map((r) => Number(r.version)),
});

beforeAll(async () => {
  dir = tempDir('pm-upgrade-');
  execFileSync('tar', ['-xzf', FIXTURE, '-C', dir]);
  data = join(dir, 'data');
  m = JSON.parse(readFileSync(join(data, 'fixture-manifest.json'), 'utf8'));
  // the control store is the fixture's SQLite file whatever this run's control-store mode is
  t = await startEngine({ MONITORING_DATABASE_URL: '' }, data);
});
afterAll(async () => {
  await t?.close();
  if (dir) removeDir(dir);
});

describe(`upgrade from release ${'9ce0dbc'}`, () => {
  it('finds every event the previous release stored', async () => {
    const r = await call(t.url, 'GET', '/monitoring/logs?from=2025-01-01T00:00:00Z&limit=1000');
    expect(r.status).toBe(200);
    const found = new Set(r.body.logs.map((l: any) => l.id));
    expect(m.event_ids).toHaveLength(41);
    expect(m.event_ids.filter((id: string) => !found.has(id))).toEqual([]);
    const one = r.body.logs.find((l: any) => l.message === 'sent #1');
    expect(one).toMatchObject({ project_id: m.project, platform: 'Slack', session_id: 's-1', duration_ms: 101, attributes: { region: 'eu' } });
    // lookups through the secondary tables work on the old data too
    const bySession = await call(t.url, 'GET', `/monitoring/logs?project_id=${m.project}&session_id=s-2&from=2025-01-01T00:00:00Z`);
    expect(bySession.body.logs).toHaveLength(10);
  });

  it('keeps keys, channels, rules, silences, settings and error-group states', async () => {
    expect((await call(t.url, 'GET', `/monitoring/logs?project_id=${m.project}&from=2025-01-01T00:00:00Z`, { token: m.key.token })).status).toBe(200);
    expect((await call(t.url, 'GET', '/monitoring/logs?project_id=pf_other', { token: m.key.token })).status).toBe(403);
    const key = await call(t.url, 'GET', `/monitoring/keys/${m.key.id}`);
    expect(key.body).toMatchObject({ name: 'upgrade reader', project_id: m.project, requests_per_minute: 600 });
    expect((await call(t.url, 'GET', `/monitoring/channels/${m.channel_id}`)).body).toMatchObject({ name: 'upgrade hook', type: 'webhook' });
    expect((await call(t.url, 'GET', `/monitoring/alert-rules/${m.rule_id}`)).body).toMatchObject({ name: 'upgrade errors', kind: 'threshold', threshold: 50, channels: [m.channel_id] });
    expect((await call(t.url, 'GET', `/monitoring/silences/${m.silence_id}`)).body).toMatchObject({ matchers: { severity: 'low' }, comment: 'upgrade' });
    expect((await call(t.url, 'GET', `/monitoring/projects/${m.project}/settings`)).body).toEqual(m.settings);
    const group = await call(t.url, 'GET', `/monitoring/errors/${m.error_group.fingerprint}?project_id=${m.project}&from=2025-01-01T00:00:00Z`);
    expect(group.status).toBe(200);
    expect(group.body.state).toBe('resolved');
  });

  it('brings both schemas to the current version; a second start applies nothing', async () => {
    const first = await ledgers(t);
    expect(first.control.map((r) => Number(r.version))).toEqual(CONTROL_MIGRATIONS.map((x) => x.version));
    expect(first.events).toEqual(EVENT_MIGRATIONS.map((x) => x.version));
    await t.close();
    t = await startEngine({ MONITORING_DATABASE_URL: '' }, data);
    expect(await ledgers(t)).toEqual(first);
    expect((await call(t.url, 'GET', '/monitoring/logs?from=2025-01-01T00:00:00Z&limit=1000')).body.logs.length).toBeGreaterThanOrEqual(41);
  });
});
