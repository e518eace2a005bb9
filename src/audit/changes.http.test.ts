import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, qs, startEngine, type TestEngine } from '../../test/helpers.js';
import { suspectChanges } from './changes.js';

let t: TestEngine;
let keyA: string;
const P = 'pf_chg';
const M = 60_000;
const H = 60 * M;
const T0 = Date.parse('2025-07-20T00:00:00Z');

const change = (id: string, at: number, type: 'deploy' | 'config_change', extra: Record<string, unknown> = {}) => ({
  id, project_id: P, event_type: type, engine: type === 'deploy' ? 'engine_control' : 'platform_builder', status: 'success',
  user_id: 'builder_1', timestamp: T0 + at, ...extra,
});
const rateLimited = (at: number) => ({
  project_id: P, flow_id: 'sync', engine: 'execution', platform: 'HubSpot', status: 'error', error_type: 'rate_limited',
  message: 'HubSpot rate limited', timestamp: T0 + at,
});
const slackTimeout = (at: number) => ({
  project_id: P, flow_id: 'lead_submit', engine: 'execution', platform: 'Slack', status: 'error', error_type: 'api_timeout',
  message: `Slack timed out after ${5000 + at / M} ms`, timestamp: T0 + at,
});

let fpOld = '';
let fpNew = '';

beforeAll(async () => {
  t = await startEngine();
  keyA = (await t.engine.keys.create({ name: 'a', scopes: ['read', 'ingest'], project_id: 'pf_a' })).token;
  const events: unknown[] = [
    change('D0', 0, 'deploy', { version: '1.0.0', message: 'deployed 1.0.0' }),
    // C1 changes the Slack timeout of lead_submit; a new error group follows five minutes later
    change('C1', H, 'config_change', {
      flow_id: 'lead_submit', target: 'slack_block', message: 'lowered the Slack timeout',
      before: { timeout: 30, retries: { max: 3 } }, after: { timeout: 10, retries: { max: 3 } },
    }),
    // a change of another flow in between: not a suspect for lead_submit's errors
    change('C_other', H + 2 * M, 'config_change', { flow_id: 'other_flow', message: 'renamed a step' }),
    // C2: nothing follows it but the usual background errors
    change('C2', 4 * H, 'config_change', { attributes: { key: 'max_retries', before: 3, after: 5 }, message: 'more retries' }),
    // D3: a deploy followed by a rise of an old group
    change('D3', 5 * H, 'deploy', { version: '1.1.0', message: 'deployed 1.1.0' }),
    { project_id: 'pf_a', event_type: 'deploy', id: 'DA', timestamp: T0 },
  ];
  for (let at = -2 * H; at < 7 * H; at += 10 * M) events.push(rateLimited(at)); // background: 6 an hour
  for (let i = 1; i <= 20; i++) events.push(rateLimited(5 * H + i * 90_000)); // the rise after D3
  for (let i = 0; i < 5; i++) events.push(slackTimeout(H + 5 * M + i * M)); // the new group after C1
  const r = await call(t.url, 'POST', '/monitoring/logs', { body: events });
  expect(r.body.accepted).toBe(events.length);
  const fp = async (error_type: string) =>
    (await call(t.url, 'GET', `/monitoring/logs?${qs({ project_id: P, error_type, limit: 1 })}`)).body.logs[0].fingerprint as string;
  fpOld = await fp('rate_limited');
  fpNew = await fp('api_timeout');
  expect(fpOld).not.toBe(fpNew);
});
afterAll(async () => {
  await t.close();
});

const changes = (params: Record<string, string | number | undefined>, token?: string) =>
  call(t.url, 'GET', `/monitoring/changes?${qs(params)}`, { token });

