// A crash between enqueueing a forwarding and moving the observer's place: the engine (its own
// process) is killed by the `observer-after-observe` failpoint right after the payloads are in the
// outbox, and on restart the log's observer feeds the same rows again. Each event must reach Sentry
// and Datadog once, with the same event id, and the outbox must hold one payload per target.
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { parseEnvelope } from '@sentry/core';
import { afterAll, describe, expect, it } from 'vitest';
import { call, removeDir, spawnEngine, tempDir, until } from '../../test/helpers.js';
import { payloadId } from './service.js';
import { sentryEventId } from './sentry.js';

const procs: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const d of dirs) removeDir(d);
});
const exited = (p: ChildProcess): Promise<void> =>
  (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r())));

async function receiver(): Promise<{ url: string; bodies: { path: string; body: Buffer; gzip: boolean }[]; close(): Promise<void> }> {
  const bodies: { path: string; body: Buffer; gzip: boolean }[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    bodies.push({ path: req.url ?? '', body: Buffer.concat(chunks), gzip: req.headers['content-encoding'] === 'gzip' });
    res.writeHead(202, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

describe('forwarding replayed after a crash', () => {
  it('payload ids are derived from the events, not random', () => {
    expect(payloadId('sentry', 'p', ['a'])).toBe(payloadId('sentry', 'p', ['a']));
    expect(payloadId('sentry', 'p', ['a'])).not.toBe(payloadId('datadog', 'p', ['a']));
    expect(payloadId('datadog', 'p', ['a', 'b'])).not.toBe(payloadId('datadog', 'p', ['a']));
    expect(payloadId('sentry', 'p', ['a'])).not.toBe(payloadId('sentry', 'q', ['a']));
  });

  it('killed after the outbox write, before the observer moved on: one payload per target, sent once', async () => {
    const target = await receiver();
    const dir = tempDir('pm-fwd-replay-');
    dirs.push(dir);
    const env = { MONITORING_ALLOW_PRIVATE_WEBHOOKS: 'true', MONITORING_ALERT_RETRY_BASE_MS: '50' };
    const project = 'fw_replay';
    const forwarding = {
      sentry: { dsn: `${target.url.replace('://', '://replaykey@')}/7` },
      datadog: { api_key: 'dd-key-123', url: `${target.url}/api/v2/logs`, filter: {} },
    };

    // 1. configure forwarding on a clean run, then stop
    const a = await spawnEngine(dir, env);
    procs.push(a.proc);
    expect((await call(a.url, 'PUT', `/monitoring/projects/${project}/forwarding`, { body: forwarding })).status).toBe(200);
    a.proc.kill('SIGTERM');
    await exited(a.proc);

    // 2. the first observed batch kills the process right after its payloads are committed
    const b = await spawnEngine(dir, { ...env, MONITORING_FAILPOINT: 'observer-after-observe:1' });
    procs.push(b.proc);
    const sent = await call(b.url, 'POST', '/monitoring/logs', { body: [
      { id: 'evt-replay-1', project_id: project, event_type: 'error', error_type: 'TypeError', message: 'boom', stack: 'TypeError: boom\n    at f (/app/a.js:1:1)' },
    ] }).catch(() => undefined);
    expect(sent?.status ?? 200).toBe(200); // answered once durable; the kill may come before the answer is read
    await exited(b.proc);
    expect(b.proc.signalCode).toBe('SIGKILL');

    // 3. restart: the observer replays the same record
    const c = await spawnEngine(dir, env);
    procs.push(c.proc);
    const status = async () => (await call(c.url, 'GET', `/monitoring/projects/${project}/forwarding`)).body;
    await until('both targets delivered', async () => {
      const s = await status();
      return s.status?.sentry?.delivered >= 1 && s.status?.datadog?.delivered >= 1 && s;
    }, 20_000);
    // the replay (and a grace period for a second copy to be sent) has passed once the stored event is read
    expect((await call(c.url, 'GET', `/monitoring/logs?project_id=${project}&id=evt-replay-1`)).body.logs).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1500));
    const s = await status();
    expect(s.status.sentry).toMatchObject({ pending: 0, delivered: 1, failed: 0, events_delivered: 1 });
    expect(s.status.datadog).toMatchObject({ pending: 0, delivered: 1, failed: 0, events_delivered: 1 });

    const envelopes = target.bodies.filter((x) => x.path === '/api/7/envelope/');
    const datadog = target.bodies.filter((x) => x.path === '/api/v2/logs');
    expect(envelopes).toHaveLength(1);
    expect(datadog).toHaveLength(1);
    const [header] = parseEnvelope(new Uint8Array(envelopes[0].body));
    expect(header.event_id).toBe(sentryEventId('evt-replay-1'));
    const entries = JSON.parse(gunzipSync(datadog[0].body).toString('utf8'));
    expect(entries.map((e: any) => e.puraify.id)).toEqual(['evt-replay-1']);

    c.proc.kill('SIGTERM');
    await exited(c.proc);
    await target.close();
  }, 90_000);
});
