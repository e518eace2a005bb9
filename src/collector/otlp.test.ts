import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, qs, startEngine, type TestEngine } from '../../test/helpers.js';
import { anyValue, flattenAttributes, mapOtlpLogs, nanosToMs, otlpResponse, parseOtlpLogsJson, severityFromNumber } from './otlp.js';

const str = (key: string, v: string) => ({ key, value: { stringValue: v } });
const T0 = '1753452060123456789'; // 2025-07-25T14:01:00.123456789Z
const T0_MS = 1753452060123;

/** Shaped like what the OpenTelemetry JS / Python SDK OTLP-JSON exporters send. */
function sdkPayload(project = 'pf_otel', suffix = '') {
  return {
    resourceLogs: [
      {
        resource: {
          attributes: [
            str('service.name', `checkout${suffix}`),
            str('service.version', '1.4.2'),
            str('puraify.project_id', project),
            str('telemetry.sdk.language', 'nodejs'),
            str('telemetry.sdk.name', 'opentelemetry'),
            { key: 'process.pid', value: { intValue: '4242' } },
          ],
          droppedAttributesCount: 0,
        },
        scopeLogs: [
          {
            scope: { name: '@opentelemetry/winston-transport', version: '0.7.0' },
            logRecords: [
              {
                timeUnixNano: T0,
                observedTimeUnixNano: '1753452060200000000',
                severityNumber: 9,
                severityText: 'INFO',
                body: { stringValue: 'order placed' },
                attributes: [str('order.id', 'o-1'), { key: 'duration_ms', value: { intValue: '842' } }, str('session.id', 'sess-9')],
                droppedAttributesCount: 0,
                flags: 1,
                traceId: '5B8EFFF798038103D269B633813FC60C',
                spanId: 'EEE19B7EC3C1B174',
              },
              {
                timeUnixNano: '1753452061000000000',
                severityNumber: 17,
                body: {},
                attributes: [
                  str('exception.type', 'PaymentDeclined'),
                  str('exception.message', 'card declined by issuer'),
                  str('exception.stacktrace', 'PaymentDeclined: card declined\n    at charge (pay.js:10:5)'),
                  str('enduser.id', 'u-77'),
                ],
                traceId: '5b8efff798038103d269b633813fc60c',
                spanId: '1111111111111111',
              },
            ],
          },
        ],
      },
      {
        resource: { attributes: [str('service.name', `mailer${suffix}`), str('project_id', project)] },
        scopeLogs: [
          {
            scope: { name: 'mailer.py' },
            logRecords: [
              { timeUnixNano: 0, observedTimeUnixNano: 1753452062000000000, severityNumber: 13, severityText: 'WARN', body: { stringValue: 'retrying smtp' } },
              { timeUnixNano: '1753452063000000000', severityNumber: 5, body: { kvlistValue: { values: [str('event', 'queued'), { key: 'n', value: { intValue: 3 } }] } },
                attributes: [str('puraify.event_type', 'mail_queued'), str('puraify.flow_id', 'welcome')] },
            ],
          },
        ],
      },
    ],
  };
}

