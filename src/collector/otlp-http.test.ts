// OTLP/HTTP with the real OpenTelemetry JS exporters (protobuf and JSON, gzip on and off), the
// project taken from the key, Content-Encoding on every ingest route, and zip bombs.
import { gzipSync, deflateSync, deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { call, qs, useEngine } from '../../test/helpers.js';
import { messageType } from './proto.js';

const t = useEngine();
const logs = t.logs;
const projectKey = async (project: string): Promise<string> => (await t.key(project)).token;

/** Emits through a real LoggerProvider + exporter and waits until the engine answered. */
async function emitLogs(exporter: ProtoLogExporter | JsonLogExporter, resource: Record<string, string>, n: number): Promise<void> {
  const provider = new LoggerProvider({ resource: resourceFromAttributes(resource), processors: [new BatchLogRecordProcessor({ exporter })] });
  const logger = provider.getLogger('checkout-logger', '2.0.0');
  for (let i = 0; i < n; i++) {
    logger.emit({
      severityNumber: i === 0 ? SeverityNumber.ERROR : SeverityNumber.INFO,
      severityText: i === 0 ? 'ERROR' : 'INFO',
      body: i === 0 ? 'payment failed' : `order ${i} placed`,
      timestamp: new Date('2026-11-30T10:00:00.000Z').getTime() + i,
      attributes: i === 0
        ? { 'exception.type': 'CardDeclined', 'exception.stacktrace': 'CardDeclined: no\n    at charge (/app/pay.js:10:5)\n    at run (/app/main.js:3:1)', 'enduser.id': 'u-1' }
        : { 'order.id': `o-${i}`, 'session.id': 'sess-1' },
    });
  }
  await provider.forceFlush();
  await provider.shutdown();
}

describe('OTLP logs with the real exporters', () => {
  for (const compression of [CompressionAlgorithm.NONE, CompressionAlgorithm.GZIP]) {
    it(`protobuf exporter, compression ${compression}: every record stored and mapped`, async () => {
      const project = `pf_proto_${compression}`;
      const exporter = new ProtoLogExporter({ url: `${t.url}/v1/logs`, headers: { authorization: `Bearer ${t.token}` }, compression });
      await emitLogs(exporter, { 'service.name': 'checkout', 'puraify.project_id': project, 'service.version': '1.2.3' }, 50);
      const stored = await logs({ project_id: project });
      expect(stored).toHaveLength(50);
      expect(stored[0]).toMatchObject({
        engine: 'checkout', severity: 'high', status: 'error', event_type: 'error', error_type: 'CardDeclined',
        message: 'payment failed', user_id: 'u-1', timestamp: '2026-11-30T10:00:00.000Z', fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/),
      });
      expect(stored[0].stack).toContain('at charge (/app/pay.js:10:5)');
      expect(stored[7]).toMatchObject({
        severity: 'info', message: 'order 7 placed', session_id: 'sess-1', timestamp: '2026-11-30T10:00:00.007Z',
        attributes: expect.objectContaining({ 'order.id': 'o-7', 'service.version': '1.2.3', 'otel.scope.name': 'checkout-logger', 'otel.scope.version': '2.0.0' }),
      });
    });
  }

  it('JSON exporter with gzip', async () => {
    const exporter = new JsonLogExporter({ url: `${t.url}/v1/logs`, headers: { authorization: `Bearer ${t.token}` }, compression: CompressionAlgorithm.GZIP });
    await emitLogs(exporter, { 'service.name': 'mailer', 'puraify.project_id': 'pf_json_gzip' }, 20);
    const stored = await logs({ project_id: 'pf_json_gzip' });
    expect(stored).toHaveLength(20);
    expect(stored[3]).toMatchObject({ engine: 'mailer', message: 'order 3 placed', severity: 'info' });
  });

  it('a key bound to one project fills the project; the admin token without one gets 400 naming the field', async () => {
    const token = await projectKey('pf_from_key');
    const exporter = new ProtoLogExporter({ url: `${t.url}/v1/logs`, headers: { authorization: `Bearer ${token}` }, compression: CompressionAlgorithm.GZIP });
    await emitLogs(exporter, { 'service.name': 'no-project-attr' }, 5);
    expect(await logs({ project_id: 'pf_from_key', engine: 'no-project-attr' })).toHaveLength(5);

    const body = { resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'x' } }] }, scopeLogs: [{ logRecords: [{ body: { stringValue: 'orphan' } }] }] }] };
    const admin = await call(t.url, 'POST', '/v1/logs', { body });
    expect(admin.status).toBe(400);
    // a JSON google.rpc.Status: gRPC code, message, and the field named in a BadRequest detail
    expect(admin.body).toEqual({
      code: 3, message: expect.stringContaining('resource.attributes.puraify.project_id'),
      details: [
        { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'invalid_events', domain: 'puraify-monitoring', metadata: {} },
        { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [
          { field: 'resourceLogs[0].scopeLogs[0].logRecords[0].resource.attributes.puraify.project_id', description: expect.stringContaining('required') }] },
      ],
    });
    const unauthorized = await call(t.url, 'POST', '/v1/logs', { body, token: 'wrong-token' });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.body).toMatchObject({ code: 16, message: expect.stringContaining('unknown'), details: [{ reason: 'unauthorized' }] });
    // a project key may still not write to another project
    const other = await call(t.url, 'POST', '/monitoring/logs', { token, body: { project_id: 'pf_someone_else', message: 'x' } });
    expect(other.status).toBe(400);
    expect(other.body.error.details.rejected[0].errors[0]).toMatchObject({ field: 'project_id', message: expect.stringContaining('may not write') });
    // plain /monitoring/logs: the key's project when the event names none
    const plain = await call(t.url, 'POST', '/monitoring/logs', { token, body: [{ message: 'from key' }] });
    expect(plain.status).toBe(200);
    expect((await logs({ project_id: 'pf_from_key', q: 'from key' }))).toHaveLength(1);
  });

  it('protobuf failures answer a protobuf google.rpc.Status; partial success answers protobuf', async () => {
    const Status = messageType('google.rpc.Status');
    const bad = await fetch(`${t.url}/v1/logs`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/x-protobuf' }, body: Buffer.from([0x0a, 0xff, 0xff, 0x01]) });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/x-protobuf');
    const status = Status.toObject(Status.decode(Buffer.from(await bad.arrayBuffer()))) as any;
    expect(status).toMatchObject({ code: 3, message: expect.stringContaining('ExportLogsServiceRequest') });
    // details are Any-packed google.rpc messages: ErrorInfo (our code) and BadRequest (the field)
    expect(status.details.map((d: any) => d.type_url)).toEqual(['type.googleapis.com/google.rpc.ErrorInfo', 'type.googleapis.com/google.rpc.BadRequest']);
    const info = messageType('google.rpc.ErrorInfo').decode(status.details[0].value) as any;
    expect(info).toMatchObject({ reason: 'invalid_protobuf', domain: 'puraify-monitoring' });
    const fields = messageType('google.rpc.BadRequest').decode(status.details[1].value) as any;
    expect(fields.fieldViolations[0]).toMatchObject({ field: '(body)', description: expect.stringContaining('protobuf') });

    const Req = messageType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
    const Res = messageType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse');
    const req = Req.encode(Req.fromObject({ resourceLogs: [
      { resource: { attributes: [{ key: 'project_id', value: { stringValue: 'pf_partial_pb' } }] }, scopeLogs: [{ logRecords: [{ body: { stringValue: 'kept' } }] }] },
      { resource: { attributes: [] }, scopeLogs: [{ logRecords: [{ body: { stringValue: 'no project' } }, { body: { stringValue: 'no project 2' } }] }] },
    ] })).finish();
    const part = await fetch(`${t.url}/v1/logs`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/x-protobuf' }, body: req });
    expect(part.status).toBe(200);
    const ans = Res.toObject(Res.decode(Buffer.from(await part.arrayBuffer())), { longs: Number }) as any;
    expect(ans.partialSuccess).toEqual({ rejectedLogRecords: 2, errorMessage: expect.stringContaining('resourceLogs[1].scopeLogs[0].logRecords[0]: resource.attributes.puraify.project_id') });
    expect(await logs({ project_id: 'pf_partial_pb' })).toHaveLength(1);
  });
});

