// MonitoringClient against a real engine, and against tiny servers we control for failure modes.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, removeDir, startEngine, type TestEngine } from '../test/helpers.js';
import { MonitoringClient, type FieldError, type LogEvent } from './index.js';

interface Seen { status: number; events: LogEvent[]; answer?: any }
type Handler = (events: LogEvent[], req: IncomingMessage, res: ServerResponse, n: number) => void | Promise<void>;

/** A loopback server; every request's events are recorded, `handler` answers. */
async function tinyServer(handler: Handler): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const events = JSON.parse(Buffer.concat(chunks).toString() || '[]') as LogEvent[];
    const entry: Seen = { status: 0, events };
    seen.push(entry);
    const n = seen.length;
    res.on('finish', () => { entry.status = res.statusCode; });
    await handler(events, req, res, n);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, seen,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Forwards to the engine; `tamper` may replace the answer the client sees. */
async function proxy(target: string, tamper?: (n: number, status: number, body: any) => { status: number; body: unknown; headers?: Record<string, string> } | undefined) {
  return tinyServer(async (events, req, res, n) => {
    const r = await fetch(target + req.url, {
      method: 'POST', body: JSON.stringify(events),
      headers: { authorization: String(req.headers.authorization), 'content-type': 'application/json' },
    });
    const body = await r.json();
    const t = tamper?.(n, r.status, body);
    const out = t ?? { status: r.status, body };
    lastEngineAnswers.push(body);
    json(res, out.status, out.body, t?.headers);
  });
}
const lastEngineAnswers: any[] = [];

const waitFor = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

let eng: TestEngine;
beforeAll(async () => { eng = await startEngine(); });
afterAll(async () => { await eng?.close(); if (eng) removeDir(eng.dataDir); });

const stored = async (project: string): Promise<any[]> =>
  (await call(eng.url, 'GET', `/monitoring/logs?project_id=${project}&limit=1000`)).body.logs;

