// Limits a hostile or broken client runs into: per-key request and event budgets (429 +
// Retry-After), slow request bodies and headers (408 / closed), the query concurrency cap (429)
// and the query time limit (503). Never a 500.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { ADMIN_TOKEN, call, removeDir, spawnEngine, startEngine, tempDir, type TestEngine } from '../../test/helpers.js';
import type { Scope } from './principal.js';

let t: TestEngine;
beforeAll(async () => {
  t = await startEngine({
    MONITORING_RATE_LIMIT_REQUESTS: '5',
    MONITORING_RATE_LIMIT_EVENTS: '50',
    MONITORING_REQUEST_TIMEOUT_MS: '500',
    MONITORING_MAX_CONCURRENT_QUERIES: '2',
    MONITORING_QUERY_TIMEOUT_MS: '1000', // short, for the time-limit tests; long enough for a loaded machine's ordinary queries
  });
});
afterAll(async () => {
  await t.close();
});

async function key(opts: { scopes?: Scope[]; requests_per_minute?: number | null; events_per_minute?: number | null } = {}) {
  const { key, token } = await t.engine.keys.create({
    name: 'limits', scopes: opts.scopes ?? ['ingest', 'read'], project_id: 'pf_limits',
    requests_per_minute: opts.requests_per_minute, events_per_minute: opts.events_per_minute,
  });
  return { id: key.id, token };
}

const events = (n: number) => Array.from({ length: n }, (_, i) => ({ project_id: 'pf_limits', message: `e${i}` }));

function expectLimited(r: { status: number; body: any; headers: Headers }, code = 'rate_limited') {
  expect(r.status).toBe(429);
  expect(r.body.error.code).toBe(code);
  expect(typeof r.body.error.message).toBe('string');
  const after = Number(r.headers.get('retry-after'));
  expect(Number.isInteger(after) && after >= 1).toBe(true);
  return after;
}

describe('per-key request budget', () => {
  // a route that reads no storage: this engine's 1 s query limit (for the test of it below) must
  // not turn a slow moment of a loaded machine into a 503 here

  it('answers 429 with Retry-After once a key used its default requests/minute; other keys are not affected', async () => {
    const a = await key();
    const b = await key();
    for (let i = 0; i < 5; i++) expect((await call(t.url, 'GET', '/monitoring/whoami', { token: a.token })).status).toBe(200);
    const r = await call(t.url, 'GET', '/monitoring/whoami', { token: a.token });
    const after = expectLimited(r);
    expect(after).toBe(12); // 5/min: one request every 12 s
    expect(r.body.error.details.limit_per_minute).toBe(5);
    // ingest counts as a request too
    expectLimited(await call(t.url, 'POST', '/monitoring/logs', { token: a.token, body: events(1) }));
    expect((await call(t.url, 'GET', '/monitoring/whoami', { token: b.token })).status).toBe(200);
    // a bad key or a missing scope is answered before the budget is touched
    expect((await call(t.url, 'GET', '/monitoring/whoami', { token: 'pm_nope' })).status).toBe(401);
  });

  it('uses the key\'s own limit (0 = unlimited); a PATCH takes effect at once', async () => {
    const free = await key({ requests_per_minute: 0 });
    for (let i = 0; i < 20; i++) expect((await call(t.url, 'GET', '/monitoring/whoami', { token: free.token })).status).toBe(200);
    const two = await key({ requests_per_minute: 2 });
    for (let i = 0; i < 2; i++) expect((await call(t.url, 'GET', '/monitoring/whoami', { token: two.token })).status).toBe(200);
    expect(expectLimited(await call(t.url, 'GET', '/monitoring/whoami', { token: two.token }))).toBe(30);
    const p = await call(t.url, 'PATCH', `/monitoring/keys/${two.id}`, { body: { requests_per_minute: 0 } });
    expect(p.status).toBe(200);
    expect((await call(t.url, 'GET', '/monitoring/whoami', { token: two.token })).status).toBe(200);
  });

  it('leaves the admin token unlimited unless configured', async () => {
    for (let i = 0; i < 20; i++) expect((await call(t.url, 'GET', '/monitoring/whoami')).status).toBe(200);
  });
});