describe('OTLP traces with the real exporter', () => {
  for (const compression of [CompressionAlgorithm.NONE, CompressionAlgorithm.GZIP]) {
    it(`spans become span events and recorded exceptions error events (compression ${compression})`, async () => {
      const project = `pf_trace_${compression}`;
      const exporter = new OTLPTraceExporter({ url: `${t.url}/v1/traces`, headers: { authorization: `Bearer ${t.token}` }, compression });
      const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'billing', 'puraify.project_id': project }),
        spanProcessors: [new SimpleSpanProcessor(exporter)],
      });
      const tracer = provider.getTracer('billing-tracer');
      const root = tracer.startSpan('POST /charge', { attributes: { 'session.id': 'sess-77', 'http.method': 'POST' } });
      const traceId = root.spanContext().traceId;
      const { trace, context } = await import('@opentelemetry/api');
      const child = tracer.startSpan('stripe.charge', {}, trace.setSpan(context.active(), root));
      const err = new TypeError('card number invalid');
      err.stack = 'TypeError: card number invalid\n    at charge (/app/stripe.js:41:11)\n    at handler (/app/routes.js:9:3)';
      child.recordException(err);
      child.setStatus({ code: SpanStatusCode.ERROR, message: 'charge failed' });
      child.end();
      root.setStatus({ code: SpanStatusCode.OK });
      root.end();
      await provider.forceFlush();
      await provider.shutdown();

      const stored = await logs({ project_id: project, trace_id: traceId });
      expect(stored).toHaveLength(3);
      const spans = stored.filter((e) => e.event_type === 'span');
      const rootEv = spans.find((e) => e.action === 'POST /charge');
      const childEv = spans.find((e) => e.action === 'stripe.charge');
      expect(rootEv).toMatchObject({ engine: 'billing', status: 'ok', session_id: 'sess-77', span_id: root.spanContext().spanId, attributes: expect.objectContaining({ 'http.method': 'POST', 'otel.span_kind': 'internal' }) });
      expect(rootEv.duration_ms).toBeGreaterThanOrEqual(0);
      expect(childEv).toMatchObject({ status: 'error', message: 'charge failed', attributes: expect.objectContaining({ 'otel.parent_span_id': root.spanContext().spanId }) });
      const error = stored.find((e) => e.event_type === 'error');
      expect(error).toMatchObject({
        engine: 'billing', error_type: 'TypeError', message: 'card number invalid', severity: 'high', action: 'stripe.charge',
        trace_id: traceId, span_id: child.spanContext().spanId,
      });
      // grouped by its stack exactly like the same error sent to /monitoring/logs
      const direct = await call(t.url, 'POST', '/monitoring/logs', { body: { project_id: project, event_type: 'error', error_type: 'TypeError', message: 'other text', stack: err.stack } });
      expect(direct.status).toBe(200);
      const again = await logs({ project_id: project, id: direct.body.ids[0] });
      expect(again[0].fingerprint).toBe(error.fingerprint);
      // the trace reads in session replay too
      const replay = await call(t.url, 'GET', `/monitoring/sessions/sess-77?${qs({ project_id: project })}`);
      expect(replay.status).toBe(200);
      expect(JSON.stringify(replay.body)).toContain('POST /charge');
    });
  }
});

