// The Elasticsearch bulk API with what Filebeat, Vector, Fluent Bit and Logstash send: NDJSON
// action/source pairs, ECS documents, gzip, ApiKey/Basic auth, and ES's per-item answer.
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { call, useEngine } from '../../test/helpers.js';
import { mapEcsDocument, parseBulk } from './es-bulk.js';

const t = useEngine();
const logs = t.logs;
const ndjson = (lines: object[]) => `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`;

async function bulk(path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(t.url + path, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/x-ndjson', ...headers }, body });
  return { status: res.status, body: await res.json() as any };
}

describe('POST /_bulk', () => {
  it('Filebeat: create actions with ECS documents, ApiKey auth, gzip; per-item answer', async () => {
    const docs = ndjson([
      { create: { _index: 'filebeat-8.15.0' } },
      { '@timestamp': '2025-12-01T10:00:00.000Z', message: 'GET /cart 200', log: { level: 'info', file: { path: '/var/log/app.log' }, offset: 42 }, service: { name: 'cart' }, labels: { project_id: 'pf_es' }, host: { name: 'web-1' }, agent: { type: 'filebeat' } },
      { create: { _index: 'filebeat-8.15.0' } },
      { '@timestamp': '2025-12-01T10:00:01.000Z', message: 'payment failed', 'log.level': 'ERROR', 'service.name': 'cart', labels: { project_id: 'pf_es' },
        error: { type: 'PaymentError', message: 'declined', stack_trace: 'PaymentError: declined\n    at pay (/app/pay.js:3:9)' }, trace: { id: 'abc' }, user: { id: 'u-5' }, event: { duration: 12_500_000 } },
    ]);
    const apiKey = Buffer.from(`filebeat:${t.token}`).toString('base64');
    const r = await bulk('/_bulk', gzipSync(docs), { authorization: `ApiKey ${apiKey}`, 'content-encoding': 'gzip', 'content-type': 'application/json' });
    expect(r.status).toBe(200);
    expect(r.body.errors).toBe(false);
    expect(r.body.items).toHaveLength(2);
    expect(r.body.items[0].create).toMatchObject({ _index: 'filebeat-8.15.0', status: 201, result: 'created', _id: expect.any(String) });
    const stored = await logs({ project_id: 'pf_es' });
    expect(stored[0]).toMatchObject({ engine: 'cart', severity: 'info', message: 'GET /cart 200', timestamp: '2025-12-01T10:00:00.000Z',
      attributes: { 'log.file.path': '/var/log/app.log', 'log.offset': '42', 'host.name': 'web-1', 'agent.type': 'filebeat', 'es.index': 'filebeat-8.15.0' } });
    expect(stored[1]).toMatchObject({ severity: 'high', event_type: 'error', error_type: 'PaymentError', message: 'payment failed', trace_id: 'abc', user_id: 'u-5', duration_ms: 12.5, fingerprint: expect.stringMatching(/.+/) });
    expect(stored[1].attributes['error.message']).toBe('declined');
    expect(stored[0].id).toBe(r.body.items[0].create._id);
  });

  it('Fluent Bit / Vector: index actions on /:index/_bulk, `log` and `timestamp` fields, the key\'s project, per-item errors', async () => {
    const key = await call(t.url, 'POST', '/monitoring/keys', { body: { name: 'fluent', scopes: ['ingest'], project_id: 'pf_es_key' } });
    const basic = Buffer.from(`fluent:${key.body.token}`).toString('base64');
    const docs = ndjson([
      { index: { _index: 'fluent-bit', _type: '_doc' } },
      { '@timestamp': '2025-12-01T10:00:00.000Z', log: 'worker started', stream: 'stdout', kubernetes: { pod_name: 'w-1' } },
      { index: { _id: 'vector-doc-1' } },
      { timestamp: '2025-12-01T10:00:02.000Z', message: 'from vector', host: 'n2', level: 'warn' },
      { index: {} },
      { '@timestamp': 'not a time', message: 'bad time' },
      { delete: { _id: 'x' } },
      { update: { _id: 'y' } },
      { doc: { message: 'z' } },
      { index: {} },
      { message: 'elsewhere', project_id: 'pf_not_mine' },
    ]);
    const r = await bulk('/logs-app/_bulk', docs, { authorization: `Basic ${basic}` });
    expect(r.status).toBe(200);
    expect(r.body.errors).toBe(true);
    expect(r.body.items.map((i: any) => [Object.keys(i)[0], Object.values(i)[0] && (Object.values(i)[0] as any).status])).toEqual([
      ['index', 201], ['index', 201], ['index', 400], ['delete', 400], ['update', 400], ['index', 403],
    ]);
    expect(r.body.items[1].index).toMatchObject({ _id: 'vector-doc-1', _index: 'logs-app' });
    expect(r.body.items[2].index.error).toMatchObject({ type: 'document_parsing_exception', reason: expect.stringContaining('timestamp') });
    const stored = await logs({ project_id: 'pf_es_key', attr: undefined, engine: undefined });
    const mine = stored.filter((e) => e.attributes['es.index']);
    expect(mine.map((e) => [e.message, e.severity])).toEqual([['worker started', ''], ['from vector', 'warning']]);
    expect(mine[0].attributes).toMatchObject({ stream: 'stdout', 'kubernetes.pod_name': 'w-1', 'es.index': 'fluent-bit' });
    expect(mine[1].id).toBe('vector-doc-1');
    // a retry with the same _id is not stored twice
    await bulk('/logs-app/_bulk', ndjson([{ index: { _id: 'vector-doc-1' } }, { message: 'from vector' }]), { authorization: `Basic ${basic}` });
    expect((await logs({ project_id: 'pf_es_key', id: 'vector-doc-1' }))).toHaveLength(1);
  });

  it('a malformed action line is a 400 for the request', async () => {
    const r = await bulk('/_bulk', '{"index": \n{"message": "x"}\n');
    expect(r.status).toBe(400);
    const missing = await bulk('/_bulk', '{"index": {}}\n');
    expect(missing.status).toBe(400);
  });
});

describe('mapping', () => {
  it('dotted and nested ECS alike; canonical fields pass', () => {
    expect(mapEcsDocument({ 'log.level': 'debug', service: { name: 's' }, project_id: 'p', session_id: 'x', event: { outcome: 'failure' } }, undefined))
      .toEqual({ severity: 'debug', engine: 's', status: 'error', project_id: 'p', session_id: 'x' });
    const p = parseBulk('{"create":{"_index":"i","_id":"1"}}\n{"message":"m"}\n', undefined);
    expect(p).toEqual({ ok: true, ops: [{ action: 'create', index: 'i', id: '1', doc: { message: 'm', id: '1', attributes: { 'es.index': 'i' } } }] });
  });
});