describe('GET /monitoring/changes', () => {
  it('lists deploys and config changes, newest first, each with the error groups that were new or rose after it', async () => {
    const r = await changes({ project_id: P });
    expect(r.status).toBe(200);
    const byId = Object.fromEntries(r.body.changes.map((c: any) => [c.id, c]));
    expect(r.body.changes.map((c: any) => c.id)).toEqual(['D3', 'C2', 'C_other', 'C1', 'D0']);
    expect(byId.C1.errors.map((e: any) => [e.fingerprint, e.kind, e.after])).toEqual([[fpNew, 'new', 5]]);
    expect(byId.C1.errors[0]).toMatchObject({ error_type: 'api_timeout', platform: 'Slack', first_seen: new Date(T0 + H + 5 * M).toISOString() });
    expect(byId.D3.errors.map((e: any) => [e.fingerprint, e.kind, e.before, e.after])).toEqual([[fpOld, 'spike', 6, 26]]);
    expect(byId.C2.errors).toEqual([]);
    expect(byId.C_other.errors).toEqual([]);
    expect(byId.D0.errors).toEqual([]);
    expect(r.body).toMatchObject({ window_ms: H, factor: 2, min_events: 3, next_cursor: null });
  });

  it('shows what each change changed, with the difference', async () => {
    const r = await changes({ project_id: P });
    const byId = Object.fromEntries(r.body.changes.map((c: any) => [c.id, c]));
    expect(byId.C1.change).toMatchObject({
      kind: 'config_change', target: 'slack_block', summary: 'lowered the Slack timeout',
      diff: [{ path: 'timeout', op: 'changed', before: 30, after: 10 }],
    });
    expect(byId.C2.change.diff).toEqual([{ path: 'max_retries', op: 'changed', before: 3, after: 5 }]);
    expect(byId.D3.change).toMatchObject({ kind: 'deploy', version: '1.1.0' });
    expect(byId.D3.who.user_id).toBe('builder_1');
    expect(byId.D3.from.engine).toBe('engine_control');
  });

  it('takes the factor, window and time range as parameters, and pages by cursor', async () => {
    const strict = await changes({ project_id: P, factor: 10 });
    expect(strict.body.changes.find((c: any) => c.id === 'D3').errors).toEqual([]);
    const short = await changes({ project_id: P, window: '10m' });
    // within ten minutes of C1 the new group had started; D3 is followed by 6 rises against 1 before
    expect(short.body.changes.find((c: any) => c.id === 'C1').errors.map((e: any) => e.kind)).toEqual(['new']);
    const ranged = await changes({ project_id: P, from: T0 + 30 * M, to: T0 + 2 * H });
    expect(ranged.body.changes.map((c: any) => c.id)).toEqual(['C_other', 'C1']);
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await changes({ project_id: P, limit: 2, cursor });
      ids.push(...page.body.changes.map((c: any) => c.id));
      cursor = page.body.next_cursor ?? undefined;
    } while (cursor);
    expect(ids).toEqual(['D3', 'C2', 'C_other', 'C1', 'D0']);
  });

  it('validates its parameters and guards the tenant', async () => {
    for (const [params, field] of [
      [{ project_id: P, factor: '0.5' }, 'factor'],
      [{ project_id: P, window: 'soon' }, 'window'],
      [{ project_id: P, limit: 501 }, 'limit'],
      [{ project_id: P, status: 'error' }, 'status'],
      [{ project_id: P, cursor: 'abc' }, 'cursor'],
    ] as const) {
      const r = await changes(params as Record<string, string | number>);
      expect(r.status, JSON.stringify(params)).toBe(400);
      expect(r.body.error.details.errors.map((e: any) => e.field)).toContain(field);
    }
    expect((await changes({ project_id: P }, keyA)).status).toBe(403);
    expect((await changes({}, keyA)).body.changes.map((c: any) => c.id)).toEqual(['DA']);
  });
});

describe('suspectChanges', () => {
  it('names the config change before a new group as its suspect, not an unrelated or quiet change', async () => {
    const s = await suspectChanges(t.engine.events, P, fpNew);
    expect(s.map((x) => [x.reason, x.change.id])).toEqual([['started', 'C1']]);
    expect(s[0]).toMatchObject({ onset: new Date(T0 + H + 5 * M).toISOString(), lag_ms: 5 * M });
    expect(s[0].diff).toEqual([{ path: 'timeout', op: 'changed', before: 30, after: 10 }]);
  });

  it('names the deploy before a rise of an old group, and not the change with no errors after it', async () => {
    const s = await suspectChanges(t.engine.events, P, fpOld);
    expect(s.map((x) => [x.reason, x.change.id, x.before, x.after])).toEqual([['spike', 'D3', 6, 26]]);
    expect(s.map((x) => x.change.id)).not.toContain('C2');
  });

  it('is named in the error-group detail', async () => {
    const d = await call(t.url, 'GET', `/monitoring/errors/${fpNew}?project_id=${P}`);
    expect(d.status).toBe(200);
    expect(d.body.suspect_changes.map((x: any) => [x.reason, x.change.id])).toEqual([['started', 'C1']]);
  });

  it('has none for an unknown group or another project', async () => {
    expect(await suspectChanges(t.engine.events, P, 'ffffffffffffffff')).toEqual([]);
    expect(await suspectChanges(t.engine.events, 'pf_a', fpNew)).toEqual([]);
  });
});
