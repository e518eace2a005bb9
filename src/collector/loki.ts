// Loki push API receiver: POST /loki/api/v1/push, as Promtail, Grafana Alloy, Vector and Fluent Bit
// send it: protobuf + snappy (the Promtail/Alloy default; push.proto vendored from Loki) or JSON,
// optionally gzip. Stream labels become fields where the name says so and attributes otherwise;
// a JSON log line is parsed into fields (and logger conventions then apply, see ingest.ts).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { FieldError } from '../event.js';
import { HttpError } from '../http/errors.js';
import { ingestScope, type IngestRouteOptions } from './ingest-route.js';
import { unsnappy } from './decompress.js';
import { messageType } from './proto.js';
import { applyShipperLine, severityFromLevel } from './logger-conventions.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A push may carry more, smaller lines than a JSON batch (Promtail batches by bytes: 1 MiB). */
export const MAX_ENTRIES = 50_000;

/** `{job="api", level="info"}` (Prometheus label syntax, as the protobuf push carries labels) → pairs. */
export function parseLabels(s: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  const body = s.trim();
  if (!body.startsWith('{') || !body.endsWith('}')) return undefined;
  const re = /\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  const inner = body.slice(1, -1);
  let pos = 0;
  while (pos < inner.length) {
    re.lastIndex = pos;
    const m = re.exec(inner);
    if (!m) return inner.slice(pos).trim() === '' ? out : undefined;
    out.set(m[1], m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c)));
    pos = re.lastIndex;
  }
  return out;
}

/** Label names that are fields; the first present wins. */
const ENGINE_LABELS = ['service_name', 'job', 'service', 'app', 'container'];
const SEVERITY_LABELS = ['level', 'detected_level', 'severity', 'lvl'];

/** One entry with its stream's labels → a canonical input. */
export function mapEntry(labels: Map<string, string>, tsMs: number | undefined, line: string, metadata: Map<string, string> | undefined, tenant: string | undefined): Obj {
  let ev: Obj;
  const trimmed = line.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(line);
      ev = isObj(parsed) ? parsed : { message: line };
      applyShipperLine(ev);
    } catch {
      ev = { message: line };
    }
  } else ev = { message: line };
  // the entry's time is the log's time (the shipper took it from the line or the file)
  if (tsMs !== undefined && ev.timestamp === undefined) ev.timestamp = tsMs;

  const attrs: Obj = isObj(ev.attributes) ? ev.attributes : {};
  const used = new Set<string>();
  if (ev.project_id === undefined) {
    const p = labels.get('project_id') ?? tenant;
    if (p) ev.project_id = p;
  }
  used.add('project_id');
  if (ev.engine === undefined) {
    for (const l of ENGINE_LABELS) {
      const v = labels.get(l);
      if (v) {
        ev.engine = v;
        used.add(l);
        break;
      }
    }
  }
  if (ev.severity === undefined && ev.level === undefined) {
    for (const l of SEVERITY_LABELS) {
      const s = severityFromLevel(labels.get(l));
      if (s) {
        ev.severity = s;
        used.add(l);
        break;
      }
    }
  }
  for (const [k, v] of labels) if (!used.has(k) && !(k in attrs)) attrs[k] = v;
  if (metadata) {
    for (const [k, v] of metadata) {
      if ((k === 'trace_id' || k === 'traceID' || k === 'trace.id') && ev.trace_id === undefined) ev.trace_id = v;
      else if ((k === 'span_id' || k === 'spanID') && ev.span_id === undefined) ev.span_id = v;
      else if (!(k in attrs)) attrs[k] = v;
    }
  }
  if (Object.keys(attrs).length > 0) ev.attributes = attrs;
  return ev;
}

/** A protobuf integer: a number, or a Long for 64-bit fields. */
const int = (v: unknown): number => (typeof v === 'number' ? v : isObj(v) && typeof v.toNumber === 'function' ? (v.toNumber as () => number)() : Number(v ?? 0));

/** Loki's nanosecond timestamps (a digit string in JSON) → ms. */
function nanosString(v: unknown): number | undefined {
  if (typeof v === 'string' && /^\d{1,25}$/.test(v)) return Number(BigInt(v) / 1_000_000n);
  if (typeof v === 'number' && Number.isFinite(v)) return Math.floor(v / 1e6);
  return undefined;
}

export type LokiParsed =
  | { ok: true; items: (Obj | undefined)[]; errors: Map<number, FieldError[]> }
  | { ok: false; status: 400 | 413; message: string; errors: FieldError[] };

const tooMany = (): LokiParsed => ({ ok: false, status: 413, message: `at most ${MAX_ENTRIES} entries per push`, errors: [{ field: 'streams', message: `more than ${MAX_ENTRIES} entries` }] });

