// The Elasticsearch handshake, under the /es prefix, so Filebeat, Logstash's elasticsearch output and
// the official clients ship to our _bulk unchanged but for the URL (http://host:8080/es).
//
// Why a prefix and not GET / itself: GET / is the dashboard. Telling a shipper from a browser by its
// Accept header would answer curl, uptime checkers and link previews (Accept: */*) with ES JSON
// instead of the page, and a shipper that sends text/html somewhere in Accept with the page; every
// ES sender we know takes a path: Filebeat `output.elasticsearch.path`, Logstash `hosts => [".../es"]`
// (or `path`), Vector and Fluent Bit (`endpoints`, `Path`), the JS/Python/Go clients' node URL.
//
// What they call before the first bulk (read from their sources): Logstash HEAD / (health check),
// GET / (version.number, and since 7.14 the X-Elastic-Product header; it gives up without them),
// GET /_license (status active), HEAD|PUT /_index_template/<name>, GET /_xpack and /_ilm/policy when
// ILM is on; Filebeat GET / (version), GET|PUT /_ilm/policy/<name>, GET|HEAD|PUT
// /_index_template/<name> (/_template for legacy ones), GET /_license; the JS client checks
// X-Elastic-Product on every 2xx answer. The engine has no indices, templates or policies to manage:
// every such object "exists" and a PUT of one is acknowledged and dropped, so a shipper goes straight
// on to _bulk. All of it needs the ingest scope, as a secured Elasticsearch needs credentials for GET /.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { LIMITS } from '../event.js';

/** The Elasticsearch we answer as: the last 8.x, what Filebeat/Logstash 8 expect (9.x senders accept it too). */
export const ES_VERSION = '8.19.0';
export const ES_PRODUCT_HEADER = { 'x-elastic-product': 'Elasticsearch' } as const;

export function esInfo(): Record<string, unknown> {
  return {
    name: 'puraify-monitoring',
    cluster_name: 'puraify-monitoring',
    cluster_uuid: 'puraify-monitoring-0000',
    version: {
      number: ES_VERSION,
      build_flavor: 'default',
      build_type: 'puraify',
      build_hash: '0000000000000000000000000000000000000000',
      build_date: '2025-01-01T00:00:00.000Z',
      build_snapshot: false,
      lucene_version: '9.12.0',
      minimum_wire_compatibility_version: '7.17.0',
      minimum_index_compatibility_version: '7.0.0',
    },
    tagline: 'You Know, for Search',
  };
}

const LICENSE = {
  license: {
    status: 'active', uid: '00000000-0000-0000-0000-000000000000', type: 'basic',
    issue_date: '2025-01-01T00:00:00.000Z', issue_date_in_millis: 1735689600000,
    max_nodes: 1000, max_resource_units: null, issued_to: 'puraify-monitoring', issuer: 'puraify-monitoring', start_date_in_millis: -1,
  },
};

const XPACK = {
  build: { hash: '0000000', date: '2025-01-01T00:00:00.000Z' },
  license: { uid: LICENSE.license.uid, type: 'basic', mode: 'basic', status: 'active' },
  // ILM "available" so Filebeat/Logstash look the policy up (it exists) instead of failing a check
  features: { ilm: { available: true, enabled: true }, security: { available: true, enabled: true } },
  tagline: 'You know, for X',
};

const ACK = { acknowledged: true };
const Named = Type.Object({ name: Type.String({ maxLength: 255 }) });
const Answer = Type.Record(Type.String(), Type.Unknown(), { description: 'what Elasticsearch answers; see src/collector/es-api.ts' });

