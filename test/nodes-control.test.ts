// Two engine nodes on one PostgreSQL control store (each with its own embedded event store: what is
// shared here is the control state): a change made on node A is in force on node B a second later
// (an alert rule created, edited, disabled; project settings), and an in-app notification raised on
// one node reaches the notification streams open on either node within a second, once each.
// A runs in this process, B as its own process (the built CLI).
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, exited, removeDir, sleep, spawnEngine, startEngine, tempDir, until, type TestEngine } from './helpers.js';
import { createTestDatabase } from './control-db.js';

let A: TestEngine;
let B = '';
let bProc: ChildProcess | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  const url = await createTestDatabase();
  const env = { MONITORING_DATABASE_URL: url };
  A = await startEngine(env);
  dirs.push(A.dataDir);
  const bDir = tempDir('pm-node-b-');
  dirs.push(bDir);
  const b = await spawnEngine(bDir, { ...env, MONITORING_LOG_LEVEL: 'warn' });
  B = b.url;
  bProc = b.proc;
});
afterAll(async () => {
  if (bProc && bProc.exitCode === null) {
    bProc.kill('SIGTERM');
    await exited(bProc);
  }
  await A?.close();
  for (const d of dirs) removeDir(d);
});

/** An open notification stream: every `notification` event with the time it arrived. */
async function openStream(base: string, project: string) {
  const ac = new AbortController();
  const res = await fetch(`${base}/monitoring/notifications/stream?project_id=${project}`, { headers: { authorization: `Bearer ${A.token}` }, signal: ac.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const events: { at: number; n: any }[] = [];
  let buf = '';
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += new TextDecoder().decode(value);
        let i;
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (block.includes('event: notification')) events.push({ at: Date.now(), n: JSON.parse(block.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) });
        }
      }
    } catch {
      // closed
    }
  })();
  // the stream is listening once its first bytes (": connected") were written
  await sleep(100);
  return { events, close: () => ac.abort() };
}

/** How often each notification id arrived. */
const counts = (events: { n: any }[]) => {
  const m = new Map<string, number>();
  for (const e of events) m.set(e.n.id, (m.get(e.n.id) ?? 0) + 1);
  return m;
};

async function uiChannel(base: string, project: string): Promise<string> {
  const ch = await call(base, 'POST', '/monitoring/channels', { body: { name: 'in-app', type: 'ui', project_id: project, config: {} } });
  expect(ch.status, JSON.stringify(ch.body)).toBe(201);
  return ch.body.id;
}

