// The Elasticsearch handshake under /es with the real @elastic/elasticsearch client (8.x, what
// Filebeat/Logstash 8 sit beside): info(), helpers.bulk and bulk land events with the auth forms the
// engine takes, and the calls Logstash and Filebeat make before their first bulk are answered as
// they need (version, product header, licence, templates, ILM policies).
import { Client, errors } from '@elastic/elasticsearch';
import { describe, expect, it } from 'vitest';
import { call, useEngine } from '../../test/helpers.js';
import { ES_VERSION } from './es-api.js';

const t = useEngine();

function client(auth: ConstructorParameters<typeof Client>[0]['auth']): Client {
  return new Client({ node: `${t.url}/es`, auth, maxRetries: 0, requestTimeout: 10_000 });
}

describe('@elastic/elasticsearch against /es', () => {
  it('info() passes the client\'s product check, with ApiKey, Bearer and basic auth; a wrong key is 401', async () => {
    const key = await t.key('pf_esc_info');
    for (const auth of [{ apiKey: Buffer.from(`shipper:${key.token}`).toString('base64') }, { bearer: key.token }, { username: 'elastic', password: key.token }]) {
      const info = await client(auth).info();
      expect(info.version.number).toBe(ES_VERSION);
      expect(info.tagline).toBe('You Know, for Search');
    }
    const bad = await client({ bearer: 'not-a-key' }).info().catch((e) => e);
    expect(bad).toBeInstanceOf(errors.ResponseError);
    expect((bad as errors.ResponseError).statusCode).toBe(401);
  });

  it('helpers.bulk and bulk store every document, the key naming the project; per-item results', async () => {
    const key = await t.key('pf_esc_bulk');
    const es = client({ apiKey: Buffer.from(`id:${key.token}`).toString('base64') });
    const docs = Array.from({ length: 250 }, (_, i) => ({
      '@timestamp': new Date(Date.UTC(2025, 11, 1, 10, 0, 0, i)).toISOString(),
      message: `order ${i} placed`, log: { level: i === 0 ? 'error' : 'info' }, service: { name: 'shop' }, order: { id: `o-${i}` },
    }));
    const stats = await es.helpers.bulk({ datasource: docs, onDocument: () => ({ create: { _index: 'logs-shop-default' } }), flushBytes: 10_000 });
    expect(stats).toMatchObject({ total: 250, successful: 250, failed: 0 });

    const direct = await es.bulk({ operations: [
      { index: { _index: 'logs-shop-default', _id: 'es-doc-1' } },
      { '@timestamp': '2025-12-01T11:00:00.000Z', message: 'refund failed', 'log.level': 'ERROR', error: { type: 'RefundError', message: 'no', stack_trace: 'RefundError: no\n    at refund (/app/r.js:2:3)' } },
      { update: { _id: 'x' } }, { doc: { a: 1 } },
    ] });
    expect(direct.errors).toBe(true);
    expect(direct.items[0].index).toMatchObject({ _id: 'es-doc-1', status: 201 });
    expect(direct.items[1].update).toMatchObject({ status: 400 });

    // the key's creation is audited into its project too
    const stored = (await t.logs({ project_id: 'pf_esc_bulk' })).filter((e) => e.event_type !== 'audit');
    expect(stored).toHaveLength(251);
    expect(stored[0]).toMatchObject({ engine: 'shop', severity: 'high', message: 'order 0 placed', timestamp: '2025-12-01T10:00:00.000Z',
      attributes: expect.objectContaining({ 'order.id': 'o-0', 'es.index': 'logs-shop-default' }) });
    expect(stored.filter((e) => e.severity === 'info')).toHaveLength(249);
    expect(stored[250]).toMatchObject({ id: 'es-doc-1', event_type: 'error', error_type: 'RefundError', severity: 'high', message: 'refund failed' });
  });
});

describe('what Logstash and Filebeat call before their first bulk', () => {
  const es = (method: string, path: string, body?: unknown) => call(t.url, method, `/es${path}`, { body });

  it('HEAD / and GET /: the version, tagline and X-Elastic-Product that Logstash checks (>= 7.14)', async () => {
    const head = await fetch(`${t.url}/es/`, { method: 'HEAD', headers: { authorization: `Bearer ${t.token}` } });
    expect(head.status).toBe(200);
    const root = await es('GET', '/');
    expect(root.status).toBe(200);
    expect(root.headers.get('x-elastic-product')).toBe('Elasticsearch');
    expect(root.body).toMatchObject({ version: { number: ES_VERSION, build_flavor: 'default' }, tagline: 'You Know, for Search' });
    expect((await call(t.url, 'GET', '/es/', { token: null })).status).toBe(401);
  });

  it('the licence is active; templates and ILM policies exist, and a PUT of one is acknowledged', async () => {
    expect((await es('GET', '/_license')).body.license.status).toBe('active');
    expect((await es('GET', '/_xpack')).body.features.ilm).toMatchObject({ available: true, enabled: true });
    for (const path of ['/_index_template/logstash', '/_template/filebeat-8.19.0', '/_ilm/policy/filebeat']) {
      const head = await fetch(`${t.url}/es${path}`, { method: 'HEAD', headers: { authorization: `Bearer ${t.token}` } });
      expect(head.status, path).toBe(200);
      expect((await es('GET', path)).status, path).toBe(200);
      const put = await es('PUT', path, { index_patterns: ['x-*'], template: { settings: {} } });
      expect(put.status, path).toBe(200);
      expect(put.body).toEqual({ acknowledged: true });
    }
    const ilm = await es('GET', '/_ilm/policy/filebeat');
    expect(ilm.body.filebeat.policy).toBeDefined();
  });

  it('the same _bulk under /es, with the product header; an unknown ES API is an ES-shaped 404', async () => {
    const body = `${JSON.stringify({ create: { _index: 'logs-generic-default' } })}\n${JSON.stringify({ '@timestamp': '2025-12-01T12:00:00Z', message: 'from logstash', labels: { project_id: 'pf_esc_ls' } })}\n`;
    const r = await fetch(`${t.url}/es/_bulk`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' }, body });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-elastic-product')).toBe('Elasticsearch');
    expect((await r.json() as any).items[0].create.status).toBe(201);
    expect(await t.logs({ project_id: 'pf_esc_ls' })).toHaveLength(1);
    const unknown = await es('GET', '/_search');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.type).toBe('unsupported_operation_exception');
  });

  it('GET / without the prefix stays the dashboard', async () => {
    const r = await fetch(`${t.url}/`, { headers: { accept: 'application/json' } });
    expect(r.headers.get('x-elastic-product')).toBeNull();
  });
});
