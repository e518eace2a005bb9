import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, qs, startEngine, type TestEngine } from '../../test/helpers.js';

// The spec's own examples, exactly as written.
const EXECUTION_LOG = {
  project_id: 'pf_123', event_type: 'execution', platform: 'Slack', action: 'send_message',
  status: 'success', duration_ms: 842, timestamp: '2025-07-25T14:01:00Z',
};
const ERROR_INPUT = {
  project_id: 'pf_880', flow_id: 'lead_submit', engine: 'execution', status: 'error', error_type: 'api_timeout',
  platform: 'Notion', duration_ms: 4232, timestamp: '2025-07-25T18:45:00Z',
};
const ALERT_TRIGGER = {
  project_id: 'pf_123', event_type: 'error', severity: 'high', message: 'Failed to send message – token expired',
  triggered_by: 'execution_engine', notified: true,
};

let t: TestEngine;
beforeAll(async () => {
  t = await startEngine();
});
afterAll(async () => {
  await t.close();
});

const logs = (params: Record<string, string | number | undefined>) => call(t.url, 'GET', `/monitoring/logs?${qs(params)}`);

describe('the spec examples', () => {
  it('accepts the execution log and finds it again by every filter it carries', async () => {
    const res = await call(t.url, 'POST', '/monitoring/logs', { body: EXECUTION_LOG });
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(1);
    expect(res.body.rejected).toEqual([]);
    const id = res.body.ids[0];
    for (const f of [
      { project_id: 'pf_123', event_type: 'execution' },
      { project_id: 'pf_123', platform: 'Slack', action: 'send_message' },
      { project_id: 'pf_123', status: 'success' },
      { project_id: 'pf_123', from: '2025-07-25T14:00:00Z', to: '2025-07-25T14:02:00Z' },
      { project_id: 'pf_123', id },
    ]) {
      const r = await logs(f);
      expect(r.status, JSON.stringify(f)).toBe(200);
      const found = r.body.logs.find((l: any) => l.id === id);
      expect(found, JSON.stringify(f)).toBeDefined();
      expect(found).toMatchObject({ platform: 'Slack', action: 'send_message', status: 'success', duration_ms: 842, timestamp: '2025-07-25T14:01:00.000Z' });
    }
    const miss = await logs({ project_id: 'pf_123', platform: 'Notion', id });
    expect(miss.body.logs).toEqual([]);
  });

  it('accepts the error input (no event_type: it becomes error) and finds it by flow, engine and error type', async () => {
    const res = await call(t.url, 'POST', '/monitoring/logs', { body: ERROR_INPUT });
    expect(res.status).toBe(200);
    const r = await logs({ project_id: 'pf_880', flow_id: 'lead_submit', engine: 'execution', error_type: 'api_timeout', platform: 'Notion', status: 'error' });
    expect(r.body.logs).toHaveLength(1);
    expect(r.body.logs[0]).toMatchObject({ event_type: 'error', duration_ms: 4232, timestamp: '2025-07-25T18:45:00.000Z' });
  });

  it('accepts the alert trigger on /monitoring/alert, flags it as an alert and keeps its event_type', async () => {
    const res = await call(t.url, 'POST', '/monitoring/alert', { body: ALERT_TRIGGER });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: expect.any(String), notified: false, channels: [] });
    const r = await logs({ project_id: 'pf_123', id: res.body.id });
    expect(r.body.logs[0]).toMatchObject({ event_type: 'error', severity: 'high', alert: true, engine: 'execution', triggered_by: 'execution_engine', message: ALERT_TRIGGER.message });
    expect(r.body.logs[0].attributes).toEqual({ notified: 'true' });
    const alertsOnly = await logs({ project_id: 'pf_123', alert: 'true' });
    expect(alertsOnly.body.logs.map((l: any) => l.id)).toEqual([res.body.id]);
  });

  it('accepts the spec query output shape (type instead of event_type)', async () => {
    const res = await call(t.url, 'POST', '/monitoring/logs', { body: [
      { project_id: 'pf_out', type: 'action_error', platform: 'Slack', message: 'Invalid token', timestamp: '2025-07-25T17:00:00Z' },
      { project_id: 'pf_out', type: 'flow_run', status: 'success', duration_ms: 178, timestamp: '2025-07-25T17:01:20Z' },
    ] });
    expect(res.body.accepted).toBe(2);
    const r = await logs({ project_id: 'pf_out', order: 'asc' });
    expect(r.body.logs.map((l: any) => l.event_type)).toEqual(['action_error', 'flow_run']);
  });
});