async function send(base: string, body: unknown): Promise<void> {
  const r = await call(base, 'POST', '/monitoring/logs', { body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

/** Waits until `ms` after `since` (a change's answer): what B does then is what "within 1 s" promises. */
const oneSecondAfter = (since: number) => sleep(Math.max(0, since + 1000 - Date.now()));

describe('two nodes on one PostgreSQL', () => {
  it('an in-app notification raised on B reaches a stream open on A within 1 s, and each stream gets it once', async () => {
    const ch = await uiChannel(A.url, 'pf_ui');
    const onA = await openStream(A.url, 'pf_ui');
    const onB = await openStream(B, 'pf_ui');
    try {
      // a channel test on B: stored on B, shown on both nodes' streams
      const t0 = Date.now();
      const r = await call(B, 'POST', `/monitoring/channels/${ch}/test`);
      expect(r.body.ok, JSON.stringify(r.body)).toBe(true);
      const id = `${r.body.notification_id}:${ch}`;
      const got = await until('the notification on A\'s stream', () => onA.events.find((e) => e.n.id === id), 5000);
      expect(got.at - t0).toBeLessThan(1000);

      // an alert rule firing on B (the outbox path) reaches A's stream too
      const rule = await call(B, 'POST', '/monitoring/alert-rules', { body: {
        name: 'crash seen', project_id: 'pf_ui', kind: 'event', filter: { error_type: 'crash' }, group_by: ['platform'], channels: [ch], severity: 'high',
      } });
      expect(rule.status, JSON.stringify(rule.body)).toBe(201);
      await send(B, { project_id: 'pf_ui', status: 'error', error_type: 'crash', platform: 'Slack', message: 'crashed' });
      await until('the rule\'s notification on A\'s stream', () => onA.events.some((e) => e.n.rule_name === 'crash seen'), 10_000);
      // a second copy would come now
      await sleep(800);
      for (const s of [onA, onB]) {
        expect([...counts(s.events).values()]).toEqual([1, 1]);
        expect(s.events.map((e) => e.n.rule_name).sort()).toEqual(['Test message', 'crash seen']);
      }
    } finally {
      onA.close();
      onB.close();
    }
  });

  it('an alert rule created, edited and disabled on A is in force on B 1 s after A answered', async () => {
    const project = 'pf_rules';
    const ch = await uiChannel(A.url, project);
    const onB = await openStream(B, project);
    const fired = (rule: string, platform: string) => onB.events.some((e) => e.n.rule_name === rule && e.n.labels?.platform === platform);
    const rule = async (method: string, path: string, body: unknown) => {
      const r = await call(A.url, method, path, { body });
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
      return { id: r.body.id as string, at: Date.now() };
    };
    const ev = (error_type: string, platform: string) => ({ project_id: project, status: 'error', error_type, platform, message: `${error_type} on ${platform}` });
    try {
      // a rule that always fires: once its notification is on B's stream, every row before it was seen
      await rule('POST', '/monitoring/alert-rules', { name: 'sentinel', project_id: project, kind: 'event', filter: { error_type: 'sentinel' }, group_by: ['platform'], channels: [ch], severity: 'high' });
      const watch = await rule('POST', '/monitoring/alert-rules', { name: 'watch', project_id: project, kind: 'event', filter: { error_type: 'alpha' }, group_by: ['platform'], channels: [ch], severity: 'high' });

      // created on A → fires on B
      await oneSecondAfter(watch.at);
      await send(B, [ev('alpha', 'p1')]);
      await until('the new rule firing on B', () => fired('watch', 'p1'), 10_000);

      // edited on A (alpha → beta) → B matches beta, no longer alpha
      const edited = await rule('PATCH', `/monitoring/alert-rules/${watch.id}`, { filter: { error_type: 'beta' } });
      await oneSecondAfter(edited.at);
      await send(B, [ev('alpha', 'p2'), ev('beta', 'p3'), ev('sentinel', 's1')]);
      await until('the sentinel (s1) on B', () => fired('sentinel', 's1'), 10_000);
      await until('the edited rule firing on B', () => fired('watch', 'p3'), 2000);
      expect(fired('watch', 'p2'), 'the rule\'s old filter still matched on B').toBe(false);

      // disabled on A → B no longer fires it
      const disabled = await rule('PATCH', `/monitoring/alert-rules/${watch.id}`, { enabled: false });
      await oneSecondAfter(disabled.at);
      await send(B, [ev('beta', 'p4'), ev('sentinel', 's2')]);
      await until('the sentinel (s2) on B', () => fired('sentinel', 's2'), 10_000);
      expect(fired('watch', 'p4'), 'the disabled rule still fired on B').toBe(false);
    } finally {
      onB.close();
    }
  });

  it('project settings changed on A (a redaction pattern, the flood ceiling) are in force on B 1 s after A answered', async () => {
    const project = 'pf_settings';
    const put = await call(A.url, 'PUT', `/monitoring/projects/${project}/settings`, { body: {
      flood_ceiling_per_minute: 2, flood_sample_every: 1000, redaction: { patterns: [{ name: 'ticket', regex: 'TKT-[0-9]+' }], secret_keys: [] },
    } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    await oneSecondAfter(Date.now());
    // five of one error group: the first two in full, the rest slimmed (sampled); the ticket redacted
    await send(B, Array.from({ length: 5 }, (_, i) => ({
      project_id: project, status: 'error', error_type: 'Boom', message: `failed on TKT-4242 (${i})`, stack: 'Error: Boom\n    at f (/app/x.js:1:1)',
    })));
    const logs = (await call(B, 'GET', `/monitoring/logs?project_id=${project}&limit=100`)).body.logs as any[];
    const errors = logs.filter((l) => l.error_type === 'Boom');
    expect(errors).toHaveLength(5);
    for (const l of errors) expect(l.message).not.toContain('TKT-4242');
    expect(errors.filter((l) => Number(l.sampled) === 1)).toHaveLength(3);
  });
});
