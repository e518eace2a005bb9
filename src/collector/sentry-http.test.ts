// The Sentry receiver with the real @sentry/node (in its own process, configured only by the DSN the
// engine issues), and the wire details other SDKs use: X-Sentry-Auth, no Content-Type, chunked, gzip.
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { call, useEngine } from '../../test/helpers.js';
import { dsnProjectNumber, mapSentryEvent, mapSentryTransaction, parseEnvelope, renderStack } from './sentry.js';
import { normalizeStack } from '../aggregator/fingerprint.js';

const t = useEngine();
const logs = t.logs;

const createKey = t.key;

function runSentryClient(dsn: string): Promise<{ flushed: boolean; stack: string }> {
  const script = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'sentry-client.mjs');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, dsn], { timeout: 25_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

describe('@sentry/node against the engine', () => {
  it('captures an exception, a message and a transaction; fields mapped, grouped like a direct stack', async () => {
    const key = await createKey('pf_sentry');
    expect(key.dsn).toMatch(/^http:\/\/[0-9a-f]{32}@127\.0\.0\.1:\d+\/\d+$/);
    const viaApi = await call(t.url, 'GET', `/monitoring/keys/${key.id}/dsn`);
    expect(viaApi.status).toBe(200);
    expect(viaApi.body).toMatchObject({ dsn: key.dsn, project_id: 'pf_sentry' });

    const out = await runSentryClient(key.dsn);
    expect(out.flushed).toBe(true);
    const stored = await logs({ project_id: 'pf_sentry', engine: 'checkout' });
    const error = stored.find((e) => e.event_type === 'error');
    expect(error).toMatchObject({
      error_type: 'TypeError', message: 'card number invalid: 4242', severity: 'high', status: 'error', user_id: 'u-42',
      attributes: expect.objectContaining({ release: 'shop@1.2.3', environment: 'staging', region: 'eu-1', 'user.email': 'ada@example.com' }),
    });
    expect(error.stack).toContain('at chargeCard (');
    expect(error.attributes.breadcrumbs).toContain('added item sku-9');
    expect(error.id).toMatch(/^[0-9a-f]{32}$/);

    const message = stored.find((e) => e.message === 'checkout slow');
    expect(message).toMatchObject({ severity: 'warning', event_type: 'log', error_type: '' });

    const spans = await logs({ project_id: 'pf_sentry', event_type: 'span' });
    expect(spans.map((s) => s.action).sort()).toEqual(['POST /checkout', 'SELECT cart']);
    const [root, child] = [spans.find((s) => s.action === 'POST /checkout'), spans.find((s) => s.action === 'SELECT cart')];
    expect(root.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(child.trace_id).toBe(root.trace_id);
    expect(child.duration_ms).toBeGreaterThanOrEqual(20);
    expect(child.attributes).toMatchObject({ 'sentry.op': 'db.query', 'sentry.parent_span_id': root.span_id });
    expect(root).toMatchObject({ status: 'ok', user_id: 'u-42', attributes: expect.objectContaining({ release: 'shop@1.2.3', environment: 'staging' }) });
    // the trace reads by trace_id
    expect((await logs({ project_id: 'pf_sentry', trace_id: root.trace_id })).length).toBeGreaterThanOrEqual(2);

    // the same stack sent directly groups with the Sentry event
    const direct = await call(t.url, 'POST', '/monitoring/logs', { body: { project_id: 'pf_sentry', event_type: 'error', error_type: 'TypeError', message: 'card number invalid: 4242', stack: out.stack } });
    const again = await logs({ project_id: 'pf_sentry', id: direct.body.ids[0] });
    expect(again[0].fingerprint).toBe(error.fingerprint);
  }, 40_000);

  it('a revoked key kills its DSN; a key without ingest scope gets no DSN', async () => {
    const key = await createKey('pf_sentry_rev');
    const pub = key.dsn.slice('http://'.length, key.dsn.indexOf('@'));
    const num = dsnProjectNumber('pf_sentry_rev');
    const env = `{}\n{"type":"event"}\n${JSON.stringify({ message: 'hello', level: 'info' })}\n`;
    const ok = await call(t.url, 'POST', `/api/${num}/envelope/?sentry_key=${pub}`, { token: null, raw: env, contentType: 'text/plain' });
    expect(ok.status).toBe(200);
    expect((await call(t.url, 'DELETE', `/monitoring/keys/${key.id}`)).status).toBe(200);
    const after = await call(t.url, 'POST', `/api/${num}/envelope/?sentry_key=${pub}`, { token: null, raw: env, contentType: 'text/plain' });
    expect(after.status).toBe(401);
    const reader = await createKey('pf_sentry_rev', ['read']);
    expect(reader.dsn).toBeUndefined();
    expect((await call(t.url, 'GET', `/monitoring/keys/${reader.id}/dsn`)).status).toBe(409);
    // a DSN key only ingests
    const k2 = await createKey('pf_sentry_rev');
    const pub2 = k2.dsn.slice('http://'.length, k2.dsn.indexOf('@'));
    expect((await call(t.url, 'GET', '/monitoring/logs?project_id=pf_sentry_rev', { token: pub2 })).status).toBe(403);
    // the DSN's project must be the key's
    const wrong = await call(t.url, 'POST', `/api/${dsnProjectNumber('other')}/envelope/?sentry_key=${pub2}`, { token: null, raw: env });
    expect(wrong.status).toBe(403);
  });
});

describe('wire details', () => {
  const send = (path: string, chunks: Buffer[], headers: Record<string, string>) => new Promise<{ status: number; body: string }>((resolve, reject) => {
    const u = new URL(t.url + path);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c); // no Content-Length: chunked
    req.end();
  });

  it('X-Sentry-Auth, no Content-Type, chunked and gzip; sessions and client reports ignored; store/ too', async () => {
    const key = await createKey('pf_sentry_wire');
    const pub = key.dsn.slice('http://'.length, key.dsn.indexOf('@'));
    const num = dsnProjectNumber('pf_sentry_wire');
    const event = { event_id: 'a'.repeat(32), timestamp: 1764583200.5, platform: 'python', level: 'error', tags: { engine: 'worker' },
      exception: { values: [{ type: 'KeyError', value: "'sku'", stacktrace: { frames: [
        { filename: 'app/main.py', abs_path: '/app/main.py', function: 'run', lineno: 3 },
        { filename: 'app/cart.py', abs_path: '/app/cart.py', function: 'price', lineno: 41 },
      ] } }] } };
    const envelope = [
      JSON.stringify({ event_id: event.event_id, sent_at: new Date().toISOString() }),
      JSON.stringify({ type: 'session' }), JSON.stringify({ sid: 'x', status: 'ok' }),
      JSON.stringify({ type: 'event', length: Buffer.byteLength(JSON.stringify(event)) }), JSON.stringify(event),
      JSON.stringify({ type: 'client_report' }), JSON.stringify({ discarded_events: [] }),
    ].join('\n');
    const gz = gzipSync(envelope);
    const res = await send(`/api/${num}/envelope/`, [gz.subarray(0, 10), gz.subarray(10)], {
      'x-sentry-auth': `Sentry sentry_version=7, sentry_client=sentry.python/2.0.0, sentry_key=${pub}`, 'content-encoding': 'gzip',
    });
    expect(res.status, res.body).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ id: event.event_id });
    const stored = await logs({ project_id: 'pf_sentry_wire' });
    const e = stored.find((x) => x.engine === 'worker');
    expect(e).toMatchObject({ error_type: 'KeyError', message: "'sku'", timestamp: '2025-12-01T10:00:00.500Z', id: event.event_id });
    // a Python traceback sent directly groups with it
    const tb = 'Traceback (most recent call last):\n  File "/app/main.py", line 3, in run\n  File "/app/cart.py", line 41, in price\nKeyError: \'sku\'';
    const direct = await call(t.url, 'POST', '/monitoring/logs', { body: { project_id: 'pf_sentry_wire', error_type: 'KeyError', message: 'x', stack: tb, status: 'error' } });
    expect((await logs({ project_id: 'pf_sentry_wire', id: direct.body.ids[0] }))[0].fingerprint).toBe(e.fingerprint);
    // the same envelope again (an SDK retry) is not stored twice
    await send(`/api/${num}/envelope/`, [gz], { 'x-sentry-auth': `Sentry sentry_key=${pub}`, 'content-encoding': 'gzip' });
    expect((await logs({ project_id: 'pf_sentry_wire', engine: 'worker' }))).toHaveLength(1);

    const store = await send(`/api/${num}/store/?sentry_key=${pub}`, [Buffer.from(JSON.stringify({ message: 'via store', level: 'fatal' }))], {});
    expect(store.status, store.body).toBe(200);
    expect((await logs({ project_id: 'pf_sentry_wire', severity: 'critical' }))[0].message).toBe('via store');
    const noAuth = await send(`/api/${num}/store/`, [Buffer.from('{}')], {});
    expect(noAuth.status).toBe(401);
    const broken = await send(`/api/${num}/envelope/?sentry_key=${pub}`, [Buffer.from('{"event_id":')], {});
    expect(broken.status).toBe(400);
  });
});