describe('mapping', () => {
  it('maps a realistic SDK payload with two resources', () => {
    const m = mapOtlpLogs(sdkPayload());
    if (!m.ok) throw new Error(m.message);
    expect(m.recordErrors.size).toBe(0);
    expect(m.paths).toEqual([
      'resourceLogs[0].scopeLogs[0].logRecords[0]', 'resourceLogs[0].scopeLogs[0].logRecords[1]',
      'resourceLogs[1].scopeLogs[0].logRecords[0]', 'resourceLogs[1].scopeLogs[0].logRecords[1]',
    ]);
    const [info, err, warn, debug] = m.items;
    expect(info).toEqual({
      project_id: 'pf_otel', engine: 'checkout', session_id: 'sess-9', duration_ms: 842, timestamp: T0_MS,
      severity: 'info', message: 'order placed', trace_id: '5b8efff798038103d269b633813fc60c', span_id: 'eee19b7ec3c1b174',
      attributes: {
        'order.id': 'o-1', 'service.version': '1.4.2', 'telemetry.sdk.language': 'nodejs', 'telemetry.sdk.name': 'opentelemetry',
        'process.pid': 4242, 'otel.scope.name': '@opentelemetry/winston-transport', 'otel.scope.version': '0.7.0',
      },
    });
    expect(err).toMatchObject({
      project_id: 'pf_otel', engine: 'checkout', severity: 'high', status: 'error', error_type: 'PaymentDeclined',
      message: 'card declined by issuer', stack: expect.stringContaining('at charge'), user_id: 'u-77', timestamp: 1753452061000,
    });
    expect(err!.attributes).not.toHaveProperty('exception.message');
    expect(warn).toMatchObject({ project_id: 'pf_otel', engine: 'mailer', severity: 'warning', message: 'retrying smtp', timestamp: 1753452062000 });
    expect(warn).not.toHaveProperty('status');
    expect(debug).toMatchObject({ severity: 'debug', message: '{"event":"queued","n":3}', event_type: 'mail_queued', flow_id: 'welcome' });
  });

  it('severity: text lowercased wins (OTel short names onto the scale), else the number range', () => {
    const table: [number, string | undefined][] = [
      [0, undefined], [1, 'debug'], [4, 'debug'], [5, 'debug'], [8, 'debug'], [9, 'info'], [12, 'info'],
      [13, 'warning'], [16, 'warning'], [17, 'high'], [20, 'high'], [21, 'critical'], [24, 'critical'], [25, undefined],
    ];
    for (const [n, s] of table) expect(severityFromNumber(n), String(n)).toBe(s);
    const one = (rec: object) => {
      const m = mapOtlpLogs({ resourceLogs: [{ resource: { attributes: [str('project_id', 'p')] }, scopeLogs: [{ logRecords: [rec] }] }] });
      if (!m.ok) throw new Error(m.message);
      return m.items[0]!;
    };
    expect(one({ severityText: 'Notice', severityNumber: 10 }).severity).toBe('notice');
    expect(one({ severityText: 'ERROR', severityNumber: 17 }).severity).toBe('high');
    expect(one({ severityText: 'WARN' }).severity).toBe('warning');
    expect(one({ severityText: 'fatal' }).severity).toBe('critical');
    expect(one({ severityText: 'TRACE2' }).severity).toBe('debug');
    expect(one({ severityNumber: 21 })).toMatchObject({ severity: 'critical', status: 'error' });
    expect(one({ severityNumber: 'SEVERITY_NUMBER_ERROR2' })).toMatchObject({ severity: 'high', status: 'error' });
    expect(one({ severityNumber: 18, attributes: [str('status', 'timeout')] }).status).toBe('timeout');
    expect(one({ severityNumber: 16 })).not.toHaveProperty('status');
    expect(one({})).not.toHaveProperty('severity');
  });

  it('converts nanoseconds to milliseconds, string or number', () => {
    expect(nanosToMs(T0)).toBe(T0_MS);
    expect(nanosToMs(1753452060123456789)).toBe(1753452060123);
    expect(nanosToMs('0')).toBeUndefined();
    expect(nanosToMs(undefined)).toBeUndefined();
    expect(nanosToMs('yesterday')).toBeNull();
    const m = mapOtlpLogs({ resourceLogs: [{ resource: { attributes: [str('project_id', 'p')] }, scopeLogs: [{ logRecords: [
      { observedTimeUnixNano: '1753452060999000000' }, { timeUnixNano: 'soon' }, {},
    ] }] }] });
    if (!m.ok) throw new Error(m.message);
    expect(m.items[0]!.timestamp).toBe(1753452060999);
    expect(m.recordErrors.get(1)).toEqual([{ field: 'timeUnixNano', message: expect.any(String) }]);
    expect(m.items[2]).not.toHaveProperty('timestamp'); // the server's receive time then
  });

  it('flattens every AnyValue kind', () => {
    expect(anyValue({ stringValue: 'a' })).toBe('a');
    expect(anyValue({ intValue: '9007199254740993' })).toBe('9007199254740993'); // beyond 2^53: kept exact as a string
    expect(anyValue({ intValue: '-12' })).toBe(-12);
    expect(anyValue({ doubleValue: 1.5 })).toBe(1.5);
    expect(anyValue({ boolValue: false })).toBe(false);
    expect(anyValue({ arrayValue: { values: [{ stringValue: 'x' }, { intValue: 2 }] } })).toEqual(['x', 2]);
    expect(anyValue({})).toBeUndefined();
    const flat = flattenAttributes([
      str('a', 'b'),
      { key: 'http', value: { kvlistValue: { values: [str('method', 'GET'), { key: 'response', value: { kvlistValue: { values: [{ key: 'status_code', value: { intValue: '502' } }] } } }] } } },
      { key: 'tags', value: { arrayValue: { values: [{ stringValue: 'x' }, { boolValue: true }] } } },
      { key: 'ratio', value: { doubleValue: 0.25 } },
      { key: 'empty', value: {} },
      { value: { stringValue: 'no key' } },
    ]);
    expect(Object.fromEntries(flat)).toEqual({ a: 'b', 'http.method': 'GET', 'http.response.status_code': 502, tags: ['x', true], ratio: 0.25 });
  });

  it('leaves the project to the key when no attribute names it; partialSuccess names the record', () => {
    const m = mapOtlpLogs({ resourceLogs: [
      { resource: { attributes: [str('service.name', 'orphan')] }, scopeLogs: [{ logRecords: [{ body: { stringValue: 'x' } }] }] },
      { resource: { attributes: [str('service.namespace', 'pf_ns')] }, scopeLogs: [{ logRecords: [{ body: { stringValue: 'y' } }] }] },
    ] });
    if (!m.ok) throw new Error(m.message);
    expect(m.items[0]).toEqual({ engine: 'orphan', message: 'x' });
    expect(m.items[1]).toMatchObject({ project_id: 'pf_ns', message: 'y' });
    const errors = [{ field: 'resource.attributes.puraify.project_id', message: 'is required' }];
    const ans = otlpResponse({ accepted: 1, rejected: [{ index: 0, errors }] }, m.paths);
    expect(ans.partialSuccess).toEqual({ rejectedLogRecords: 1, errorMessage: expect.stringContaining('resourceLogs[0].scopeLogs[0].logRecords[0]: resource.attributes.puraify.project_id') });
    expect(otlpResponse({ accepted: 2, rejected: [] }, m.paths)).toEqual({});
  });

  it("a logger's err attribute (pino-opentelemetry-transport) fills error_type and stack; exception.* and the body win", () => {
    const kv = (key: string, values: object[]) => ({ key, value: { kvlistValue: { values } } });
    const stack = 'TypeError: no card\n    at charge (/app/pay.js:3:9)';
    const m = mapOtlpLogs({ resourceLogs: [{ scopeLogs: [{ logRecords: [
      { severityNumber: 17, body: { stringValue: 'charge failed' }, attributes: [kv('err', [str('type', 'TypeError'), str('message', 'no card'), str('stack', stack), str('code', 'E_CARD')])] },
      { body: { stringValue: 'b' }, attributes: [str('exception.type', 'Declined'), kv('error', [str('name', 'RangeError'), str('message', 'm'), str('stack', 's')])] },
      { attributes: [kv('err', [str('message', 'only a message')])] },
      { attributes: [kv('err', [str('code', 'E_X')]), str('error', 'a string')] },
    ] }] }] });
    if (!m.ok) throw new Error(m.message);
    expect(m.items[0]).toMatchObject({ message: 'charge failed', error_type: 'TypeError', stack, attributes: { 'err.code': 'E_CARD' } });
    expect(m.items[1]).toEqual({ message: 'b', error_type: 'Declined', stack: 's' });
    expect(m.items[2]).toEqual({ message: 'only a message' });
    expect(m.items[3]).toEqual({ attributes: { 'err.code': 'E_X', error: 'a string' } });
  });

  it('rejects bodies that are not OTLP JSON', () => {
    expect(parseOtlpLogsJson('{nope')).toMatchObject({ ok: false, status: 400, code: 'invalid_json' });
    expect(parseOtlpLogsJson('[]')).toMatchObject({ ok: false, errors: [{ field: '(body)' }] });
    expect(parseOtlpLogsJson('{"project_id":"p"}')).toMatchObject({ ok: false, errors: [{ field: 'resourceLogs' }] });
    expect(parseOtlpLogsJson('{"resourceLogs":[{"scopeLogs":{}}]}')).toMatchObject({ ok: false, errors: [{ field: 'resourceLogs[0].scopeLogs' }] });
    expect(parseOtlpLogsJson('{"resourceLogs":[]}')).toMatchObject({ ok: true, items: [] });
  });
});