describe('415: every content type a route reads is named', () => {
  const routes: [string, string[]][] = [
    ['/monitoring/logs', ['application/json', 'application/x-ndjson', 'application/ndjson', 'application/jsonl', 'text/plain']],
    ['/v1/logs', ['application/json', 'application/x-protobuf', 'application/protobuf']],
    ['/v1/traces', ['application/json', 'application/x-protobuf', 'application/protobuf']],
    ['/loki/api/v1/push', ['application/json', 'text/plain', 'application/x-protobuf', 'application/protobuf']],
    ['/_bulk', ['application/x-ndjson', 'application/json', 'text/plain', 'application/vnd.elasticsearch+x-ndjson', 'application/vnd.elasticsearch+json']],
    ['/es/_bulk', ['application/x-ndjson', 'application/json', 'text/plain', 'application/vnd.elasticsearch+x-ndjson', 'application/vnd.elasticsearch+json']],
  ];
  for (const [path, types] of routes) {
    it(`${path}`, async () => {
      const r = await call(t.url, 'POST', path, { raw: '<xml/>', contentType: 'application/xml' });
      expect(r.status).toBe(415);
      const message: string = path.startsWith('/v1/') ? r.body.message : r.body.error.message;
      expect(message).toContain('"application/xml"');
      for (const type of types) expect(message, type).toContain(type);
      // and each listed type is read (not a 415)
      for (const type of types) {
        const ok = await call(t.url, 'POST', path, { raw: '', contentType: type });
        expect(ok.status, `${path} ${type}`).not.toBe(415);
      }
    });
  }
});

