import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSenders } from './index.js';
import type { Notification } from './types.js';
import { classifyHttpResponse, parseRetryAfter, postJson, signBody, verifySignature } from './webhook.js';

function notification(over: Partial<Notification> = {}): Notification {
  return {
    id: 'ntf_42',
    state: 'firing',
    rule_id: 'rule_1',
    rule_name: 'Execution errors',
    severity: 'high',
    project_id: 'pf_123',
    title: 'Failed to send message – token expired',
    summary: 'detail',
    count: 3,
    first_seen: '2025-01-01T10:00:00.000Z',
    last_seen: '2025-01-01T10:01:00.000Z',
    labels: { engine: 'execution' },
    link: 'https://monitor.puraify.test/a/1',
    user_message: 'Your Slack connection expired; please reconnect it.',
    ...over,
  };
}

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
}

describe('webhook + feedback_loop against a loopback receiver', () => {
  let server: http.Server;
  let base: string;
  let closedPort: number;
  const received: Received[] = [];
  const senders = createSenders({ allowPrivate: true, timeoutMs: 300 });

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') });
        switch (req.url) {
          case '/hang':
            return; // never answers
          case '/500':
            return void res.writeHead(500).end('boom');
          case '/503-date':
            return void res.writeHead(503, { 'retry-after': new Date(Date.now() + 120_000).toUTCString() }).end();
          case '/429':
            return void res.writeHead(429, { 'retry-after': '7' }).end('slow down');
          case '/400':
            return void res.writeHead(400).end('bad payload');
          case '/redirect':
            return void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data' }).end();
          default:
            return void res.writeHead(204).end();
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const tmp = net.createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    closedPort = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
  });
  afterAll(async () => {
    senders.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('signs the body; the receiver verifies it, and a wrong secret fails', async () => {
    const n = notification();
    const res = await senders.send('webhook', { url: `${base}/hook`, secret: 's3cret-value', headers: { 'X-Api-Key': 'k-123', 'X-Env': 'prod' } }, n);
    expect(res).toEqual({ ok: true, status: 204 });
    const got = received.at(-1)!;
    const ts = got.headers['x-puraify-timestamp'] as string;
    const sig = got.headers['x-puraify-signature'] as string;
    expect(ts).toMatch(/^\d+$/);
    expect(Math.abs(Number(ts) - Date.now() / 1000)).toBeLessThan(5);
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(got.headers['x-puraify-notification-id']).toBe('ntf_42');
    expect(verifySignature('s3cret-value', ts, got.raw, sig)).toBe(true);
    expect(verifySignature('s3cret-value', ts, Buffer.from(got.raw), sig, { toleranceSeconds: 300 })).toBe(true);
    expect(verifySignature('wrong-secret', ts, got.raw, sig)).toBe(false);
    expect(verifySignature('s3cret-value', ts, got.raw.replace('ntf_42', 'ntf_43'), sig)).toBe(false);
    expect(verifySignature('s3cret-value', String(Number(ts) + 1), got.raw, sig)).toBe(false);
    expect(verifySignature('s3cret-value', ts, got.raw, sig, { toleranceSeconds: 300, nowMs: Date.now() + 3600_000 })).toBe(false);
    expect(verifySignature('s3cret-value', ts, got.raw, 'sha256=abc')).toBe(false);
    expect(verifySignature('s3cret-value', ts, got.raw, undefined)).toBe(false);
    expect(sig).toBe(`sha256=${signBody('s3cret-value', ts, got.raw)}`);
    // custom headers arrive
    expect(got.headers['x-api-key']).toBe('k-123');
    expect(got.headers['x-env']).toBe('prod');
    const body = JSON.parse(got.raw);
    expect(body).toMatchObject({ event: 'alert.firing', notification_id: 'ntf_42', notification: { id: 'ntf_42', project_id: 'pf_123', count: 3 } });
  });

  it('sends no signature without a secret but still the id and timestamp', async () => {
    await senders.send('webhook', { url: `${base}/plain` }, notification());
    const got = received.at(-1)!;
    expect(got.headers['x-puraify-signature']).toBeUndefined();
    expect(got.headers['x-puraify-timestamp']).toMatch(/^\d+$/);
    expect(got.headers['x-puraify-notification-id']).toBe('ntf_42');
  });

  it('feedback_loop carries the user-facing facts, signed', async () => {
    const res = await senders.send('feedback_loop', { url: `${base}/feedback`, secret: 'fb-secret' }, notification());
    expect(res.ok).toBe(true);
    const got = received.at(-1)!;
    expect(verifySignature('fb-secret', got.headers['x-puraify-timestamp'] as string, got.raw, got.headers['x-puraify-signature'] as string)).toBe(true);
    expect(JSON.parse(got.raw)).toMatchObject({
      notification_id: 'ntf_42',
      project_id: 'pf_123',
      severity: 'high',
      title: 'Failed to send message – token expired',
      user_message: 'Your Slack connection expired; please reconnect it.',
      link: 'https://monitor.puraify.test/a/1',
    });
  });

  it('classifies responses and failures', async () => {
    const cfg = (path: string) => ({ url: `${base}${path}` });
    expect(await senders.send('webhook', cfg('/500'), notification())).toMatchObject({ ok: false, retryable: true, status: 500 });
    const r429 = await senders.send('webhook', cfg('/429'), notification());
    expect(r429).toMatchObject({ ok: false, retryable: true, status: 429, retryAfterMs: 7000 });
    const r503 = await senders.send('webhook', cfg('/503-date'), notification());
    expect(r503).toMatchObject({ ok: false, retryable: true, status: 503 });
    expect(r503.ok === false && r503.retryAfterMs).toBeGreaterThan(100_000);
    expect(r503.ok === false && r503.retryAfterMs).toBeLessThanOrEqual(120_000);
    const r400 = await senders.send('webhook', cfg('/400'), notification());
    expect(r400).toMatchObject({ ok: false, retryable: false, status: 400 });
    expect(r400.ok === false && r400.error).toContain('bad payload');
    const redirect = await senders.send('webhook', cfg('/redirect'), notification());
    expect(redirect).toMatchObject({ ok: false, retryable: false, status: 302 });
  });

  it('connection refused is retryable', async () => {
    const res = await senders.send('webhook', { url: `http://127.0.0.1:${closedPort}/x` }, notification());
    expect(res).toMatchObject({ ok: false, retryable: true });
    expect(res.ok === false && res.error).toMatch(/ECONNREFUSED/);
  });

  it('a receiver that never answers times out (retryable)', async () => {
    const t0 = Date.now();
    const res = await senders.send('webhook', { url: `${base}/hang` }, notification());
    const took = Date.now() - t0;
    expect(res).toMatchObject({ ok: false, retryable: true });
    expect(res.ok === false && res.error).toMatch(/timed out after 300 ms/);
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(3000);
  });

  it('refuses reserved headers and fetch-blocked ports as permanent', async () => {
    for (const headers of [{ 'Transfer-Encoding': 'chunked' }, { 'X-Puraify-Signature': 'forged' }, { Host: 'evil' }]) {
      expect(await senders.send('webhook', { url: `${base}/h`, headers }, notification())).toMatchObject({ ok: false, retryable: false });
    }
    expect(await senders.send('webhook', { url: 'http://127.0.0.1:25/' }, notification())).toMatchObject({ ok: false, retryable: false });
    // postJson itself (no config validation) also treats a fetch-refused port as permanent
    expect(await postJson('http://127.0.0.1:1/', '{}', { timeoutMs: 300 })).toMatchObject({ ok: false, retryable: false });
  });
});

describe('Retry-After and status classification', () => {
  it('parses seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:01:30 GMT', now)).toBe(90_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('99999999', now)).toBe(24 * 3600 * 1000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
  it('maps statuses', () => {
    const h = new Headers();
    expect(classifyHttpResponse(200, h)).toEqual({ ok: true, status: 200 });
    expect(classifyHttpResponse(404, h)).toMatchObject({ ok: false, retryable: false });
    expect(classifyHttpResponse(408, h)).toMatchObject({ ok: false, retryable: true });
    expect(classifyHttpResponse(502, h)).toMatchObject({ ok: false, retryable: true });
    expect(classifyHttpResponse(301, h)).toMatchObject({ ok: false, retryable: false });
  });
});