describe('POST /v1/logs', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine();
  });
  afterAll(async () => {
    await t.close();
  });
  const logs = (params: Record<string, string | number | undefined>) => call(t.url, 'GET', `/monitoring/logs?${qs(params)}`);

  it('stores every record, findable by project, trace, engine and severity; the error is fingerprinted', async () => {
    const res = await call(t.url, 'POST', '/v1/logs', { body: sdkPayload('pf_otlp') });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});

    const all = await logs({ project_id: 'pf_otlp', order: 'asc' });
    expect(all.body.logs.map((l: any) => l.message)).toEqual(['order placed', 'card declined by issuer', 'retrying smtp', '{"event":"queued","n":3}']);
    const byTrace = await logs({ project_id: 'pf_otlp', trace_id: '5b8efff798038103d269b633813fc60c', order: 'asc' });
    expect(byTrace.body.logs).toHaveLength(2);
    expect(byTrace.body.logs[0]).toMatchObject({
      engine: 'checkout', severity: 'info', span_id: 'eee19b7ec3c1b174', session_id: 'sess-9', duration_ms: 842,
      timestamp: '2025-07-25T14:01:00.123Z', attributes: expect.objectContaining({ 'order.id': 'o-1', 'service.version': '1.4.2', 'process.pid': '4242' }),
    });
    expect((await logs({ project_id: 'pf_otlp', engine: 'mailer' })).body.logs).toHaveLength(2);
    const warn = await logs({ project_id: 'pf_otlp', severity: 'warning' });
    expect(warn.body.logs.map((l: any) => l.message)).toEqual(['retrying smtp']);

    const high = await logs({ project_id: 'pf_otlp', severity: 'high' });
    expect(high.body.logs).toHaveLength(1);
    const err = high.body.logs[0];
    expect(err).toMatchObject({ event_type: 'error', status: 'error', error_type: 'PaymentDeclined', user_id: 'u-77', fingerprint: expect.stringMatching(/.+/) });

    const groups = await call(t.url, 'GET', `/monitoring/errors?${qs({ project_id: 'pf_otlp', from: '2025-07-25T00:00:00Z' })}`);
    expect(groups.status).toBe(200);
    expect(groups.body.groups).toHaveLength(1);
    expect(groups.body.groups[0]).toMatchObject({ fingerprint: err.fingerprint, count: 1 });
  });

  it('answers partialSuccess when one record lacks a project', async () => {
    const body = sdkPayload('pf_otlp_part', '-p');
    body.resourceLogs[1].resource.attributes = [str('service.name', 'mailer-p')];
    const res = await call(t.url, 'POST', '/v1/logs', { body });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ partialSuccess: { rejectedLogRecords: 2, errorMessage: expect.stringContaining('resource.attributes.puraify.project_id') } });
    expect((await logs({ project_id: 'pf_otlp_part' })).body.logs).toHaveLength(2);
  });

  it('400 as a JSON google.rpc.Status when nothing is accepted or the body is not OTLP JSON', async () => {
    const none = await call(t.url, 'POST', '/v1/logs', { body: { resourceLogs: [{ resource: {}, scopeLogs: [{ logRecords: [{ body: { stringValue: 'x' } }] }] }] } });
    expect(none.status).toBe(400);
    expect(none.body).toMatchObject({ code: 3, message: expect.stringContaining('puraify.project_id'), details: [{ reason: 'invalid_events' }, { fieldViolations: [{ field: expect.stringContaining('puraify.project_id') }] }] });
    for (const raw of ['{"resourceLogs": ', '{"project_id":"pf_x"}']) {
      const r = await call(t.url, 'POST', '/v1/logs', { raw });
      expect(r.status, raw).toBe(400);
      expect(r.body.code, raw).toBe(3);
      expect(r.body.details[0].reason, raw).toEqual(expect.any(String));
      expect(r.body.details[1].fieldViolations[0].field, raw).toEqual(expect.any(String));
    }
    expect((await call(t.url, 'POST', '/v1/logs', { body: { resourceLogs: [] } })).body).toEqual({});
  });

  it('415 for a content type that is neither JSON nor protobuf', async () => {
    const res = await call(t.url, 'POST', '/v1/logs', { raw: 'a=b', contentType: 'application/x-www-form-urlencoded' });
    expect(res.status).toBe(415);
    expect(res.body).toMatchObject({ code: 3, message: expect.stringContaining('application/x-protobuf'), details: [{ reason: 'unsupported_media_type' }, { fieldViolations: [{ field: 'Content-Type' }] }] });
  });

  it('401 without a token', async () => {
    const res = await call(t.url, 'POST', '/v1/logs', { token: null, body: sdkPayload('pf_otlp_noauth') });
    expect(res.status).toBe(401);
    expect((await logs({ project_id: 'pf_otlp_noauth' })).body.logs).toEqual([]);
  });
});