describe('mapping', () => {
  it('renders frames in each platform\'s own form so normalizeStack reads the same frames', () => {
    const frames = [{ abs_path: '/app/a.js', function: 'outer', lineno: 1, colno: 2 }, { abs_path: '/app/b.js', function: 'inner', lineno: 3, colno: 4 }];
    expect(normalizeStack(renderStack('node', 'Error', 'x', frames))).toEqual(['inner@b.js', 'outer@a.js']);
    expect(normalizeStack(renderStack('python', 'KeyError', 'x', [{ abs_path: '/app/a.py', function: 'outer', lineno: 1 }, { abs_path: '/app/b.py', function: 'inner', lineno: 2 }])))
      .toEqual(['inner@b.py', 'outer@a.py']);
    expect(normalizeStack(renderStack('java', 'java.lang.IllegalStateException', 'x', [
      { module: 'com.shop.Main', function: 'main', filename: 'Main.java', lineno: 5 }, { module: 'com.shop.Cart', function: 'total', filename: 'Cart.java', lineno: 9 },
    ]))).toEqual(['Cart.total@Cart.java', 'Main.main@Main.java']);
    const javaDirect = 'java.lang.IllegalStateException: x\n\tat com.shop.Cart.total(Cart.java:9)\n\tat com.shop.Main.main(Main.java:5)';
    expect(normalizeStack(javaDirect)).toEqual(['Cart.total@Cart.java', 'Main.main@Main.java']);
  });

  it('parses envelopes with and without lengths, and names a broken one', () => {
    const payload = Buffer.from('{"a":"line\\nbreak"}');
    const env = Buffer.concat([Buffer.from(`{"event_id":"x"}\n{"type":"attachment","length":${payload.length}}\n`), payload, Buffer.from('\n{"type":"event"}\n{"message":"m"}\n')]);
    const p = parseEnvelope(env);
    if (!p.ok) throw new Error(p.error.message);
    expect(p.items.map((i) => [i.header.type, i.payload.toString()])).toEqual([['attachment', '{"a":"line\\nbreak"}'], ['event', '{"message":"m"}']]);
    expect(parseEnvelope(Buffer.from('{}\n{"type":"event","length":99}\n{}'))).toMatchObject({ ok: false, error: { field: 'item 0' } });
    expect(parseEnvelope(Buffer.from('nope'))).toMatchObject({ ok: false, error: { field: 'envelope header' } });
  });

  it('maps a transaction (the format SDKs before span streaming send) into span events', () => {
    const ev = mapSentryTransaction({
      type: 'transaction', event_id: 'b'.repeat(32), transaction: 'GET /cart', start_timestamp: 1764583200, timestamp: 1764583200.25,
      contexts: { trace: { trace_id: 'T1', span_id: 'S1', op: 'http.server', status: 'internal_error' } }, tags: { engine: 'api' },
      spans: [{ span_id: 'S2', parent_span_id: 'S1', trace_id: 'T1', op: 'db', description: 'SELECT 1', start_timestamp: 1764583200.1, timestamp: 1764583200.2, status: 'deadline_exceeded' }],
    }, 'p');
    expect(ev).toEqual([
      { project_id: 'p', engine: 'api', trace_id: 't1', span_id: 's1', event_type: 'span', status: 'error', action: 'GET /cart', timestamp: 1764583200000, duration_ms: 250, id: 'b'.repeat(32),
        attributes: { transaction: 'GET /cart', 'sentry.op': 'http.server' } },
      { project_id: 'p', event_type: 'span', status: 'timeout', engine: 'api', action: 'SELECT 1', trace_id: 't1', span_id: 's2', timestamp: 1764583200100, duration_ms: 100,
        attributes: { 'sentry.op': 'db', 'sentry.parent_span_id': 'S1' } },
    ]);
  });

  it('maps user, tags, contexts, logentry and custom fingerprints', () => {
    const e = mapSentryEvent({
      logentry: { message: 'user %s failed', formatted: 'user 7 failed' }, level: 'warning', user: { username: 'ada' },
      tags: [['engine', 'api'], ['k', 'v']], contexts: { os: { name: 'Linux' }, trace: { trace_id: 'ABC', span_id: 'DEF' } },
      fingerprint: ['db', 'timeout'], environment: 'prod',
    }, 'p');
    expect(e).toEqual({
      project_id: 'p', engine: 'api', user_id: 'ada', trace_id: 'abc', span_id: 'def', fingerprint: 'db|timeout', severity: 'warning', message: 'user 7 failed',
      attributes: { k: 'v', 'user.username': 'ada', environment: 'prod', 'contexts.os.name': 'Linux' },
    });
  });
});