describe('Content-Encoding on every ingest route', () => {
  const event = (project: string, i = 0) => ({ project_id: project, message: `encoded ${i}` });

  it('gzip, deflate (zlib and raw) and br on /monitoring/logs; an unknown encoding is 415', async () => {
    const { brotliCompressSync } = await import('node:zlib');
    const cases: [string, (b: Buffer) => Buffer][] = [['gzip', gzipSync], ['deflate', deflateSync], ['deflate', deflateRawSync], ['br', brotliCompressSync]];
    for (const [i, [enc, fn]] of cases.entries()) {
      const r = await call(t.url, 'POST', '/monitoring/logs', { raw: fn(Buffer.from(JSON.stringify([event('pf_enc', i)]))), headers: { 'content-encoding': enc } });
      expect(r.status, `${enc} ${i}`).toBe(200);
    }
    expect((await logs({ project_id: 'pf_enc' })).map((e) => e.message)).toEqual(['encoded 0', 'encoded 1', 'encoded 2', 'encoded 3']);
    const zstd = await call(t.url, 'POST', '/monitoring/logs', { raw: 'x', headers: { 'content-encoding': 'zstd' } });
    expect(zstd.status).toBe(415);
    expect(zstd.body.error.message).toContain('Content-Encoding');
    const broken = await call(t.url, 'POST', '/monitoring/logs', { raw: Buffer.from('not gzip at all'), headers: { 'content-encoding': 'gzip' } });
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBe('invalid_encoding');
  });

  it('a zip bomb is cut off at the 5 MB decoded limit with 413, and the engine keeps serving', async () => {
    const bomb = gzipSync(Buffer.alloc(200 * 1024 * 1024, 0x20)); // 200 MB of spaces in ~200 KB
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const before = process.memoryUsage().rss;
    for (const path of ['/monitoring/logs', '/v1/logs']) {
      const r = await call(t.url, 'POST', path, { raw: bomb, headers: { 'content-encoding': 'gzip' } });
      expect(r.status, path).toBe(413);
    }
    const pb = await fetch(`${t.url}/v1/traces`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' }, body: bomb });
    expect(pb.status).toBe(413);
    expect(process.memoryUsage().rss - before).toBeLessThan(150 * 1024 * 1024);
    const ok = await call(t.url, 'POST', '/monitoring/logs', { raw: gzipSync(JSON.stringify(event('pf_after_bomb'))), headers: { 'content-encoding': 'gzip' } });
    expect(ok.status).toBe(200);
  });
});
