// The outbox survives kill -9: a notification whose receiver is down while the engine is killed is
// delivered after the restart, exactly once, and a delivered one is never sent again.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { call, removeDir, sleep, spawnEngine, tempDir, until } from '../../test/helpers.js';

/** A restarted engine process takes a while: waits here are longer than the helper's default. */
const SLOW_MS = 15_000;

const ENV = {
  MONITORING_ALERT_EVAL_INTERVAL_MS: '200',
  MONITORING_ALERT_RETRY_BASE_MS: '200',
  MONITORING_ALERT_SEND_TIMEOUT_MS: '1000',
  MONITORING_ALLOW_PRIVATE_WEBHOOKS: 'true',
  MONITORING_LOG_LEVEL: 'warn',
};

function kill9(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}

const received: { id: string; at: number }[] = [];
const receiver = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    received.push({ id: String(req.headers['x-puraify-notification-id']), at: Date.now() });
    res.writeHead(204).end();
  });
});

const dir = tempDir('pm-alert-restart-');
const procs: ChildProcess[] = [];
afterAll(async () => {
  for (const p of procs) await kill9(p);
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(() => r(undefined)));
  removeDir(dir);
});

describe('outbox across kill -9', () => {
  it('a receiver that is down while the engine is killed gets its notification after the restart, once', async () => {
    // a port nobody listens on yet: the receiver is down
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    await new Promise((r) => receiver.close(r));

    const a = await spawnEngine(dir, ENV);
    procs.push(a.proc);
    const ch = await call(a.url, 'POST', '/monitoring/channels', { body: { project_id: 'pf_kill', name: 'hook', type: 'webhook', config: { url: `http://127.0.0.1:${port}/hook` } } });
    expect(ch.status).toBe(201);
    const rule = await call(a.url, 'POST', '/monitoring/alert-rules', { body: { name: 'kill', project_id: 'pf_kill', kind: 'event', channels: [ch.body.id], severity: 'critical' } });
    expect(rule.status).toBe(201);
    expect((await call(a.url, 'POST', '/monitoring/logs', { body: { project_id: 'pf_kill', status: 'error', message: 'before the crash' } })).status).toBe(200);

    const failing = await until('a failed attempt', async () => {
      const r = await call(a.url, 'GET', '/monitoring/alerts?project_id=pf_kill');
      const d = r.body.alerts[0]?.deliveries[0];
      return d && d.attempts >= 1 && d.last_error ? r.body.alerts[0] : undefined;
    }, SLOW_MS);
    // pending (waiting for its next attempt) or sending (killed mid-attempt): both must survive the kill
    expect(['pending', 'sending']).toContain(failing.deliveries[0].status);
    expect(failing.deliveries[0].last_error).toMatch(/ECONNREFUSED|network error/);
    await kill9(a.proc);

    await new Promise<void>((r) => receiver.listen(port, '127.0.0.1', r));
    const b = await spawnEngine(dir, ENV);
    procs.push(b.proc);
    await until('the delivery after the restart', () => received.length >= 1, SLOW_MS);
    const delivered = await until('the delivered record', async () => {
      const r = await call(b.url, 'GET', '/monitoring/alerts?project_id=pf_kill');
      return r.body.alerts[0]?.deliveries[0]?.status === 'delivered' ? r.body.alerts[0] : undefined;
    }, SLOW_MS);
    expect(delivered.id).toBe(failing.id);
    expect(delivered.deliveries[0].attempts).toBeGreaterThanOrEqual(2);
    expect(received.map((x) => x.id)).toEqual([failing.id]);

    // a delivered notification is not sent again by the next life of the engine
    await kill9(b.proc);
    const c = await spawnEngine(dir, ENV);
    procs.push(c.proc);
    await sleep(1000);
    expect(received).toHaveLength(1);
    const after = await call(c.url, 'GET', '/monitoring/alerts?project_id=pf_kill');
    expect(after.body.alerts).toHaveLength(1);
    await kill9(c.proc);
  });

  it('a delivery cut off mid-send by kill -9 is sent as soon as its node is back, not when its lease expires', async () => {
    // a receiver that takes the request and never answers: the attempt is in flight when the engine dies
    let hung = 0;
    const hang = http.createServer(() => void hung++);
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const port = (hang.address() as AddressInfo).port;
    const got: number[] = [];
    const answering = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        got.push(Date.now());
        res.writeHead(204).end();
      });
    });
    const d = tempDir('pm-alert-lease-');
    // the lease of an attempt outlives twice its timeout: 2 × 20 s + 5 s
    const env = { ...ENV, MONITORING_ALERT_SEND_TIMEOUT_MS: '20000' };
    try {
      const a = await spawnEngine(d, env);
      procs.push(a.proc);
      const ch = await call(a.url, 'POST', '/monitoring/channels', { body: { project_id: 'pf_lease', name: 'hook', type: 'webhook', config: { url: `http://127.0.0.1:${port}/hook` } } });
      await call(a.url, 'POST', '/monitoring/alert-rules', { body: { name: 'lease', project_id: 'pf_lease', kind: 'event', channels: [ch.body.id], severity: 'critical' } });
      expect((await call(a.url, 'POST', '/monitoring/logs', { body: { project_id: 'pf_lease', status: 'error', message: 'mid-send' } })).status).toBe(200);
      await until('the attempt in flight', () => hung >= 1, SLOW_MS);
      await kill9(a.proc);
      const killedAt = Date.now();
      hang.closeAllConnections();
      await new Promise((r) => hang.close(r));
      await new Promise<void>((r) => answering.listen(port, '127.0.0.1', r));

      const b = await spawnEngine(d, env);
      procs.push(b.proc);
      await until('the delivery after the restart', () => got.length >= 1, 30_000);
      // the dead run's lease would have held it until killedAt + ~45 s
      expect(got[0] - killedAt).toBeLessThan(20_000);
      await sleep(500);
      expect(got).toHaveLength(1);
      await kill9(b.proc);
    } finally {
      answering.closeAllConnections();
      await new Promise((r) => answering.close(() => r(undefined)));
      removeDir(d);
    }
  }, 90_000);
});