/** The JSON push: {streams: [{stream: {label: value}, values: [[ns, line, {metadata}?], ...]}]}. */
export function mapLokiJson(value: unknown, tenant?: string): LokiParsed {
  if (!isObj(value) || !Array.isArray(value.streams)) return { ok: false, status: 400, message: 'the body is not a Loki push: streams must be an array', errors: [{ field: 'streams', message: 'must be an array' }] };
  const items: (Obj | undefined)[] = [];
  const errors = new Map<number, FieldError[]>();
  for (const [si, s] of value.streams.entries()) {
    const labelObj = isObj(s) && isObj(s.stream) ? s.stream : isObj(s) && isObj(s.labels) ? s.labels : {};
    const labels = new Map(Object.entries(labelObj).map(([k, v]) => [k, String(v)] as [string, string]));
    const values = isObj(s) && Array.isArray(s.values) ? s.values : [];
    for (const [vi, entry] of values.entries()) {
      if (items.length >= MAX_ENTRIES) return tooMany();
      if (!Array.isArray(entry) || typeof entry[1] !== 'string' || nanosString(entry[0]) === undefined) {
        errors.set(items.length, [{ field: `streams[${si}].values[${vi}]`, message: 'must be ["<unix nanoseconds>", "<line>"] (and optional structured metadata)' }]);
        items.push(undefined);
        continue;
      }
      const md = isObj(entry[2]) ? new Map(Object.entries(entry[2]).map(([k, v]) => [k, String(v)] as [string, string])) : undefined;
      items.push(mapEntry(labels, nanosString(entry[0]), entry[1], md, tenant));
    }
  }
  return { ok: true, items, errors };
}

/** The protobuf push (snappy already undone): logproto.PushRequest. */
export function mapLokiProto(body: Buffer, tenant?: string): LokiParsed {
  let req: Obj;
  try {
    // the decoded message itself (see otlp-proto.ts): own properties, 64-bit seconds as a Long
    req = messageType('logproto.PushRequest').decode(body) as unknown as Obj;
  } catch (e) {
    return { ok: false, status: 400, message: `the body is not a Loki PushRequest (protobuf): ${(e as Error).message}`, errors: [{ field: '(body)', message: 'is not a PushRequest' }] };
  }
  const items: (Obj | undefined)[] = [];
  const errors = new Map<number, FieldError[]>();
  const streams = Array.isArray(req.streams) ? req.streams.filter(isObj) : [];
  for (const [si, s] of streams.entries()) {
    const labels = parseLabels(typeof s.labels === 'string' ? s.labels : '{}');
    const entries = Array.isArray(s.entries) ? s.entries.filter(isObj) : [];
    for (const e of entries) {
      if (items.length >= MAX_ENTRIES) return tooMany();
      if (!labels) {
        errors.set(items.length, [{ field: `streams[${si}].labels`, message: 'is not in {name="value", ...} form' }]);
        items.push(undefined);
        continue;
      }
      const ts = isObj(e.timestamp) ? int(e.timestamp.seconds) * 1000 + Math.floor(int(e.timestamp.nanos) / 1e6) : undefined;
      const md = Array.isArray(e.structuredMetadata) && e.structuredMetadata.length > 0
        ? new Map(e.structuredMetadata.filter(isObj).map((p) => [String(p.name ?? ''), String(p.value ?? '')] as [string, string])) : undefined;
      items.push(mapEntry(labels, ts || undefined, typeof e.line === 'string' ? e.line : '', md, tenant));
    }
  }
  return { ok: true, items, errors };
}

const PushBody = Type.Unknown({ description: 'logproto.PushRequest, protobuf + snappy (application/x-protobuf), or the JSON push ({streams: [{stream, values}]})' });

export async function lokiRoutes(app: FastifyInstance, opts: IngestRouteOptions): Promise<void> {
  const scope = ingestScope(app, opts, [
    { types: ['application/json', 'text/plain'], parseAs: 'string' },
    { types: ['application/x-protobuf', 'application/protobuf'], parseAs: 'buffer' },
  ], ['snappy']);

  app.post('/loki/api/v1/push', {
    config: { scope: 'ingest' },
    schema: { body: PushBody, response: { 204: Type.Null({ description: 'every entry stored' }) } },
  }, async (req: FastifyRequest, reply) => {
    const org = req.headers['x-scope-orgid'];
    const tenant = typeof org === 'string' && org !== '' && org !== 'fake' ? org : undefined;
    let parsed: LokiParsed;
    if (Buffer.isBuffer(req.body)) {
      // protobuf bodies are always snappy-compressed (with or without a Content-Encoding saying so)
      parsed = mapLokiProto(unsnappy(req.body), tenant);
    } else {
      let value: unknown;
      try {
        value = JSON.parse(typeof req.body === 'string' ? req.body : '');
      } catch (e) {
        throw new HttpError(400, 'invalid_json', `the body is not valid JSON: ${(e as Error).message}`, { errors: [{ field: '(body)', message: 'is not valid JSON' }] });
      }
      parsed = mapLokiJson(value, tenant);
    }
    if (!parsed.ok) throw new HttpError(parsed.status, parsed.status === 413 ? 'too_many_events' : 'invalid_push', parsed.message, { errors: parsed.errors });
    if (parsed.items.length === 0) return reply.code(204).send();
    const result = await scope.ingest(req, parsed.items, { lineErrors: parsed.errors });
    if (result.rejected.length > 0) {
      // as Loki does: what was valid is stored; the 400 tells the shipper (which does not retry a 4xx) what was not
      const first = result.rejected[0];
      throw new HttpError(400, 'invalid_events', `${result.accepted} entries stored, ${result.rejected.length} rejected; entry ${first.index}: ${first.errors[0].field} ${first.errors[0].message}`,
        { accepted: result.accepted, rejected: result.rejected.slice(0, 1000) });
    }
    return reply.code(204).send();
  });
}
