// Alert rules that select events with the query language: a windowed rule is evaluated in SQL, an
// instant rule in memory, both from the rule's one parse; a bad query is refused with its column.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, removeDir, startEngine, type TestEngine } from '../../test/helpers.js';

let t: TestEngine;
let server: http.Server;
let hooks: { path: string; json: any }[] = [];
let hookUrl = '';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c));
    req.on('end', () => {
      hooks.push({ path: req.url ?? '', json: JSON.parse(raw) });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t = await startEngine({ MONITORING_ALERT_EVAL_INTERVAL_MS: '200' });
});
afterAll(async () => {
  await t?.close();
  if (t) removeDir(t.dataDir);
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, fn: () => T | undefined | false, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(40);
  }
}

async function channel(project: string, path: string): Promise<string> {
  const r = await call(t.url, 'POST', '/monitoring/channels', { body: { name: path, type: 'webhook', project_id: project, config: { url: `${hookUrl}${path}` } } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id;
}

async function send(body: unknown[]): Promise<void> {
  const r = await call(t.url, 'POST', '/monitoring/logs', { body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

describe('rules with a query', () => {
  it('a bad query is a 400 with the column; a good one is stored and shown as written', async () => {
    const ch = await channel('pr_q', '/bad');
    const bad = await call(t.url, 'POST', '/monitoring/alert-rules', { body: {
      name: 'bad', project_id: 'pr_q', kind: 'event', query: 'status:error OR', channels: [ch], severity: 'high',
    } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_query', details: { field: 'query', column: 16 } });
    const ok = await call(t.url, 'POST', '/monitoring/alert-rules', { body: {
      name: 'ok', project_id: 'pr_q', kind: 'event', query: 'status:error "token expired"', channels: [ch], severity: 'high', enabled: false,
    } });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    const got = await call(t.url, 'GET', `/monitoring/alert-rules/${ok.body.id}`);
    expect(got.body).toMatchObject({ query: 'status:error "token expired"', filter: {} });
    const patched = await call(t.url, 'PATCH', `/monitoring/alert-rules/${ok.body.id}`, { body: { query: 'level:critical' } });
    expect(patched.body).toMatchObject({ query: 'level:critical', name: 'ok' });
    const badPatch = await call(t.url, 'PATCH', `/monitoring/alert-rules/${ok.body.id}`, { body: { query: 'level:critical)' } });
    expect(badPatch.body.error).toMatchObject({ code: 'invalid_query', details: { column: 15 } });
    const cleared = await call(t.url, 'PATCH', `/monitoring/alert-rules/${ok.body.id}`, { body: { query: null } });
    expect(cleared.body.query).toBeNull();
  });

  it('instant (event) rule: matched in memory as events are written', async () => {
    const ch = await channel('pr_i', '/instant');
    const r = await call(t.url, 'POST', '/monitoring/alert-rules', { body: {
      name: 'expired tokens off Slack', project_id: 'pr_i', kind: 'event', group_by: ['platform'],
      query: '"token expired" -platform:Slack attr.region:eu*', channels: [ch], severity: 'critical',
    } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    await send([
      { project_id: 'pr_i', platform: 'Slack', message: 'Token expired', attributes: { region: 'eu-west' } },
      { project_id: 'pr_i', platform: 'Notion', message: 'Token expired', attributes: { region: 'us' } },
      { project_id: 'pr_i', platform: 'Notion', message: 'token expired again', attributes: { region: 'eu-central' } },
    ]);
    await until('the instant alert', () => hooks.some((h) => h.path === '/instant'));
    await sleep(600);
    const got = hooks.filter((h) => h.path === '/instant');
    expect(got).toHaveLength(1);
    expect(got[0].json.notification).toMatchObject({ labels: { platform: 'Notion' }, count: 1, state: 'firing' });
  });

  it('windowed (threshold) rule: counted in SQL with the same query', async () => {
    const ch = await channel('pr_w', '/windowed');
    const r = await call(t.url, 'POST', '/monitoring/alert-rules', { body: {
      name: 'slow calls', project_id: 'pr_w', kind: 'threshold', threshold: 3, window_s: 300, group_by: ['platform'],
      query: 'duration_ms:>1000 platform:Slack|Notion -status:success', channels: [ch], severity: 'high',
    } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const ev = (platform: string, duration_ms: number, status = 'error') => ({ project_id: 'pr_w', platform, duration_ms, status });
    await send([
      ev('Slack', 2000), ev('Slack', 3000), ev('Slack', 5000), // 3 matching on Slack: fires
      ev('Notion', 2000), ev('Notion', 2000), ev('Notion', 500), ev('Notion', 9000, 'success'), // 2 matching on Notion: does not
      ev('Stripe', 9000), ev('Stripe', 9000), ev('Stripe', 9000),
    ]);
    await until('the windowed alert', () => hooks.some((h) => h.path === '/windowed'));
    await sleep(800);
    const got = hooks.filter((h) => h.path === '/windowed');
    expect(got).toHaveLength(1);
    expect(got[0].json.notification).toMatchObject({ labels: { platform: 'Slack' }, count: 3 });
  });
});