describe('bodies', () => {
  it('takes NDJSON and rejects a broken line alone', async () => {
    const body = [
      JSON.stringify({ project_id: 'pf_nd', message: 'one' }),
      '{"project_id": "pf_nd", "message": ',
      '',
      JSON.stringify({ project_id: 'pf_nd', message: 'three' }),
    ].join('\n');
    const res = await call(t.url, 'POST', '/monitoring/logs', { raw: body, contentType: 'application/x-ndjson' });
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(2);
    expect(res.body.rejected).toEqual([{ index: 1, errors: [{ field: '(line)', message: expect.stringContaining('not valid JSON') }] }]);
    const r = await logs({ project_id: 'pf_nd', order: 'asc' });
    expect(r.body.logs.map((l: any) => l.message).sort()).toEqual(['one', 'three']);
  });

  it('keeps the good events of a mixed batch and names the bad one', async () => {
    const res = await call(t.url, 'POST', '/monitoring/logs', { body: [
      { project_id: 'pf_mix', message: 'good' },
      { project_id: 'pf_mix', duration_ms: -5 },
      { project_id: 'pf_mix', message: 'also good', custom_field: 'x1', attributes: { region: 'eu', n: 3 } },
    ] });
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(2);
    expect(res.body.rejected).toHaveLength(1);
    expect(res.body.rejected[0].index).toBe(1);
    expect(res.body.rejected[0].errors[0].field).toBe('duration_ms');
    const byAttr = await logs({ project_id: 'pf_mix', 'attr.custom_field': 'x1' });
    expect(byAttr.body.logs).toHaveLength(1);
    expect(byAttr.body.logs[0].attributes).toEqual({ region: 'eu', n: '3', custom_field: 'x1' });
    expect((await logs({ project_id: 'pf_mix', 'attr.region': 'eu' })).body.logs).toHaveLength(1);
    expect((await logs({ project_id: 'pf_mix', 'attr.region': 'us' })).body.logs).toHaveLength(0);
    // an absent attribute is not the empty string
    expect((await logs({ project_id: 'pf_mix', 'attr.region': '' })).body.logs).toHaveLength(0);
  });

  it('does not store a resent id twice', async () => {
    const ev = { id: 'evt-once-1', project_id: 'pf_dup', message: 'hello' };
    const a = await call(t.url, 'POST', '/monitoring/logs', { body: ev });
    const b = await call(t.url, 'POST', '/monitoring/logs', { body: [ev, ev, { ...ev, id: 'evt-once-2' }] });
    expect(a.body.duplicates).toBe(0);
    expect(b.status).toBe(200);
    expect(b.body.duplicates).toBe(2);
    const r = await logs({ project_id: 'pf_dup' });
    expect(r.body.logs.map((l: any) => l.id).sort()).toEqual(['evt-once-1', 'evt-once-2']);
    // the same id in another project is another event
    await call(t.url, 'POST', '/monitoring/logs', { body: { ...ev, project_id: 'pf_dup2' } });
    expect((await logs({ project_id: 'pf_dup2' })).body.logs).toHaveLength(1);
  });

  it('keeps at most 100 attributes and counts the dropped ones', async () => {
    const attributes: Record<string, string> = {};
    for (let i = 0; i < 130; i++) attributes[`k${i}`] = `v${i}`;
    const res = await call(t.url, 'POST', '/monitoring/logs', { body: { project_id: 'pf_attrs', attributes } });
    expect(res.status).toBe(200);
    expect(res.body.dropped_attributes).toBe(30);
    const r = await logs({ project_id: 'pf_attrs' });
    expect(Object.keys(r.body.logs[0].attributes)).toHaveLength(100);
  });
});

