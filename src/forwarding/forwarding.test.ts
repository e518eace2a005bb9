// Forwarding against local receivers that check each format the way the real services do: the
// Sentry envelope parsed with @sentry/core's parser, Datadog's gzip body, DD-API-KEY and its limits.
// Through the outbox: 429/Retry-After and 5xx are retried, other 4xx fail for good, all recorded.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { parseEnvelope } from '@sentry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, removeDir, startEngine, type TestEngine } from '../../test/helpers.js';
import type { EventRow } from '../event.js';
import { DATADOG_LIMITS, datadogBodies } from './datadog.js';
import { parseStack } from './sentry.js';
import { parseDsn } from './config.js';

interface Received { path: string; headers: IncomingMessage['headers']; body: Buffer; at: number; status: number }
type Answer = (r: Received, n: number) => { status: number; headers?: Record<string, string> };

async function receiver(answer: Answer = () => ({ status: 200 })): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const r: Received = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks), at: Date.now(), status: 0 };
    got.push(r);
    const a = answer(r, got.length);
    r.status = a.status;
    res.writeHead(a.status, { 'content-type': 'application/json', ...(a.headers ?? {}) });
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, got,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

const waitFor = async (cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
};

let eng: TestEngine;
beforeAll(async () => { eng = await startEngine({ MONITORING_ALERT_RETRY_BASE_MS: '10' }); });
afterAll(async () => { await eng?.close(); if (eng) removeDir(eng.dataDir); });

const ingest = async (events: Record<string, unknown>[]) => {
  const r = await call(eng.url, 'POST', '/monitoring/logs', { body: events });
  expect(r.status).toBe(200);
};
const forwardingOf = async (p: string) => (await call(eng.url, 'GET', `/monitoring/projects/${p}/forwarding`)).body;

function thrown(): string {
  try {
    (function chargeCard() { throw new TypeError('card declined'); })();
  } catch (e) {
    return (e as Error).stack!;
  }
  return '';
}