describe('per-key event budget', () => {
  it('counts events, not requests: 429 + Retry-After once the events/minute are used', async () => {
    const k = await key({ requests_per_minute: 0, events_per_minute: 10 });
    const ok = await call(t.url, 'POST', '/monitoring/logs', { token: k.token, body: events(10) });
    expect(ok.status).toBe(200);
    const r = await call(t.url, 'POST', '/monitoring/logs', { token: k.token, body: events(1) });
    expect(expectLimited(r)).toBe(6);
    expect(r.body.error.message).toMatch(/events/);
    // nothing of the refused request was stored
    const stored = await call(t.url, 'GET', '/monitoring/logs?project_id=pf_limits&limit=1000');
    expect(stored.body.logs.filter((l: any) => l.message === 'e0').length).toBeGreaterThanOrEqual(1);
  });

  it('applies the configured default (50/min) to keys without their own; admin unlimited', async () => {
    const k = await key({ requests_per_minute: 0 });
    expect((await call(t.url, 'POST', '/monitoring/logs', { token: k.token, body: events(50) })).status).toBe(200);
    expectLimited(await call(t.url, 'POST', '/monitoring/logs', { token: k.token, body: events(1) }));
    for (let i = 0; i < 3; i++) {
      expect((await call(t.url, 'POST', '/monitoring/logs', { body: events(100) })).status).toBe(200);
    }
  });
});

