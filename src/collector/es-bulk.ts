// Elasticsearch bulk API receiver: POST|PUT /_bulk and /:index/_bulk, as Filebeat, Logstash, Vector
// and Fluent Bit send it (NDJSON action/source pairs, optionally gzip). `index` and `create` store
// the document, mapped from ECS (@timestamp, message, log.level, error.*, service.name, trace.id,
// …); the answer is Elasticsearch's own shape with a result per item, so shippers retry only what failed.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { FieldError } from '../event.js';
import { HttpError } from '../http/errors.js';
import { ingestScope, type IngestRouteOptions } from './ingest-route.js';
import { applyShipperLine, severityFromLevel } from './logger-conventions.js';
import { addProductHeader } from './es-api.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Bulk requests carry many small documents; the body limit bounds the work. */
export const MAX_DOCS = 50_000;

/** ECS fields → canonical fields, first present wins per field. */
const ECS: [string, string][] = [
  ['@timestamp', 'timestamp'],
  ['service.name', 'engine'],
  ['log.level', 'severity'],
  ['error.type', 'error_type'],
  ['error.stack_trace', 'stack'],
  ['trace.id', 'trace_id'],
  ['span.id', 'span_id'],
  ['user.id', 'user_id'],
  ['user.name', 'user_id'],
  ['event.action', 'action'],
  ['event.outcome', 'status'],
  ['labels.project_id', 'project_id'],
  ['err.type', 'error_type'],
  ['err.stack', 'stack'],
];
/** Canonical names a document may carry as they are. */
const CANONICAL = [
  'project_id', 'engine', 'event_type', 'triggered_by', 'flow_id', 'session_id', 'user_id', 'trace_id', 'span_id',
  'platform', 'action', 'status', 'severity', 'error_type', 'message', 'stack', 'duration_ms', 'retries', 'fingerprint', 'timestamp',
];
/** Logger names the Collector maps itself (logger-conventions.ts). */
const PASS = ['msg', 'level', 'time'];

function flattenInto(prefix: string, v: unknown, out: Map<string, unknown>, depth: number): void {
  if (isObj(v) && depth < 6) {
    for (const k of Object.keys(v)) flattenInto(prefix ? `${prefix}.${k}` : k, v[k], out, depth + 1);
  } else if (v !== undefined) out.set(prefix, v);
}

const scalar = (v: unknown): v is string | number | boolean => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** One bulk source document → a canonical input. */
export function mapEcsDocument(doc: Obj, index: string | undefined): Obj {
  applyShipperLine(doc);
  const flat = new Map<string, unknown>();
  flattenInto('', doc, flat, 0);
  const ev: Obj = {};
  for (const [key, field] of ECS) {
    const v = flat.get(key);
    if (v === undefined || ev[field] !== undefined || !scalar(v)) continue;
    ev[field] = field === 'severity' ? severityFromLevel(v) ?? String(v) : field === 'status' && v === 'failure' ? 'error' : field === 'timestamp' ? v : String(v);
    flat.delete(key);
  }
  const duration = flat.get('event.duration'); // nanoseconds in ECS
  if (typeof duration === 'number' && duration >= 0 && ev.duration_ms === undefined) {
    ev.duration_ms = duration / 1e6;
    flat.delete('event.duration');
  }
  for (const k of [...CANONICAL, ...PASS]) {
    const v = flat.get(k);
    if (v === undefined || ev[k] !== undefined) continue;
    ev[k] = v;
    flat.delete(k);
  }
  const errMessage = flat.get('error.message') ?? flat.get('err.message');
  if (typeof errMessage === 'string' && ev.message === undefined) {
    ev.message = errMessage;
    flat.delete(flat.has('error.message') ? 'error.message' : 'err.message');
  }
  if (ev.event_type === undefined && ev.error_type !== undefined) ev.event_type = 'error';
  const attrs: Obj = {};
  for (const [k, v] of flat) attrs[k.startsWith('attributes.') ? k.slice(11) : k] = v;
  if (index) attrs['es.index'] = index;
  if (Object.keys(attrs).length > 0) ev.attributes = attrs;
  return ev;
}

export interface BulkOp {
  action: 'index' | 'create' | 'update' | 'delete' | string;
  index: string | undefined;
  id: string | undefined;
  /** The mapped document, or why the pair was refused. */
  doc?: Obj;
  error?: FieldError;
}