describe('MonitoringClient', () => {
  it('batches: 300 logs with batchSize 100 → 3 requests, all stored', async () => {
    const p = await proxy(eng.url);
    const c = new MonitoringClient({ url: p.url, token: eng.token, batchSize: 100, flushIntervalMs: 60_000 });
    for (let i = 0; i < 300; i++) c.log({ project_id: 'cl_batch', message: `m${i}` });
    await waitFor(() => p.seen.length === 3 && c.stats.queued === 0); // size-triggered, no flush() needed
    await c.close();
    expect(p.seen.map((s) => [s.status, s.events.length])).toEqual([[200, 100], [200, 100], [200, 100]]);
    expect(c.stats).toMatchObject({ queued: 0, sent: 300, rejected: 0, dropped: 0, retries: 0 });
    const logs = await stored('cl_batch');
    expect(logs).toHaveLength(300);
    expect(new Set(logs.map((l) => l.id))).toEqual(new Set(p.seen.flatMap((s) => s.events.map((e) => e.id))));
    await p.close();
  });

  it('flushes on the interval and keeps caller objects untouched', async () => {
    const c = new MonitoringClient({ url: eng.url, token: eng.token, flushIntervalMs: 30 });
    const ev = { project_id: 'cl_timer', message: 'tick' };
    const id = c.log(ev);
    expect(ev).not.toHaveProperty('id');
    await waitFor(() => c.stats.sent === 1);
    expect((await stored('cl_timer')).map((l) => l.id)).toEqual([id]);
    await c.close();
  });

  it('reports a bad event with its field while its neighbours are stored; an all-bad batch (400) too', async () => {
    const rejected: { event: LogEvent; errors: FieldError[] }[] = [];
    const c = new MonitoringClient({ url: eng.url, token: eng.token, onRejected: (event, errors) => rejected.push({ event, errors }) });
    c.log({ project_id: 'cl_bad', message: 'ok 1' });
    c.log({ project_id: 'cl_bad', message: 'bad', duration_ms: -5 });
    c.log({ project_id: 'cl_bad', message: 'ok 2' });
    await c.flush();
    expect(rejected).toHaveLength(1);
    expect(rejected[0].event.message).toBe('bad');
    expect(rejected[0].errors.map((e) => e.field)).toContain('duration_ms');
    expect((await stored('cl_bad')).map((l) => l.message).sort()).toEqual(['ok 1', 'ok 2']);

    rejected.length = 0;
    c.log({ project_id: 'bad project!', message: 'a' });
    c.log({ message: 'no project' });
    c.log(null as unknown as LogEvent); // never throws
    await c.close();
    expect(rejected.map((r) => r.errors[0].field)).toEqual(['(event)', 'project_id', 'project_id']);
    expect(c.stats).toMatchObject({ sent: 2, rejected: 4, dropped: 0 });
  });

  it('503 with Retry-After: 1 twice, then 200 → the batch arrives once, ids stable across retries', async () => {
    const s = await tinyServer((events, _req, res, n) => {
      if (n <= 2) return json(res, 503, { error: { code: 'overloaded', message: 'busy' } }, { 'Retry-After': '1' });
      json(res, 200, { accepted: events.length, ids: events.map((e) => e.id), rejected: [], duplicates: 0 });
    });
    const dropped: string[] = [];
    const c = new MonitoringClient({ url: s.url, token: 't', retryBaseMs: 5, onDropped: (_e, r) => dropped.push(r) });
    for (let i = 0; i < 5; i++) c.log({ project_id: 'cl_retry', message: `r${i}` });
    const t0 = Date.now();
    await c.close();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900); // Retry-After honoured
    expect(s.seen.map((x) => x.status)).toEqual([503, 503, 200]);
    const ids = s.seen.map((x) => x.events.map((e) => e.id));
    expect(ids[1]).toEqual(ids[0]);
    expect(ids[2]).toEqual(ids[0]);
    expect(new Set(ids[0]).size).toBe(5);
    expect(dropped).toEqual([]);
    expect(c.stats).toMatchObject({ sent: 5, retries: 2, dropped: 0 });
    await s.close();
  });

  it('against the real engine a resend after a lost answer is deduplicated', async () => {
    // The proxy stores the batch on the engine, then tells the client 503: the client resends the same ids.
    const p = await proxy(eng.url, (n) => (n === 1 ? { status: 503, body: { error: { code: 'x', message: 'lost' } }, headers: { 'Retry-After': '0' } } : undefined));
    lastEngineAnswers.length = 0;
    const c = new MonitoringClient({ url: p.url, token: eng.token, retryBaseMs: 5 });
    for (let i = 0; i < 4; i++) c.log({ project_id: 'cl_dedup', message: `d${i}` });
    await c.close();
    expect(p.seen).toHaveLength(2);
    expect(p.seen[1].events.map((e) => e.id)).toEqual(p.seen[0].events.map((e) => e.id));
    expect(lastEngineAnswers[1].duplicates).toBe(4);
    const logs = await stored('cl_dedup');
    expect(logs).toHaveLength(4);
    expect(c.stats.retries).toBe(1);
    await p.close();
  });

  it('401 → onDropped with the reason, no retries', async () => {
    const dropped: { events: LogEvent[]; reason: string }[] = [];
    const c = new MonitoringClient({ url: eng.url, token: 'wrong-token', onDropped: (events, reason) => dropped.push({ events, reason }) });
    c.log({ project_id: 'cl_401', message: 'x' });
    c.log({ project_id: 'cl_401', message: 'y' });
    await c.close();
    expect(dropped).toHaveLength(1);
    expect(dropped[0].events.map((e) => e.message)).toEqual(['x', 'y']);
    expect(dropped[0].reason).toMatch(/401/);
    expect(c.stats).toMatchObject({ dropped: 2, retries: 0, sent: 0 });
  });

  it('413 splits the batch in half until it fits', async () => {
    const s = await tinyServer((events, _req, res) => {
      if (events.length > 2) return json(res, 413, { error: { code: 'too_large', message: 'too many' } });
      json(res, 200, { accepted: events.length, ids: [], rejected: [], duplicates: 0 });
    });
    const dropped: string[] = [];
    const c = new MonitoringClient({ url: s.url, token: 't', onDropped: (_e, r) => dropped.push(r) });
    for (let i = 0; i < 8; i++) c.log({ project_id: 'p', n: i });
    await c.close();
    expect(s.seen.map((x) => x.events.length)).toEqual([8, 4, 2, 2, 4, 2, 2]);
    expect(s.seen.filter((x) => x.status === 200).flatMap((x) => x.events.map((e) => e.n))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(dropped).toEqual([]);
    expect(c.stats.sent).toBe(8);
    await s.close();
  });

  it('a server that never answers: timeouts are retried, then the batch is dropped with the reason', async () => {
    const s = await tinyServer(() => { /* never answers */ });
    const dropped: string[] = [];
    const errors: unknown[] = [];
    const c = new MonitoringClient({
      url: s.url, token: 't', timeoutMs: 100, maxRetries: 1, retryBaseMs: 5,
      onDropped: (_e, r) => dropped.push(r), onError: (e) => errors.push(e),
    });
    c.log({ project_id: 'p' });
    await c.close();
    expect(s.seen).toHaveLength(2);
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toMatch(/gave up after 2 attempts.*timed out/);
    expect(errors).toHaveLength(2);
    await s.close();
  });

  it('maxQueue overflow drops the oldest and reports them; the rest is sent', async () => {
    const dropped: { events: LogEvent[]; reason: string }[] = [];
    const c = new MonitoringClient({
      url: eng.url, token: eng.token, maxQueue: 5, batchSize: 100, flushIntervalMs: 60_000,
      onDropped: (events, reason) => dropped.push({ events, reason }),
    });
    for (let i = 0; i < 8; i++) c.log({ project_id: 'cl_queue', message: `q${i}` });
    expect(c.stats).toMatchObject({ queued: 5, dropped: 3 });
    expect(dropped.flatMap((d) => d.events.map((e) => e.message))).toEqual(['q0', 'q1', 'q2']);
    expect(dropped[0].reason).toMatch(/queue full/);
    await c.close();
    expect((await stored('cl_queue')).map((l) => l.message).sort()).toEqual(['q3', 'q4', 'q5', 'q6', 'q7']);
  });

  it('close() flushes what is queued; logging after close is reported as dropped', async () => {
    const dropped: string[] = [];
    const c = new MonitoringClient({ url: eng.url, token: eng.token, flushIntervalMs: 60_000, onDropped: (_e, r) => dropped.push(r) });
    for (let i = 0; i < 3; i++) c.log({ project_id: 'cl_close', message: `c${i}` });
    expect(await stored('cl_close')).toHaveLength(0);
    await c.close();
    expect(await stored('cl_close')).toHaveLength(3);
    c.log({ project_id: 'cl_close', message: 'late' });
    expect(dropped).toEqual(['client closed']);
  });
});
