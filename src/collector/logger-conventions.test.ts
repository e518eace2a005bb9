import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLoggerConventions, severityFromLevel } from './logger-conventions.js';
import { errorTypeFromStack } from './error-object.js';
import { call, qs, startEngine, type TestEngine } from '../../test/helpers.js';

describe('logger conventions', () => {
  it('pino numbers and level names onto our severity scale', () => {
    const table: [unknown, string | undefined][] = [
      [10, 'debug'], [20, 'debug'], [30, 'info'], [40, 'warning'], [50, 'high'], [60, 'critical'], ['30', 'info'],
      ['trace', 'debug'], ['verbose', 'debug'], ['INFO', 'info'], ['warn', 'warning'], ['Warning', 'warning'], ['error', 'high'],
      ['fatal', 'critical'], ['crit', 'critical'], ['notice', 'info'], ['custom', 'custom'], [0, undefined], ['', undefined], [{}, undefined],
    ];
    for (const [level, want] of table) expect(severityFromLevel(level), String(level)).toBe(want);
  });

  it('maps a pino line with err; canonical fields the sender set win; leftovers of err stay', () => {
    const ev: Record<string, unknown> = {
      level: 50, time: 1764583200123, pid: 7, hostname: 'h', msg: 'charge failed',
      err: { type: 'TypeError', message: 'x is undefined', stack: 'TypeError: x is undefined\n    at f (/app/a.js:1:2)', code: 'E_X' },
    };
    applyLoggerConventions(ev);
    expect(ev).toEqual({
      severity: 'high', timestamp: 1764583200123, pid: 7, hostname: 'h', message: 'charge failed',
      error_type: 'TypeError', stack: 'TypeError: x is undefined\n    at f (/app/a.js:1:2)', err: { code: 'E_X' },
    });
    const own: Record<string, unknown> = { severity: 'info', level: 'error', message: 'mine', msg: 'theirs', timestamp: 5, time: 'garbage' };
    applyLoggerConventions(own);
    expect(own).toEqual({ severity: 'info', level: 'error', message: 'mine', msg: 'theirs', timestamp: 5, time: 'garbage' });
    // winston's format.errors(): {level: 'error', message, stack} with error as an object of name/message
    const w: Record<string, unknown> = { level: 'error', error: { name: 'RangeError', message: 'too big' }, time: '2026-11-30T10:00:00Z' };
    applyLoggerConventions(w);
    expect(w).toEqual({ severity: 'high', error_type: 'RangeError', message: 'too big', timestamp: '2026-11-30T10:00:00Z' });
    const unparsable: Record<string, unknown> = { time: 'noon', error: 'a string' };
    applyLoggerConventions(unparsable);
    expect(unparsable).toEqual({ time: 'noon', error: 'a string' }); // kept as attributes
  });

  it("a logger line's stack without a type (winston's format.errors) names the type from its first line", () => {
    const stack = 'RangeError: no route\n    at ship (/app/ship.js:2:9)';
    const w: Record<string, unknown> = { level: 'error', message: 'no route', stack };
    applyLoggerConventions(w);
    expect(w).toEqual({ severity: 'high', message: 'no route', stack, error_type: 'RangeError' });
    // not on an event without a logger level: its fingerprint stays what it was
    const plain: Record<string, unknown> = { message: 'no route', stack };
    applyLoggerConventions(plain);
    expect(plain).toEqual({ message: 'no route', stack });
    expect(errorTypeFromStack('java.lang.IllegalStateException: closed\n\tat com.a.B.c(B.java:3)')).toBe('java.lang.IllegalStateException');
    expect(errorTypeFromStack('Error\n    at f (/a.js:1:1)')).toBe('Error');
    expect(errorTypeFromStack('something broke: badly\n    at f (/a.js:1:1)')).toBeUndefined();
    expect(errorTypeFromStack('TypeError: no frames')).toBeUndefined();
  });
});

describe('on the ingest route', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine();
  });
  afterAll(async () => {
    await t.close();
  });

  it('NDJSON pino lines land with severity, time, message and a grouped error', async () => {
    const stack = 'Error: db down\n    at query (/app/db.js:10:5)\n    at handler (/app/api.js:3:1)';
    const lines = [
      { level: 30, time: 1764583200000, msg: 'started', project_id: 'pf_pino_conv' },
      { level: 50, time: 1764583201000, msg: 'query failed', project_id: 'pf_pino_conv', err: { type: 'Error', message: 'db down', stack } },
      { level: 50, time: 1764583202000, msg: 'query failed again', project_id: 'pf_pino_conv', err: { type: 'Error', message: 'db down', stack } },
    ].map((l) => JSON.stringify(l)).join('\n');
    const r = await call(t.url, 'POST', '/monitoring/logs', { raw: lines, contentType: 'application/x-ndjson' });
    expect(r.status).toBe(200);
    const got = (await call(t.url, 'GET', `/monitoring/logs?${qs({ project_id: 'pf_pino_conv', order: 'asc' })}`)).body.logs;
    expect(got.map((e: any) => [e.severity, e.message, e.timestamp, e.error_type])).toEqual([
      ['info', 'started', '2025-12-01T10:00:00.000Z', ''],
      ['high', 'query failed', '2025-12-01T10:00:01.000Z', 'Error'],
      ['high', 'query failed again', '2025-12-01T10:00:02.000Z', 'Error'],
    ]);
    expect(got[1].attributes).not.toHaveProperty('msg');
    expect(got[1].fingerprint).not.toBe('');
    expect(got[1].fingerprint).toBe(got[2].fingerprint);
  });

  it("pino-http-send's bodies: {logs: [...]} JSON, and NDJSON with no Content-Type (or text/plain)", async () => {
    const line = (msg: string) => ({ level: 30, time: 1764583200000, msg, project_id: 'pf_wrapped' });
    const wrapped = await call(t.url, 'POST', '/monitoring/logs', { body: { logs: [line('a'), line('b')] } });
    expect(wrapped.body).toMatchObject({ accepted: 2 });
    const ndjson = [line('c'), line('d')].map((l) => JSON.stringify(l)).join('\n') + '\n';
    const untyped = await fetch(`${t.url}/monitoring/logs`, { method: 'POST', headers: { authorization: `Bearer ${t.token}` }, body: Buffer.from(ndjson) });
    expect(untyped.status).toBe(200);
    expect(await untyped.json()).toMatchObject({ accepted: 2 });
    expect((await call(t.url, 'POST', '/monitoring/logs', { raw: ndjson.replace(/"d"/, '"e"'), contentType: 'text/plain' })).body).toMatchObject({ accepted: 2 });
    const got = (await call(t.url, 'GET', `/monitoring/logs?${qs({ project_id: 'pf_wrapped', order: 'asc' })}`)).body.logs;
    expect(got.map((e: any) => e.message).sort()).toEqual(['a', 'b', 'c', 'c', 'd', 'e']);
    // one broken JSON value with no Content-Type is still invalid JSON; {logs: …} beside other fields is an event
    const broken = await fetch(`${t.url}/monitoring/logs`, { method: 'POST', headers: { authorization: `Bearer ${t.token}` }, body: '{"project_id": ' });
    expect(broken.status).toBe(400);
    expect((await broken.json()).error.code).toBe('invalid_json');
    const event = await call(t.url, 'POST', '/monitoring/logs', { body: { project_id: 'pf_wrapped', message: 'has logs', logs: [1] } });
    expect(event.body).toMatchObject({ accepted: 1 });
  });
});
