// Forwarding targets pass the alert channels' URL guard: a private, loopback, link-local or metadata
// endpoint is a 400 naming the field when saved, is refused again at send time without a
// connection (a target stored before the check, or a name that resolves elsewhere now), and the
// send connects to the address that was checked, not to a second resolution (DNS rebinding).
// MONITORING_ALLOW_PRIVATE_WEBHOOKS is off here (an engine of its own: chDB allows one per process);
// the other forwarding tests turn it on for their loopback receivers.
import dns from 'node:dns';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { call, removeDir, startEngine, type TestEngine } from '../../test/helpers.js';

let eng: TestEngine;
beforeAll(async () => { eng = await startEngine({ MONITORING_ALLOW_PRIVATE_WEBHOOKS: 'false', MONITORING_ALERT_SEND_TIMEOUT_MS: '500' }); });
afterAll(async () => { await eng?.close(); if (eng) removeDir(eng.dataDir); });
afterEach(() => { vi.restoreAllMocks(); });

/** A loopback receiver that counts connections and requests. */
async function receiver(): Promise<{ port: number; connections: () => number; requests: () => number; close(): Promise<void> }> {
  let connections = 0;
  let requests = 0;
  const server: Server = createServer((_req, res) => { requests++; res.end(); });
  server.on('connection', () => { connections++; });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    port, connections: () => connections, requests: () => requests,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

const statusOf = async (project: string) => (await call(eng.url, 'GET', `/monitoring/projects/${project}/forwarding`)).body.status.sentry;
async function firstAttempt(project: string): Promise<{ failed: number; pending: number; last_error: string | null }> {
  const end = Date.now() + 10_000;
  for (;;) {
    const s = await statusOf(project);
    if (s.last_error !== null || s.delivered > 0) return s;
    if (Date.now() > end) throw new Error(`no attempt: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const REFUSED: [what: string, body: Record<string, unknown>, field: string][] = [
  ['a Sentry DSN on 127.0.0.1', { sentry: { dsn: 'http://k@127.0.0.1:9000/1' } }, 'sentry.dsn'],
  ['a Sentry DSN on the metadata address', { sentry: { dsn: 'http://k@169.254.169.254/1' } }, 'sentry.dsn'],
  ['a Sentry DSN on 0x7f000001', { sentry: { dsn: 'http://k@0x7f000001/1' } }, 'sentry.dsn'],
  ['a Sentry DSN on localhost', { sentry: { dsn: 'http://k@localhost:9000/1' } }, 'sentry.dsn'],
  ['a Datadog URL on the metadata address', { datadog: { api_key: 'dd', url: 'http://169.254.169.254/api/v2/logs' } }, 'datadog.url'],
  ['a Datadog URL on 10.x', { datadog: { api_key: 'dd', url: 'https://10.0.0.1/api/v2/logs' } }, 'datadog.url'],
  ['a Datadog URL on IPv6-mapped loopback', { datadog: { api_key: 'dd', url: 'http://[::ffff:127.0.0.1]/x' } }, 'datadog.url'],
];

it.each(REFUSED)('refuses %s when saved: 400 naming the field, nothing stored', async (_what, body, field) => {
  const put = await call(eng.url, 'PUT', '/monitoring/projects/fw_put/forwarding', { body });
  expect(put.status, JSON.stringify(put.body)).toBe(400);
  expect(put.body.error.details.errors.map((e: { field: string }) => e.field)).toEqual([field]);
  const now = await call(eng.url, 'GET', '/monitoring/projects/fw_put/forwarding');
  expect(now.body.updated_at).toBeNull();
});

it('a public endpoint is saved (never sent to here), and the default Datadog intake is not resolved at save', async () => {
  const put = await call(eng.url, 'PUT', '/monitoring/projects/fw_pub/forwarding', { body: { sentry: { dsn: 'https://k@8.8.8.8/1', enabled: false }, datadog: { api_key: 'dd', enabled: false } } });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
});

it('a stored DSN on 127.0.0.1 (saved before the check) fails for good as "target refused"; nothing reaches the receiver', async () => {
  const rx = await receiver();
  try {
    // straight into the store: the API would refuse it now
    await eng.engine.forwarding.store.put('fw_ssrf', { sentry: { dsn: `http://k@127.0.0.1:${rx.port}/1` }, datadog: null }, 'test', Date.now());
    await eng.engine.forwarding.reload();
    expect((await call(eng.url, 'POST', '/monitoring/logs', { body: { project_id: 'fw_ssrf', event_type: 'error', message: 'x' } })).status).toBe(200);
    const s = await firstAttempt('fw_ssrf');
    expect(s.failed).toBe(1);
    expect(s.last_error).toMatch(/target refused/);
    expect(rx.connections()).toBe(0);
  } finally {
    await rx.close();
  }
});

it('connects to the address checked, not to what the name resolves to at connect time (DNS rebinding)', async () => {
  const rx = await receiver();
  const NAME = 'sentry.rebind.test';
  // the guard's resolution answers a public address; any later resolution answers loopback, where
  // the receiver listens: a sender that resolves again would deliver there
  const PUBLIC = '2001:4860:4860::8888';
  const realPromisesLookup = dns.promises.lookup.bind(dns.promises);
  vi.spyOn(dns.promises, 'lookup').mockImplementation((async (host: string, opts: any) => {
    if (host === NAME) return opts?.all ? [{ address: PUBLIC, family: 6 }] : { address: PUBLIC, family: 6 };
    return realPromisesLookup(host, opts);
  }) as typeof dns.promises.lookup);
  const realLookup = dns.lookup;
  const rebound: string[] = [];
  vi.spyOn(dns, 'lookup').mockImplementation(((host: string, opts: any, cb?: any) => {
    if (typeof opts === 'function') { cb = opts; opts = {}; }
    if (host !== NAME) return realLookup(host, opts, cb);
    rebound.push(host);
    if (opts?.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
    else cb(null, '127.0.0.1', 4);
  }) as typeof dns.lookup);
  try {
    const put = await call(eng.url, 'PUT', '/monitoring/projects/fw_rebind/forwarding', { body: { sentry: { dsn: `http://k@${NAME}:${rx.port}/1` } } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect((await call(eng.url, 'POST', '/monitoring/logs', { body: { project_id: 'fw_rebind', event_type: 'error', message: 'x' } })).status).toBe(200);
    const s = await firstAttempt('fw_rebind');
    // the attempt went to the public address (unreachable or timed out here), never to loopback
    expect(s.last_error).not.toMatch(/target refused/);
    expect(rebound).toEqual([]);
    expect(rx.connections()).toBe(0);
  } finally {
    await rx.close();
    await eng.engine.forwarding.store.remove('fw_rebind');
    await eng.engine.forwarding.reload();
  }
});
