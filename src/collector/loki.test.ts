// The Loki push API with what Promtail / Alloy (protobuf + snappy), Vector and Fluent Bit (JSON,
// optionally gzip) send, and their auth forms (bearer, basic, X-Scope-OrgID).
import { gzipSync } from 'node:zlib';
import { compressSync } from 'snappy';
import { describe, expect, it } from 'vitest';
import { call, useEngine } from '../../test/helpers.js';
import { messageType } from './proto.js';
import { mapEntry, parseLabels } from './loki.js';

const t = useEngine();
const logs = t.logs;
const T = 1764583200000; // 2025-12-01T10:00:00Z

/** A push as Promtail builds it: logproto.PushRequest, snappy block compressed. */
function promtailPush(streams: { labels: string; lines: [number, string][] }[]): Buffer {
  const Push = messageType('logproto.PushRequest');
  const msg = Push.fromObject({
    streams: streams.map((s) => ({
      labels: s.labels,
      entries: s.lines.map(([ms, line]) => ({ timestamp: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 + 123 }, line })),
    })),
  });
  return compressSync(Buffer.from(Push.encode(msg).finish()));
}

async function post(body: Buffer | string, headers: Record<string, string>) {
  const res = await fetch(`${t.url}/loki/api/v1/push`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, ...headers }, body });
  return { status: res.status, text: await res.text() };
}

describe('POST /loki/api/v1/push', () => {
  it('Promtail protobuf + snappy: labels onto fields, plain and JSON lines, 204', async () => {
    const body = promtailPush([
      { labels: '{job="checkout", level="warn", filename="/var/log/checkout.log", project_id="pf_loki"}', lines: [[T, 'disk almost full'], [T + 1, 'retrying "db" connect']] },
      { labels: '{service_name="billing", detected_level="error", project_id="pf_loki", pod="billing-7f9"}', lines: [[T + 2, JSON.stringify({ msg: 'charge failed', level: 'error', err: { type: 'CardError', message: 'declined', stack: 'CardError: declined\n    at charge (/app/c.js:1:1)' }, order: 'o-9' })]] },
    ]);
    const r = await post(body, { 'content-type': 'application/x-protobuf', 'user-agent': 'promtail/3.0.0' });
    expect(r.status, r.text).toBe(204);
    const stored = await logs({ project_id: 'pf_loki' });
    expect(stored.map((e) => [e.engine, e.severity, e.message, e.timestamp])).toEqual([
      ['checkout', 'warning', 'disk almost full', '2025-12-01T10:00:00.000Z'],
      ['checkout', 'warning', 'retrying "db" connect', '2025-12-01T10:00:00.001Z'],
      ['billing', 'high', 'charge failed', '2025-12-01T10:00:00.002Z'],
    ]);
    expect(stored[0].attributes).toEqual({ filename: '/var/log/checkout.log' });
    expect(stored[2]).toMatchObject({ error_type: 'CardError', event_type: 'error', fingerprint: expect.stringMatching(/.+/), attributes: { order: 'o-9', pod: 'billing-7f9' } });
  });

  it('Vector / Fluent Bit JSON, gzip, structured metadata; Basic auth; X-Scope-OrgID names the project', async () => {
    const push = { streams: [{ stream: { job: 'fluent-bit', level: 'info' }, values: [
      [String(BigInt(T) * 1_000_000n), JSON.stringify({ log: 'GET /health 200', stream: 'stdout' })],
      [String(BigInt(T + 5) * 1_000_000n), 'plain text line', { trace_id: 'abc123', host: 'n1' }],
    ] }] };
    const basic = Buffer.from(`loki:${t.token}`).toString('base64');
    const res = await fetch(`${t.url}/loki/api/v1/push`, {
      method: 'POST', body: gzipSync(JSON.stringify(push)),
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/json', 'content-encoding': 'gzip', 'x-scope-orgid': 'pf_loki_json' },
    });
    expect(res.status, await res.text()).toBe(204);
    const stored = await logs({ project_id: 'pf_loki_json' });
    expect(stored).toHaveLength(2);
    expect(stored[0]).toMatchObject({ engine: 'fluent-bit', severity: 'info', message: 'GET /health 200', attributes: { stream: 'stdout' } });
    expect(stored[1]).toMatchObject({ message: 'plain text line', trace_id: 'abc123', attributes: { host: 'n1' } });
  });

  it('a key bound to one project fills it; a bad entry is named while the rest is stored; garbage is 400', async () => {
    const key = await call(t.url, 'POST', '/monitoring/keys', { body: { name: 'promtail', scopes: ['ingest'], project_id: 'pf_loki_key' } });
    const body = promtailPush([{ labels: '{job="x"}', lines: [[T, 'from key']] }]);
    const r = await fetch(`${t.url}/loki/api/v1/push`, { method: 'POST', headers: { authorization: `Bearer ${key.body.token}`, 'content-type': 'application/x-protobuf' }, body });
    expect(r.status).toBe(204);
    expect((await logs({ project_id: 'pf_loki_key', engine: 'x' }))[0].message).toBe('from key');
    const noProject = await post(promtailPush([{ labels: '{job="x"}', lines: [[T, 'nowhere']] }]), { 'content-type': 'application/x-protobuf' });
    expect(noProject.status).toBe(400);
    expect(noProject.text).toContain('project_id');

    const mixed = { streams: [{ stream: { project_id: 'pf_loki_mixed' }, values: [[String(BigInt(T) * 1_000_000n), 'good'], ['yesterday', 'bad']] }] };
    const m = await post(JSON.stringify(mixed), { 'content-type': 'application/json' });
    expect(m.status).toBe(400);
    expect(m.text).toContain('streams[0].values[1]');
    expect((await logs({ project_id: 'pf_loki_mixed' })).map((e) => e.message)).toEqual(['good']);

    expect((await post(Buffer.from('not snappy at all'), { 'content-type': 'application/x-protobuf' })).status).toBe(400);
    expect((await post('{"streams": 5}', { 'content-type': 'application/json' })).status).toBe(400);
    // a snappy block declaring 100 MB is refused before it is decoded
    expect((await post(Buffer.from([0x80, 0x80, 0x80, 0x32, 0x00]), { 'content-type': 'application/x-protobuf' })).status).toBe(413);
  });
});

describe('mapping', () => {
  it('parses label sets with escapes, and refuses malformed ones', () => {
    expect(Object.fromEntries(parseLabels('{a="1", b="x\\"y", c="line\\nnext"}')!)).toEqual({ a: '1', b: 'x"y', c: 'line\nnext' });
    expect(parseLabels('{}')!.size).toBe(0);
    expect(parseLabels('a="1"')).toBeUndefined();
    expect(parseLabels('{a=1}')).toBeUndefined();
  });

  it('a JSON line keeps its own fields over labels', () => {
    const ev = mapEntry(new Map([['job', 'api'], ['level', 'info']]), T, JSON.stringify({ engine: 'worker', level: 'error', msg: 'x' }), undefined, undefined);
    expect(ev).toEqual({ engine: 'worker', level: 'error', msg: 'x', timestamp: T, attributes: { job: 'api', level: 'info' } });
  });
});