describe('forwarding to Sentry', () => {
  it('an error event arrives as an envelope @sentry/core parses, with type, value, frames, user, tags and our fingerprint', async () => {
    const sentry = await receiver();
    const dsn = `${sentry.url.replace('://', '://abc123def@')}/42`;
    const put = await call(eng.url, 'PUT', '/monitoring/projects/fw_sentry/forwarding', { body: { sentry: { dsn, environment: 'prod' } } });
    expect(put.status).toBe(200);
    expect(JSON.stringify(put.body)).not.toContain('abc123def');
    const stack = thrown();
    await ingest([
      { project_id: 'fw_sentry', message: 'all good' }, // not an error: not forwarded
      { project_id: 'fw_sentry', event_type: 'error', error_type: 'TypeError', message: 'card declined', stack, user_id: 'u-7', engine: 'billing', attributes: { release: '1.4.2', order: 'o-1' } },
    ]);
    await waitFor(() => sentry.got.length === 1);
    const r = sentry.got[0];
    expect(r.path).toBe('/api/42/envelope/');
    expect(r.headers['content-type']).toBe('application/x-sentry-envelope');
    expect(r.headers['x-sentry-auth']).toMatch(/^Sentry sentry_version=7, sentry_key=abc123def, sentry_client=/);
    const [header, items] = parseEnvelope(new Uint8Array(r.body));
    expect(header).toMatchObject({ dsn });
    expect(items).toHaveLength(1);
    const [itemHeader, payload] = items[0] as [{ type: string; length: number }, Uint8Array];
    expect(itemHeader.type).toBe('event');
    // the item header's length framed the payload exactly (the parser read that many bytes)
    expect(payload.byteLength).toBe(itemHeader.length);
    const event = JSON.parse(Buffer.from(payload).toString('utf8'));
    const stored = (await call(eng.url, 'GET', '/monitoring/logs?project_id=fw_sentry&event_type=error')).body.logs[0];
    expect(event.event_id).toMatch(/^[0-9a-f]{32}$/);
    expect(header.event_id).toBe(event.event_id);
    expect(event).toMatchObject({
      platform: 'node', level: 'error', logger: 'billing', environment: 'prod', release: '1.4.2', user: { id: 'u-7' },
      fingerprint: [stored.fingerprint], tags: { project_id: 'fw_sentry', engine: 'billing' },
      extra: { order: 'o-1', puraify_event_id: stored.id },
    });
    expect(event.timestamp).toBeCloseTo(Date.parse(stored.timestamp) / 1000, 3);
    const ex = event.exception.values[0];
    expect(ex).toMatchObject({ type: 'TypeError', value: 'card declined' });
    const frames = ex.stacktrace.frames;
    expect(frames.at(-1)).toMatchObject({ function: 'chargeCard', in_app: true, filename: expect.stringContaining('forwarding.test.ts') });
    expect(frames.at(-1).lineno).toBeGreaterThan(0);
    await sentry.close();
  });

  it('500, then 429 with Retry-After: 1, then 200 → delivered once, after the wait; the status says so', async () => {
    const sentry = await receiver((_r, n) => (n === 1 ? { status: 500 } : n === 2 ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200 }));
    await call(eng.url, 'PUT', '/monitoring/projects/fw_retry/forwarding', { body: { sentry: { dsn: `${sentry.url.replace('://', '://k@')}/7` } } });
    await ingest([{ project_id: 'fw_retry', event_type: 'error', message: 'boom' }]);
    await waitFor(() => sentry.got.length === 3);
    expect(sentry.got.map((g) => g.status)).toEqual([500, 429, 200]);
    expect(sentry.got[2].at - sentry.got[1].at).toBeGreaterThanOrEqual(950);
    expect(new Set(sentry.got.map((g) => g.body.toString())).size).toBe(1); // the same envelope each time
    await waitFor(async () => (await forwardingOf('fw_retry')).status.sentry.delivered === 1);
    expect((await forwardingOf('fw_retry')).status.sentry).toMatchObject({ pending: 0, failed: 0, delivered: 1 });
    // delivered payloads are purged after a while, with their outbox rows
    expect(await eng.engine.forwarding.store.purgeDelivered(Date.now() + 1)).toBeGreaterThanOrEqual(1);
    expect((await forwardingOf('fw_retry')).status.sentry).toMatchObject({ pending: 0, failed: 0, delivered: 0 });
    const left = await eng.engine.meta.all<{ n: number }>("SELECT COUNT(*) AS n FROM alert_deliveries WHERE channel_type = 'forward_sentry' AND status = 'delivered'");
    expect(Number(left[0].n)).toBe(0);
    await sentry.close();
  });

  it('a 400 from Sentry fails for good, with the reason in the status', async () => {
    const sentry = await receiver(() => ({ status: 400 }));
    await call(eng.url, 'PUT', '/monitoring/projects/fw_bad/forwarding', { body: { sentry: { dsn: `${sentry.url.replace('://', '://k@')}/8` } } });
    await ingest([{ project_id: 'fw_bad', severity: 'critical', message: 'bad' }]);
    await waitFor(async () => (await forwardingOf('fw_bad')).status.sentry.failed === 1);
    expect(sentry.got).toHaveLength(1);
    expect((await forwardingOf('fw_bad')).status.sentry.last_error).toMatch(/HTTP 400/);
    await sentry.close();
  });
});

