// Alerts across a crash: the rows of a 200 reach their alert rules even when the process dies right
// after answering (kill -9) or right after the rules ran but before their place in the log was saved;
// each alert is delivered once after the restart. A retried POST /monitoring/alert is routed once.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { call, removeDir, spawnEngine, tempDir } from './helpers.js';

const dirs: string[] = [];
const procs: ChildProcess[] = [];
const servers: http.Server[] = [];
afterAll(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const s of servers) s.closeAllConnections(), s.close();
  for (const d of dirs) removeDir(d);
});

const exited = (p: ChildProcess) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r())));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A webhook receiver on loopback: every notification it was sent. */
async function receiver(): Promise<{ url: string; got: { path: string; notification: any }[] }> {
  const got: { path: string; notification: any }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ path: req.url ?? '', notification: JSON.parse(body).notification });
      res.writeHead(200).end('ok');
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got };
}

async function until(what: string, ok: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// A delivery the killed process had claimed waits out its lease (send timeout × 2 + 5 s) on
// PostgreSQL, where other nodes may be sending (one process alone on SQLite frees them at start):
// the receiver is on loopback, so a 1 s send timeout keeps that lease at 7 s.
const ENV = { MONITORING_ALLOW_PRIVATE_WEBHOOKS: 'true', MONITORING_ALERT_EVAL_INTERVAL_MS: '200', MONITORING_ALERT_SEND_TIMEOUT_MS: '1000', MONITORING_LOG_LEVEL: 'warn' };

async function setUp(url: string, rx: string, project: string): Promise<void> {
  const ch = await call(url, 'POST', '/monitoring/channels', { body: { project_id: project, name: 'hook', type: 'webhook', config: { url: `${rx}/${project}` }, default: true } });
  expect(ch.status, JSON.stringify(ch.body)).toBe(201);
  for (const body of [
    { name: 'critical', kind: 'event', filter: { severity: 'critical' }, group_by: ['error_type'] },
    { name: 'new errors', kind: 'new_group' },
  ]) {
    const r = await call(url, 'POST', '/monitoring/alert-rules', { body: { project_id: project, channels: [ch.body.id], severity: 'critical', window_s: 3600, ...body } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
}

/** Notifications per alert group, by rule: each group must have exactly one. */
function perGroup(got: { path: string; notification: any }[], path: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const g of got) {
    if (g.path !== path) continue;
    const key = `${g.notification.rule_name}|${JSON.stringify(g.notification.labels)}`;
    if (!out.has(key)) out.set(key, new Set());
    out.get(key)!.add(g.notification.id);
  }
  return out;
}

describe('alerts survive a crash', () => {
  it('kill -9 right after the answers, and after the rules ran but before the checkpoint: every alert once', async () => {
    const rx = await receiver();
    for (const [project, failpoint] of [['pf_ac_answer', ''], ['pf_ac_observe', 'observer-after-observe:1']] as const) {
      const dir = tempDir();
      dirs.push(dir);
      const setup = await spawnEngine(dir, ENV);
      procs.push(setup.proc);
      await setUp(setup.url, rx.url, project);
      setup.proc.kill('SIGTERM');
      await exited(setup.proc);

      const a = await spawnEngine(dir, { ...ENV, ...(failpoint ? { MONITORING_FAILPOINT: failpoint } : {}) });
      procs.push(a.proc);
      // 20 critical events (20 `critical` groups), each also a new error (20 `new errors` groups)
      const acked: string[] = [];
      await Promise.all(Array.from({ length: 4 }, async (_, c) => {
        const events = Array.from({ length: 5 }, (_, i) => ({
          project_id: project, severity: 'critical', message: `boom ${c}-${i}`, error_type: `E${c}${i}`, stack: `Error: boom\n    at f${c}${i} (/app/x.js:1:1)`,
        }));
        const r = await call(a.url, 'POST', '/monitoring/logs', { body: events }).catch(() => undefined);
        if (r?.status === 200) acked.push(...events.map((e) => e.error_type));
      }));
      if (!failpoint) a.proc.kill('SIGKILL');
      await exited(a.proc);
      expect(a.proc.signalCode).toBe('SIGKILL');
      // killed right after the answers: all 20 answered; killed by the failpoint: at least the first request
      expect(acked.length).toBeGreaterThanOrEqual(failpoint ? 5 : 20);
      const want = 2 * acked.length;

      const b = await spawnEngine(dir, ENV);
      procs.push(b.proc);
      const path = `/${project}`;
      await until(`${want} alert groups of ${project}`, () => perGroup(rx.got, path).size >= want);
      // time for any second notification to show up
      await sleep(1500);
      const groups = perGroup(rx.got, path);
      // (events made durable but not answered before the kill may alert too)
      expect(groups.size).toBeGreaterThanOrEqual(want);
      expect([...groups.values()].filter((ids) => ids.size !== 1)).toEqual([]);
      for (const t of acked) expect(groups.has(`critical|${JSON.stringify({ error_type: t })}`), t).toBe(true);
      b.proc.kill('SIGTERM');
      await exited(b.proc);
    }
  }, 90_000);

  it('an engine-raised alert cut off before its answer is routed after the restart, and its retry is not routed again', async () => {
    const rx = await receiver();
    const dir = tempDir();
    dirs.push(dir);
    const project = 'pf_ac_route';
    const setup = await spawnEngine(dir, ENV);
    procs.push(setup.proc);
    const ch = await call(setup.url, 'POST', '/monitoring/channels', { body: { project_id: project, name: 'hook', type: 'webhook', config: { url: `${rx.url}/${project}` }, default: true } });
    expect(ch.status).toBe(201);
    setup.proc.kill('SIGTERM');
    await exited(setup.proc);
    // the alert is durable, then the process dies before routing it or answering
    const a = await spawnEngine(dir, { ...ENV, MONITORING_FAILPOINT: 'wal-after-fsync:1' });
    procs.push(a.proc);
    const alert = { id: 'alert-once-1', project_id: project, message: 'Vault key rotation failed', severity: 'critical', engine: 'vault' };
    const first = await call(a.url, 'POST', '/monitoring/alert', { body: alert }).catch((e: Error) => e);
    expect(first).toBeInstanceOf(Error);
    await exited(a.proc);
    const b = await spawnEngine(dir, ENV);
    procs.push(b.proc);
    await until('the replayed alert', () => rx.got.length >= 1);
    // the client retries (twice): same answer, no second routing
    for (let i = 0; i < 2; i++) {
      const again = await call(b.url, 'POST', '/monitoring/alert', { body: alert });
      expect(again.status).toBe(200);
      expect(again.body).toEqual({ id: 'alert-once-1', notified: true, channels: ['hook'] });
    }
    await sleep(1000);
    expect(rx.got.map((g) => g.notification.title)).toEqual([expect.stringContaining('Vault key rotation failed')]);
    // stored once (beside the audit record of the channel's creation)
    const stored = await call(b.url, 'GET', `/monitoring/logs?project_id=${project}`);
    expect(stored.body.logs.filter((l: any) => l.id === 'alert-once-1')).toHaveLength(1);
    b.proc.kill('SIGTERM');
    await exited(b.proc);
  }, 60_000);
});