describe('bad input: a clear 4xx naming the field, nothing half-stored', () => {
  const future = new Date(Date.now() + 3 * 24 * 3600 * 1000).toISOString();
  const big = 'x'.repeat(70 * 1024);
  const cases: { name: string; raw?: string; body?: unknown; contentType?: string; status: number; field: string }[] = [
    { name: 'broken JSON', raw: '{"project_id": "pf_bad",', status: 400, field: '(body)' },
    { name: 'not JSON at all', raw: 'hello world', status: 400, field: '(body)' },
    { name: 'empty body', raw: '', status: 400, field: '(body)' },
    { name: 'empty array', body: [], status: 400, field: '(body)' },
    { name: 'a number', body: 42, status: 400, field: '(event)' },
    { name: 'null', body: null, status: 400, field: '(event)' },
    { name: 'an array of strings', body: ['a', 'b'], status: 400, field: '(event)' },
    { name: 'missing project_id', body: { message: 'x' }, status: 400, field: 'project_id' },
    { name: 'project_id with spaces', body: { project_id: 'pf bad' }, status: 400, field: 'project_id' },
    { name: 'project_id a number', body: { project_id: 123 }, status: 400, field: 'project_id' },
    { name: 'negative duration', body: { project_id: 'pf_bad', duration_ms: -1 }, status: 400, field: 'duration_ms' },
    { name: 'duration as string', body: { project_id: 'pf_bad', duration_ms: '842' }, status: 400, field: 'duration_ms' },
    { name: 'retries as float', body: { project_id: 'pf_bad', retries: 1.5 }, status: 400, field: 'retries' },
    { name: 'status as object', body: { project_id: 'pf_bad', status: { a: 1 } }, status: 400, field: 'status' },
    { name: 'message as array', body: { project_id: 'pf_bad', message: ['a'] }, status: 400, field: 'message' },
    { name: 'future timestamp', body: { project_id: 'pf_bad', timestamp: future }, status: 400, field: 'timestamp' },
    { name: 'garbage timestamp', body: { project_id: 'pf_bad', timestamp: 'yesterday' }, status: 400, field: 'timestamp' },
    { name: 'timestamp in seconds', body: { project_id: 'pf_bad', timestamp: 1753452060 }, status: 400, field: 'timestamp' },
    { name: 'event over 64 KB', body: { project_id: 'pf_bad', message: big }, status: 400, field: '(event)' },
    { name: 'attributes not an object', body: { project_id: 'pf_bad', attributes: 'x' }, status: 400, field: 'attributes' },
    { name: 'empty id', body: { project_id: 'pf_bad', id: '' }, status: 400, field: 'id' },
    { name: 'NDJSON of only broken lines', raw: '{x\n{y', contentType: 'application/x-ndjson', status: 400, field: '(line)' },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const res = await call(t.url, 'POST', '/monitoring/logs', { body: c.body, raw: c.raw ?? (c.body === undefined ? '' : undefined), contentType: c.contentType });
      expect(res.status).toBe(c.status);
      expect(res.body.error.code).toEqual(expect.any(String));
      expect(res.body.error.message).toEqual(expect.any(String));
      const fields = JSON.stringify(res.body.error.details);
      expect(fields).toContain(`"field":"${c.field}"`);
    });
  }

  it('a 6 MB body is 413', async () => {
    const res = await call(t.url, 'POST', '/monitoring/logs', { raw: JSON.stringify({ project_id: 'pf_bad', message: 'y'.repeat(6 * 1024 * 1024) }) });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
  });

  it('10,001 events is 413 and none is stored', async () => {
    const events = Array.from({ length: 10_001 }, () => ({ project_id: 'pf_bad' }));
    const res = await call(t.url, 'POST', '/monitoring/logs', { body: events });
    expect(res.status).toBe(413);
    expect(res.body.error.message).toContain('10001');
  });

  it('an unsupported content type is 415', async () => {
    const res = await call(t.url, 'POST', '/monitoring/logs', { raw: '<xml/>', contentType: 'application/xml' });
    expect(res.status).toBe(415);
  });

  it('stored nothing for any of the bad inputs', async () => {
    const r = await logs({ project_id: 'pf_bad' });
    expect(r.status).toBe(200);
    expect(r.body.logs).toEqual([]);
  });
});

describe('auth', () => {
  it('401 without a token or with a wrong one', async () => {
    const none = await call(t.url, 'POST', '/monitoring/logs', { token: null, body: EXECUTION_LOG });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    const wrong = await call(t.url, 'GET', '/monitoring/logs', { token: 'nope-nope-nope-nope' });
    expect(wrong.status).toBe(401);
  });

  it('health needs no token; ready says storage answers', async () => {
    expect((await call(t.url, 'GET', '/health', { token: null })).body).toEqual({ status: 'ok' });
    expect((await call(t.url, 'GET', '/ready', { token: null })).body).toEqual({ status: 'ready', can_write: true });
  });
});