describe('a key grants only what it holds', () => {
  it('a project admin key cannot lift its own limits, nor another key\'s above its own, nor create a looser key', async () => {
    const admin = await key({ scopes: ['admin'], requests_per_minute: 100, events_per_minute: 40 });
    const other = await key({ requests_per_minute: 10 });
    const patch = (id: string, body: unknown) => call(t.url, 'PATCH', `/monitoring/keys/${id}`, { token: admin.token, body });
    // unlimited (0) is above any finite limit; so is a number above its own
    for (const body of [{ requests_per_minute: 0 }, { requests_per_minute: 101 }, { events_per_minute: 0 }, { events_per_minute: 41 }]) {
      for (const id of [admin.id, other.id]) {
        const r = await patch(id, body);
        expect(r.status, JSON.stringify(body)).toBe(403);
        expect(r.body.error.details.errors[0].field).toBe(Object.keys(body)[0]);
      }
    }
    // null means the engine default: 5 requests / 50 events a minute here, above its own 40 events
    expect((await patch(other.id, { events_per_minute: null })).status).toBe(403);
    expect((await patch(other.id, { requests_per_minute: null })).status).toBe(200);
    expect((await patch(other.id, { requests_per_minute: 100, events_per_minute: 40 })).status).toBe(200);
    expect((await patch(admin.id, { requests_per_minute: 50 })).status).toBe(200);
    expect((await t.engine.keys.get(admin.id))!.requests_per_minute).toBe(50);
    const create = (body: Record<string, unknown>) => call(t.url, 'POST', '/monitoring/keys', {
      token: admin.token, body: { name: 'child', scopes: ['ingest'], project_id: 'pf_limits', events_per_minute: 40, ...body },
    });
    expect((await create({ requests_per_minute: 0 })).status).toBe(403);
    expect((await create({ requests_per_minute: 51 })).status).toBe(403);
    expect((await create({ events_per_minute: null })).status).toBe(403);
    expect((await create({ requests_per_minute: 50 })).status).toBe(201);
    // the admin token holds everything
    expect((await call(t.url, 'PATCH', `/monitoring/keys/${other.id}`, { body: { requests_per_minute: 0 } })).status).toBe(200);
    // an ingest key cannot reach the keys API at all
    const ingestOnly = await key({ scopes: ['ingest'] });
    expect((await call(t.url, 'POST', '/monitoring/keys', { token: ingestOnly.token, body: { name: 'x', scopes: ['admin'], project_id: 'pf_limits' } })).status).toBe(403);
  });

  it('charges POST /monitoring/alert and POST /v1/logs to the events budget', async () => {
    const k = await key({ requests_per_minute: 0, events_per_minute: 2 });
    const alert = () => call(t.url, 'POST', '/monitoring/alert', { token: k.token, body: { project_id: 'pf_limits', message: 'raised' } });
    expect((await alert()).status).toBe(200);
    expect((await alert()).status).toBe(200);
    expectLimited(await alert());
    const otlp = await key({ requests_per_minute: 0, events_per_minute: 1 });
    const logs = { resourceLogs: [{ resource: { attributes: [{ key: 'puraify.project_id', value: { stringValue: 'pf_limits' } }] }, scopeLogs: [{ logRecords: [{ body: { stringValue: 'a' } }, { body: { stringValue: 'b' } }] }] }] };
    expect((await call(t.url, 'POST', '/v1/logs', { token: otlp.token, body: logs })).status).toBe(200);
    // OTLP answers in its own shape: a google.rpc.Status (RESOURCE_EXHAUSTED, with RetryInfo)
    const limited = await call(t.url, 'POST', '/v1/logs', { token: otlp.token, body: logs });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.body).toMatchObject({ code: 8, details: [{ reason: 'rate_limited' }, { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${limited.headers.get('retry-after')}s` }] });
  });
});

/** Opens a raw connection, writes `head`, then trickles `trickle` one byte every `everyMs`. */
function slowClient(port: number, head: string, trickle: string, everyMs: number): Promise<{ response: string; ms: number; closed: boolean }> {
  return new Promise((resolve) => {
    const start = Date.now();
    const sock = connect(port, '127.0.0.1');
    let response = '';
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = (closed: boolean) => {
      clearInterval(timer);
      sock.destroy();
      resolve({ response, ms: Date.now() - start, closed });
    };
    sock.on('connect', () => {
      sock.write(head);
      timer = setInterval(() => {
        if (i < trickle.length && sock.writable) sock.write(trickle[i++]);
      }, everyMs);
    });
    sock.on('data', (d) => (response += d.toString()));
    sock.on('close', () => done(true));
    sock.on('error', () => undefined);
    setTimeout(() => done(false), 8000);
  });
}

describe('slow clients', () => {
  const port = () => Number(new URL(t.url).port);
  const body = JSON.stringify(events(20));

  it('cuts off a client that sends headers, then trickles the body (408, connection closed)', async () => {
    const head = `POST /monitoring/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const r = await slowClient(port(), head, body, 40);
    expect(r.closed).toBe(true);
    expect(r.ms).toBeLessThan(3000); // 500 ms limit, checked every 125 ms; the whole body would take ~40 s
    expect(r.response).toMatch(/^HTTP\/1\.1 408/);
    expect(r.response).toContain('"code":"request_timeout"');
  });

  it('cuts off a client that trickles its headers (slowloris)', async () => {
    const r = await slowClient(port(), 'GET /monitoring/logs HTTP/1.1\r\n', `Host: x\r\nX-Pad: ${'a'.repeat(200)}\r\n\r\n`, 40);
    expect(r.closed).toBe(true);
    expect(r.ms).toBeLessThan(3000);
    expect(r.response).toMatch(/^HTTP\/1\.1 408/);
    expect(r.response).toContain('"code":"request_timeout"');
  });

  it('still serves a client that sends its body in time', async () => {
    const r = await call(t.url, 'POST', '/monitoring/logs', { body: events(20) });
    expect(r.status).toBe(200);
  });
});

describe('query limits', () => {
  type Query = typeof t.engine.events.transport.query;

  async function withTransport<T>(wrap: (orig: Query) => Query, fn: () => Promise<T>): Promise<T> {
    const transport = t.engine.events.transport;
    const orig = transport.query;
    transport.query = wrap(orig.bind(transport));
    try {
      return await fn();
    } finally {
      transport.query = orig;
    }
  }

  it('answers 429 with Retry-After beyond MONITORING_MAX_CONCURRENT_QUERIES, never 500', async () => {
    // storage is held at a gate, so the first two queries are surely still running when the rest arrive
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const statuses = await withTransport(
      (orig) => (async (sql: string, params?: any, opts?: any) => {
        await gate;
        return orig(sql, params, opts);
      }) as Query,
      async () => {
        const paths = ['/monitoring/logs', '/monitoring/errors', '/monitoring/performance', '/monitoring/timeseries', '/monitoring/logs?q=x', '/monitoring/load'];
        let answered = 0;
        const pending = paths.map((p) => call(t.url, 'GET', p).finally(() => answered++));
        try {
          for (let i = 0; i < 500 && answered < paths.length - 2; i++) await new Promise((r) => setTimeout(r, 10));
          expect(t.engine.limiter.running).toBe(2);
        } finally {
          open();
        }
        const rs = await Promise.all(pending);
        for (const r of rs) {
          if (r.status === 429) {
            expectLimited(r, 'too_many_queries');
            expect(r.body.error.message).toMatch(/more than 2 queries/);
          }
        }
        return rs.map((r) => r.status);
      },
    );
    expect(statuses.filter((s) => s === 429)).toHaveLength(4);
    // the two admitted ones ran (or, on a very slow machine, hit the time limit: 503, still not a 500)
    expect(statuses.filter((s) => s === 200 || s === 503)).toHaveLength(2);
    expect(t.engine.limiter.running).toBe(0);
  });

  it('answers 503 query_timeout when storage stops a query at MONITORING_QUERY_TIMEOUT_MS', async () => {
    const r = await withTransport(
      // the real chDB, asked for something that takes minutes, under the engine's time limit
      (orig) => ((_sql: string, _params?: any, opts?: any) => orig('SELECT count() AS n FROM numbers(100000000000)', {}, opts)) as Query,
      () => call(t.url, 'GET', '/monitoring/logs?project_id=pf_limits'),
    );
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('query_timeout');
    expect(r.body.error.message).toMatch(/1000 ms/);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('answers 503 even when storage hangs, and frees the slot', async () => {
    const start = Date.now();
    const r = await withTransport(
      () => (() => new Promise(() => undefined)) as Query,
      () => call(t.url, 'GET', '/monitoring/errors'),
    );
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('query_timeout');
    expect(Date.now() - start).toBeLessThan(5000);
    expect(t.engine.limiter.running).toBe(0);
    // the slot is free: the next queries are admitted (never 429) and answer again; one may still
    // meet this engine's 1 s limit behind what chDB finishes of the earlier test's stopped query
    const next: number[] = [];
    for (let i = 0; i < 5 && next.at(-1) !== 200; i++) {
      const q = await call(t.url, 'GET', '/monitoring/logs');
      expect(q.status === 200 || (q.status === 503 && q.body.error.code === 'query_timeout'), JSON.stringify(q.body)).toBe(true);
      next.push(q.status);
    }
    expect(next.at(-1)).toBe(200);
  });
});

describe('a configured admin budget', () => {
  it('limits the admin token too when MONITORING_RATE_LIMIT_ADMIN_REQUESTS is set', async () => {
    const dir = tempDir('pm-admin-limit-');
    let proc: ChildProcess | undefined;
    try {
      const e = await spawnEngine(dir, { MONITORING_RATE_LIMIT_ADMIN_REQUESTS: '3', MONITORING_LOG_LEVEL: 'warn' });
      proc = e.proc;
      for (let i = 0; i < 3; i++) expect((await call(e.url, 'GET', '/monitoring/logs')).status).toBe(200);
      expect(expectLimited(await call(e.url, 'GET', '/monitoring/logs'))).toBe(20);
      expect((await call(e.url, 'GET', '/health', { token: null })).status).toBe(200);
    } finally {
      proc?.kill('SIGKILL');
      removeDir(dir);
    }
  });
});