describe('forwarding to Datadog', () => {
  it('logs matching the filter go gzipped with DD-API-KEY, at most 1,000 entries a request', async () => {
    const dd = await receiver((_r, n) => (n === 1 ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 202 }));
    const apiKey = 'dd-key-0123456789abcdef';
    const put = await call(eng.url, 'PUT', '/monitoring/projects/fw_dd/forwarding', {
      body: { datadog: { api_key: apiKey, url: `${dd.url}/api/v2/logs`, filter: { severity: ['warning', 'high'] }, query: '-message:skip*', tags: 'env:test' } },
    });
    expect(put.status).toBe(200);
    expect(put.body.datadog.api_key).toBe('***ef');
    const events = [];
    for (let i = 0; i < 2500; i++) events.push({ project_id: 'fw_dd', engine: 'api', severity: i % 2 ? 'warning' : 'info', message: `m${i}`, attributes: { hostname: 'web-1' } });
    for (let i = 0; i < 5; i++) events.push({ project_id: 'fw_dd', engine: 'api', severity: 'warning', message: `skip ${i}` }); // the query leaves these out
    await ingest(events);
    await waitFor(async () => (await forwardingOf('fw_dd')).status.datadog.events_delivered === 1250);
    const ok = dd.got.filter((g) => g.status === 202);
    const entries = ok.flatMap((g) => {
      expect(g.path).toBe('/api/v2/logs');
      expect(g.headers['dd-api-key']).toBe(apiKey);
      expect(g.headers['content-encoding']).toBe('gzip');
      expect(g.headers['content-type']).toBe('application/json');
      const raw = gunzipSync(g.body);
      expect(raw.length).toBeLessThanOrEqual(DATADOG_LIMITS.maxBytes);
      const arr = JSON.parse(raw.toString());
      expect(arr.length).toBeLessThanOrEqual(1000);
      return arr;
    });
    expect(entries).toHaveLength(1250);
    expect(new Set(entries.map((e: any) => e.message)).size).toBe(1250);
    expect(entries[0]).toMatchObject({ ddsource: 'puraify', service: 'api', status: 'warning', hostname: 'web-1', ddtags: 'project_id:fw_dd,event_type:log,env:test' });
    expect(typeof entries[0].timestamp).toBe('number');
    // the 429 was retried after its Retry-After
    expect(dd.got[0].status).toBe(429);
    const retry = dd.got.find((g, i) => i > 0 && g.body.equals(dd.got[0].body))!;
    expect(retry.at - dd.got[0].at).toBeGreaterThanOrEqual(950);
    await dd.close();
  });

  it('request bodies stay within 5 MB: large entries split the batch by size', () => {
    const row = (i: number): EventRow => ({
      id: `id${i}`, timestamp: 1_750_000_000_000, received_at: 1_750_000_000_000, project_id: 'p', event_type: 'log', engine: 'e',
      triggered_by: '', flow_id: '', session_id: '', user_id: '', trace_id: '', span_id: '', platform: '', action: '', status: '',
      severity: 'info', error_type: '', message: 'x'.repeat(60_000), stack: '', duration_ms: null, retries: null, fingerprint: '',
      alert: 0, sampled: 0, attr_keys: [], attr_values: [],
    });
    const bodies = datadogBodies(Array.from({ length: 200 }, (_, i) => row(i)), { api_key: 'k' });
    expect(bodies.length).toBe(3);
    for (const b of bodies) expect(Buffer.byteLength(b.body)).toBeLessThanOrEqual(DATADOG_LIMITS.maxBytes);
    expect(bodies.reduce((n, b) => n + b.entries, 0)).toBe(200);
    expect(bodies.map((b) => JSON.parse(b.body).length)).toEqual(bodies.map((b) => b.entries));
  });
});