/** Template/policy kinds a shipper manages: each name exists, and a PUT is acknowledged. */
const MANAGED: { path: string; got: (name: string) => unknown }[] = [
  { path: '/_index_template/:name', got: (name) => ({ index_templates: [{ name, index_template: { index_patterns: [`${name}*`], composed_of: [], data_stream: {} } }] }) },
  { path: '/_template/:name', got: (name) => ({ [name]: { order: 0, index_patterns: [`${name}*`], settings: {}, mappings: {}, aliases: {} } }) },
  { path: '/_component_template/:name', got: (name) => ({ component_templates: [{ name, component_template: { template: {} } }] }) },
  { path: '/_ilm/policy/:name', got: (name) => ({ [name]: { version: 1, modified_date: '2025-01-01T00:00:00.000Z', policy: { phases: {} } } }) },
  { path: '/_ingest/pipeline/:name', got: (name) => ({ [name]: { description: 'accepted by puraify-monitoring; not run', processors: [] } }) },
  { path: '/_data_stream/:name', got: (name) => ({ data_streams: [{ name, timestamp_field: { name: '@timestamp' }, indices: [], generation: 1, status: 'GREEN', template: name }] }) },
];

/** Sets X-Elastic-Product on every answer of the scope it is added to (the ES clients check it). */
export function addProductHeader(app: FastifyInstance): void {
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-elastic-product', ES_PRODUCT_HEADER['x-elastic-product']);
    return payload;
  });
}

export async function esApiRoutes(app: FastifyInstance): Promise<void> {
  // PUT bodies (templates, policies) are read and dropped: any content type the senders use
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: LIMITS.maxBodyBytes }, (_req, _body, done) => done(null, undefined));
  addProductHeader(app);

  const config = { scope: 'ingest' as const };
  const schema = { response: { 200: Answer } };
  const info = async () => esInfo();
  // both /es and /es/ (a node URL with or without the slash), as two routes so each is in /openapi.json
  app.get('/', { config, schema, prefixTrailingSlash: 'slash' }, info);
  app.get('/', { config, schema, prefixTrailingSlash: 'no-slash' }, info);
  // HEAD / is Logstash's health check; fastify answers HEAD of the GET route with its headers
  app.get('/_license', { config, schema }, async () => LICENSE);
  app.get('/_xpack', { config, schema }, async () => XPACK);
  app.get('/_cluster/health', { config, schema }, async () => ({
    cluster_name: 'puraify-monitoring', status: 'green', timed_out: false, number_of_nodes: 1, number_of_data_nodes: 1,
    active_primary_shards: 0, active_shards: 0, relocating_shards: 0, initializing_shards: 0, unassigned_shards: 0,
  }));
  // node discovery: one node, this one, without a publish address, so a sniffing client keeps the URL it was given
  app.get('/_nodes', { config, schema }, async () => ({ _nodes: { total: 1, successful: 1, failed: 0 }, cluster_name: 'puraify-monitoring', nodes: {} }));
  app.get('/_nodes/*', { config, schema }, async () => ({ _nodes: { total: 1, successful: 1, failed: 0 }, cluster_name: 'puraify-monitoring', nodes: {} }));
  app.get('/_cat/*', { config }, async (req: FastifyRequest, reply: FastifyReply) => {
    const what = (req.params as { '*': string })['*'];
    if (what === 'health') return reply.send([{ cluster: 'puraify-monitoring', status: 'green', 'node.total': '1', 'node.data': '1' }]);
    return reply.send([]);
  });

  for (const m of MANAGED) {
    app.get(m.path, { config, schema: { params: Named, response: { 200: Answer } } }, async (req) => m.got((req.params as { name: string }).name));
    app.put(m.path, { config, schema: { params: Named, response: { 200: Answer } } }, async () => ACK);
    app.post(m.path, { config, schema: { params: Named, response: { 200: Answer } } }, async () => ACK);
  }

  // Anything else under the prefix: an Elasticsearch-shaped 404/405, so a client names what it wanted
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0];
    reply.code(404).header('x-elastic-product', 'Elasticsearch').send({
      error: {
        root_cause: [{ type: 'unsupported_operation_exception', reason: `${req.method} ${path} is not offered by this engine (only the bulk API and the handshake before it)` }],
        type: 'unsupported_operation_exception', reason: `${req.method} ${path} is not offered by this engine`,
        code: 'not_found', message: `no route ${req.method} ${path}`,
      },
      status: 404,
    });
  });
}