/** The NDJSON body → operations, one per action line (with its source line where the action has one). */
export function parseBulk(text: string, defaultIndex: string | undefined): { ok: true; ops: BulkOp[] } | { ok: false; message: string } {
  const lines = text.split('\n');
  const ops: BulkOp[] = [];
  let i = 0;
  const next = (): string | undefined => {
    while (i < lines.length) {
      const l = lines[i++].trim();
      if (l !== '') return l;
    }
    return undefined;
  };
  for (let line = next(); line !== undefined; line = next()) {
    if (ops.length >= MAX_DOCS) return { ok: false, message: `at most ${MAX_DOCS} documents per bulk request` };
    let action: unknown;
    try {
      action = JSON.parse(line);
    } catch (e) {
      return { ok: false, message: `Malformed action/metadata line [${i}]: ${(e as Error).message}` };
    }
    const name = isObj(action) ? Object.keys(action)[0] : undefined;
    const meta = name && isObj(action) && isObj(action[name]) ? (action[name] as Obj) : {};
    if (!name) return { ok: false, message: `Malformed action/metadata line [${i}], expected an object with one action` };
    const op: BulkOp = {
      action: name,
      index: typeof meta._index === 'string' ? meta._index : defaultIndex,
      id: typeof meta._id === 'string' || typeof meta._id === 'number' ? String(meta._id) : undefined,
    };
    if (name === 'delete') {
      op.error = { field: 'delete', message: 'this engine keeps events; delete is not supported' };
    } else {
      const src = next();
      if (src === undefined) return { ok: false, message: `the ${name} action on line ${i} has no source line` };
      if (name !== 'index' && name !== 'create') {
        op.error = { field: name, message: `only index and create are supported, not ${name}` };
      } else {
        try {
          const doc = JSON.parse(src);
          if (isObj(doc)) op.doc = mapEcsDocument(doc, op.index);
          else op.error = { field: '(document)', message: 'must be a JSON object' };
        } catch (e) {
          op.error = { field: '(document)', message: `is not valid JSON: ${(e as Error).message}` };
        }
      }
    }
    if (op.doc && op.id !== undefined) {
      if (op.id.length <= 128) op.doc.id = op.id;
      else op.error = { field: '_id', message: 'must be at most 128 characters' };
    }
    ops.push(op);
  }
  return { ok: true, ops };
}

const BulkBody = Type.Unknown({ description: 'NDJSON: {"index"|"create": {"_index", "_id"?}} then the document, per item' });
const BulkAnswer = Type.Object({
  took: Type.Integer(),
  errors: Type.Boolean(),
  items: Type.Array(Type.Record(Type.String(), Type.Object({
    _index: Type.String(), _id: Type.Union([Type.String(), Type.Null()]), status: Type.Integer(),
    result: Type.Optional(Type.String()), error: Type.Optional(Type.Object({ type: Type.String(), reason: Type.String() })),
  }, { additionalProperties: true }))),
}, { description: 'Elasticsearch\'s bulk answer: one result per item' });

export async function esBulkRoutes(app: FastifyInstance, opts: IngestRouteOptions): Promise<void> {
  const scope = ingestScope(app, opts, [{ types: ['application/x-ndjson', 'application/json', 'text/plain', 'application/vnd.elasticsearch+x-ndjson', 'application/vnd.elasticsearch+json'], parseAs: 'string' }]);
  // the ES clients refuse a 2xx without it (and Vector's/Fluent Bit's bulk ignores it)
  addProductHeader(app);
  let seq = 0;
  const handler = async (req: FastifyRequest) => {
    const started = Date.now();
    const { index } = (req.params ?? {}) as { index?: string };
    const parsed = parseBulk(typeof req.body === 'string' ? req.body : '', index);
    if (!parsed.ok) throw new HttpError(400, 'illegal_argument_exception', parsed.message, { errors: [{ field: '(body)', message: parsed.message }] });
    const docs: unknown[] = [];
    const lineErrors = new Map<number, FieldError[]>();
    for (const op of parsed.ops) {
      if (op.error) lineErrors.set(docs.length, [op.error]);
      docs.push(op.doc);
    }
    const result = docs.length > 0 ? await scope.ingest(req, docs, { lineErrors }) : { ids: [], rejected: [] };
    const rejected = new Map(result.rejected.map((r) => [r.index, r.errors]));
    let accepted = 0;
    const items = parsed.ops.map((op, i) => {
      const errs = rejected.get(i);
      const key = op.action === 'create' ? 'create' : op.action;
      const _index = op.index ?? 'puraify';
      if (errs) {
        const e = errs[0];
        const type = op.action === 'delete' || op.action === 'update' ? 'action_request_validation_exception'
          : e.message.includes('may not write') ? 'security_exception' : 'document_parsing_exception';
        const status = type === 'security_exception' ? 403 : 400;
        return { [key]: { _index, _id: op.id ?? null, status, error: { type, reason: `[${e.field}] ${e.message}` } } };
      }
      const _id = result.ids[accepted++] ?? op.id ?? null;
      return { [key]: { _index, _id, _version: 1, result: 'created', _shards: { total: 1, successful: 1, failed: 0 }, _seq_no: seq++, _primary_term: 1, status: 201 } };
    });
    return { took: Date.now() - started, errors: result.rejected.length > 0, items };
  };
  const options = { config: { scope: 'ingest' as const }, schema: { body: BulkBody, response: { 200: BulkAnswer } } };
  for (const url of ['/_bulk', '/:index/_bulk']) {
    app.post(url, options, handler);
    app.put(url, options, handler);
  }
}