describe('forwarding API', () => {
  it('validates with named fields, never returns or audits a secret, keeps a secret sent back masked, deletes', async () => {
    const bad = await call(eng.url, 'PUT', '/monitoring/projects/fw_api/forwarding', {
      body: { sentry: { dsn: 'https://sentry.io/notadsn' }, datadog: { api_key: 'k', filter: { nope: 'x' }, query: 'status:(' } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.errors.map((e: any) => e.field).sort()).toEqual(['datadog.filter.nope', 'datadog.query', 'sentry.dsn']);
    const unknown = await call(eng.url, 'PUT', '/monitoring/projects/fw_api/forwarding', { body: { slack: {} } });
    expect(unknown.status).toBe(400);

    const dsn = 'https://secretpublickey@o1.ingest.example.com/99';
    const key = 'dd-secret-api-key-0042';
    expect((await call(eng.url, 'PUT', '/monitoring/projects/fw_api/forwarding', { body: { sentry: { dsn }, datadog: { api_key: key } } })).status).toBe(200);
    const got = await forwardingOf('fw_api');
    expect(got.sentry.dsn).toBe('https://***@o1.ingest.example.com/99');
    expect(got.datadog.api_key).toBe('***42');
    // send the masked view back with a change: the secrets stay
    expect((await call(eng.url, 'PUT', '/monitoring/projects/fw_api/forwarding', { body: { sentry: { ...got.sentry, enabled: false }, datadog: got.datadog } })).status).toBe(200);
    const stored = await eng.engine.forwarding.store.get('fw_api');
    expect(stored?.config).toEqual({ sentry: { dsn, enabled: false }, datadog: { api_key: key } });

    const audit = (await call(eng.url, 'GET', '/monitoring/logs?project_id=fw_api&event_type=audit')).body.logs;
    expect(audit.map((a: any) => a.action)).toEqual(['update_forwarding', 'update_forwarding']);
    expect(JSON.stringify(audit)).not.toContain('secretpublickey');
    expect(JSON.stringify(audit)).not.toContain(key);

    const scoped = await call(eng.url, 'POST', '/monitoring/keys', { body: { name: 'other', scopes: ['admin'], project_id: 'fw_other' } });
    expect((await call(eng.url, 'GET', '/monitoring/projects/fw_api/forwarding', { token: scoped.body.token })).status).toBe(403);
    expect((await call(eng.url, 'GET', '/monitoring/projects/fw_api/forwarding', { token: null })).status).toBe(401);

    expect((await call(eng.url, 'DELETE', '/monitoring/projects/fw_api/forwarding')).status).toBe(204);
    expect((await forwardingOf('fw_api'))).toMatchObject({ sentry: null, datadog: null, updated_at: null });
    expect((await call(eng.url, 'DELETE', '/monitoring/projects/fw_api/forwarding')).status).toBe(404);
  });
});

describe('format helpers', () => {
  it('DSNs: key, project and path prefix', () => {
    expect(parseDsn('https://k@o1.ingest.sentry.io/42')).toEqual({ envelopeUrl: 'https://o1.ingest.sentry.io/api/42/envelope/', publicKey: 'k', projectId: '42' });
    expect(parseDsn('http://k@host:9000/sentry/5')?.envelopeUrl).toBe('http://host:9000/sentry/api/5/envelope/');
    expect(parseDsn('https://host/42')).toBeUndefined();
    expect(parseDsn('https://k@host/abc')).toBeUndefined();
  });

  it('frames from Python and Java stacks, oldest call first', () => {
    const py = 'Traceback (most recent call last):\n  File "/app/main.py", line 3, in <module>\n    run()\n  File "/app/svc.py", line 9, in run\n    x()\nValueError: bad';
    expect(parseStack(py).platform).toBe('python');
    expect(parseStack(py).frames.map((f) => [f.filename, f.function, f.lineno])).toEqual([['/app/main.py', '<module>', 3], ['/app/svc.py', 'run', 9]]);
    const java = 'java.lang.IllegalStateException: x\n\tat com.acme.Svc.run(Svc.java:42)\n\tat com.acme.Main.main(Main.java:7)';
    expect(parseStack(java).platform).toBe('java');
    expect(parseStack(java).frames.map((f) => [f.module, f.function, f.lineno])).toEqual([['com.acme.Main', 'main', 7], ['com.acme.Svc', 'run', 42]]);
    expect(parseStack('no frames here')).toEqual({ frames: [], platform: 'other' });
  });
});
