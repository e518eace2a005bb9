// OTLP/HTTP logs (JSON encoding) → canonical event inputs. Pure: the route in http.ts hands the
// mapped items to Collector.ingest, which validates, applies the tenant guard and the limits.
// Spec: https://opentelemetry.io/docs/specs/otlp/#otlphttp and opentelemetry-proto logs.proto.
import { LIMITS, type FieldError } from '../event.js';
import type { IngestResult } from './ingest.js';
import { applyErrorObject } from './error-object.js';

/** Where the project id of a record is looked for, first match wins (record attributes, then resource). */
export const PROJECT_KEYS = ['puraify.project_id', 'project_id', 'service.namespace'] as const;
export const PROJECT_FIELD = 'resource.attributes.puraify.project_id';

/** Attribute keys that become canonical fields (and are then not repeated as attributes). */
const FIELD_KEYS: Record<string, string> = {
  'service.name': 'engine',
  'exception.type': 'error_type',
  'exception.stacktrace': 'stack',
  'session.id': 'session_id',
  'enduser.id': 'user_id',
  'user.id': 'user_id',
  'puraify.flow_id': 'flow_id',
  flow_id: 'flow_id',
  'puraify.event_type': 'event_type',
  'event.name': 'event_type',
  duration_ms: 'duration_ms',
  status: 'status',
  // the engine's own field names, bare or under puraify.: what an engine would put on a record
  'puraify.platform': 'platform',
  platform: 'platform',
  'puraify.action': 'action',
  action: 'action',
  'puraify.triggered_by': 'triggered_by',
  triggered_by: 'triggered_by',
  'puraify.retries': 'retries',
  retries: 'retries',
};
const FIELD_ENTRIES = Object.entries(FIELD_KEYS);
const NUMBER_FIELDS = new Set(['duration_ms', 'retries']);
const ID_FIELDS = new Set(['session_id', 'user_id', 'flow_id']);

export type OtlpParsed =
  | {
    ok: true;
    /** One canonical input per log record; `undefined` where the record was rejected here. */
    items: (Record<string, unknown> | undefined)[];
    /** Rejections found while mapping, by item index (the Collector's lineErrors). */
    recordErrors: Map<number, FieldError[]>;
    /** Each item's place in the request, for error messages. */
    paths: string[];
  }
  | { ok: false; status: 400 | 413; code: string; message: string; errors: FieldError[] };

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A 64-bit integer as protobufjs decodes it (a Long: {low, high, unsigned}) → BigInt. The protobuf
 * path maps decoded messages directly (no toObject copy), so fields can be Longs, Uint8Arrays and
 * prototype defaults: every check below is an own-property check.
 */
function isLong(v: unknown): v is { low: number; high: number } {
  return typeof v === 'object' && v !== null && typeof (v as { low?: unknown }).low === 'number' && typeof (v as { high?: unknown }).high === 'number';
}
const longToBig = (v: { low: number; high: number }): bigint => (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** An OTLP AnyValue as a plain JSON value (int64 strings become numbers when they fit). */
export function anyValue(v: unknown, depth = 0): unknown {
  if (!isObj(v) || depth > 32) return undefined;
  if (has(v, 'stringValue')) return String(v.stringValue ?? '');
  if (has(v, 'boolValue')) return v.boolValue === true || v.boolValue === 'true';
  if (has(v, 'intValue')) {
    const i = v.intValue;
    if (typeof i === 'number') return i;
    if (isLong(i)) {
      const b = BigInt.asIntN(64, longToBig(i));
      return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString();
    }
    if (typeof i === 'string' && /^-?\d+$/.test(i)) return Number.isSafeInteger(Number(i)) ? Number(i) : i;
    return i === undefined || i === null ? undefined : String(i);
  }
  if (has(v, 'doubleValue')) {
    const d = v.doubleValue;
    return typeof d === 'number' ? d : typeof d === 'string' && d !== '' && Number.isFinite(Number(d)) ? Number(d) : d;
  }
  if (has(v, 'bytesValue')) {
    const b = v.bytesValue;
    return b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64') : String(b ?? ''); // base64, as in the JSON encoding
  }
  if (has(v, 'arrayValue')) {
    const values = isObj(v.arrayValue) && Array.isArray(v.arrayValue.values) ? v.arrayValue.values : [];
    return values.map((x) => anyValue(x, depth + 1) ?? null);
  }
  if (has(v, 'kvlistValue')) {
    const out: Obj = {};
    const values = isObj(v.kvlistValue) && Array.isArray(v.kvlistValue.values) ? v.kvlistValue.values : [];
    for (const kv of values) if (isObj(kv) && typeof kv.key === 'string') out[kv.key] = anyValue(kv.value, depth + 1);
    return out;
  }
  return undefined;
}

/**
 * OTLP KeyValue[] → flat key/value pairs: a kvlist value is spread into dotted keys
 * (`http.request: {method: GET}` → `http.request.method`), an array stays an array.
 */
export function flattenAttributes(list: unknown): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const put = (key: string, value: unknown, depth: number): void => {
    if (isObj(value) && depth < 8) {
      for (const k of Object.keys(value)) put(`${key}.${k}`, value[k], depth + 1);
    } else if (value !== undefined) out.set(key, value);
  };
  if (Array.isArray(list)) {
    for (const kv of list) if (isObj(kv) && typeof kv.key === 'string' && kv.key) put(kv.key, anyValue(kv.value), 0);
  }
  return out;
}

/** Unix nanoseconds (string or number) → epoch ms; undefined when absent or zero, null when malformed. */
export function nanosToMs(v: unknown): number | undefined | null {
  if (v === undefined || v === null || v === '' || v === 0 || v === '0') return undefined;
  if (isLong(v)) {
    const n = longToBig(v);
    return n === 0n ? undefined : Number(n / 1_000_000n);
  }
  if (typeof v === 'string') return /^\d{1,30}$/.test(v) ? Number(BigInt(v) / 1_000_000n) : null;
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return Math.floor(v / 1e6);
  return null;
}

/** OTLP SeverityNumber → the canonical severity scale. */
export function severityFromNumber(n: number): string | undefined {
  if (!Number.isInteger(n) || n < 1 || n > 24) return undefined;
  if (n <= 8) return 'debug'; // TRACE 1-4, DEBUG 5-8
  if (n <= 12) return 'info';
  if (n <= 16) return 'warning';
  if (n <= 20) return 'high'; // ERROR
  return 'critical'; // FATAL
}

const SEVERITY_NAMES: Record<string, number> = {
  SEVERITY_NUMBER_TRACE: 1, SEVERITY_NUMBER_DEBUG: 5, SEVERITY_NUMBER_INFO: 9, SEVERITY_NUMBER_WARN: 13,
  SEVERITY_NUMBER_ERROR: 17, SEVERITY_NUMBER_FATAL: 21,
};
function severityNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return 0;
  if (/^\d+$/.test(v)) return Number(v);
  const m = /^(SEVERITY_NUMBER_[A-Z]+)([2-4])?$/.exec(v); // the enum name, e.g. SEVERITY_NUMBER_ERROR2
  const base = m ? SEVERITY_NAMES[m[1]] : undefined;
  return base === undefined ? 0 : base + (m![2] ? Number(m![2]) - 1 : 0);
}

/** Trace and span ids: hex strings (JSON encoding) or bytes (protobuf) → lowercase hex. */
export const idString = (v: unknown): string | undefined => {
  if (typeof v === 'string') return v.toLowerCase() || undefined;
  if (v instanceof Uint8Array) return v.length > 0 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') : undefined;
  return undefined;
};

/** Unix nanoseconds in any encoding (digit string, number, Long) → BigInt; undefined when absent or malformed. */
export function nanosBig(v: unknown): bigint | undefined {
  if (typeof v === 'string' && /^\d{1,30}$/.test(v)) return BigInt(v);
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return BigInt(Math.round(v));
  if (isLong(v)) return longToBig(v);
  return undefined;
}

/**
 * The fields every OTLP signal shares: the project (from PROJECT_KEYS) and the well-known attributes
 * (FIELD_KEYS), looked up in the item's own attributes first, then the resource's. `skip` collects
 * the keys used, so they are not repeated as attributes.
 */
export function commonFields(own: Map<string, unknown>, resourceAttrs: Map<string, unknown>):
  { ev: Obj; skip: Set<string>; lookup: (key: string) => unknown } {
  const lookup = (key: string): unknown => (own.has(key) ? own.get(key) : resourceAttrs.get(key));
  let projectKey: string | undefined;
  for (const k of PROJECT_KEYS) {
    const v = lookup(k);
    if (v !== undefined && v !== '') {
      projectKey = k;
      break;
    }
  }
  // no project attribute: the Collector takes the key's project, or rejects naming PROJECT_FIELD
  const ev: Obj = projectKey ? { project_id: String(lookup(projectKey)) } : {};
  const skip = new Set<string>(PROJECT_KEYS);

  // canonical fields from well-known keys; the first key listed for a field wins
  for (const [key, field] of FIELD_ENTRIES) {
    const v = lookup(key);
    if (v === undefined || ev[field] !== undefined) continue;
    if (NUMBER_FIELDS.has(field)) {
      const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
      if (!Number.isFinite(n) || (field === 'retries' && !Number.isInteger(n))) continue; // kept as an attribute
      ev[field] = n;
    } else if (ID_FIELDS.has(field)) {
      ev[field] = typeof v === 'string' || Number.isInteger(v) ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
    } else {
      ev[field] = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
    }
    skip.add(key);
  }
  return { ev, skip, lookup };
}

/** The attributes not used for fields: the item's own first (they win the attribute cap), then resource, then scope. */
export function restAttributes(own: Map<string, unknown>, resourceAttrs: Map<string, unknown>, skip: Set<string>, scope: Obj | undefined): Obj | undefined {
  const attributes: Obj = {};
  for (const src of [own, resourceAttrs]) {
    for (const [k, v] of src) if (!skip.has(k) && !(k in attributes)) attributes[k] = v;
  }
  if (scope && typeof scope.name === 'string' && scope.name && !('otel.scope.name' in attributes)) attributes['otel.scope.name'] = scope.name;
  if (scope && typeof scope.version === 'string' && scope.version && !('otel.scope.version' in attributes)) attributes['otel.scope.version'] = scope.version;
  return Object.keys(attributes).length > 0 ? attributes : undefined;
}

/** Maps one log record with its resource and scope onto a canonical input, or names why not. */
export function mapLogRecord(rec: Obj, resourceAttrs: Map<string, unknown>, scope: Obj | undefined):
  { ok: true; event: Obj } | { ok: false; errors: FieldError[] } {
  const recAttrs = flattenAttributes(rec.attributes);
  const { ev, skip, lookup } = commonFields(recAttrs, resourceAttrs);

  const t = nanosToMs(rec.timeUnixNano);
  const observed = nanosToMs(rec.observedTimeUnixNano);
  if (t === null) return { ok: false, errors: [{ field: 'timeUnixNano', message: 'must be unix nanoseconds (a digit string or number)' }] };
  if (t === undefined && observed === null) return { ok: false, errors: [{ field: 'observedTimeUnixNano', message: 'must be unix nanoseconds (a digit string or number)' }] };
  const ms = t ?? observed;
  if (ms !== undefined && ms !== null) ev.timestamp = ms;

  const sevNum = severityNumber(rec.severityNumber);
  const sevText = typeof rec.severityText === 'string' ? rec.severityText.trim().toLowerCase() : '';
  // OTel's own short names (WARN, ERROR2, ...) name a number range: they go onto the same scale as the
  // number would; any other text (notice, alert, ...) is kept, lowercased.
  const otelName = /^(trace|debug|info|warn|error|fatal)([2-4])?$/.exec(sevText);
  const severity = otelName ? severityFromNumber(severityNumber(`SEVERITY_NUMBER_${sevText.toUpperCase()}`))
    : sevText || severityFromNumber(sevNum);
  if (severity) ev.severity = severity;

  const body = anyValue(rec.body);
  if (typeof body === 'string' && body !== '') ev.message = body;
  else if (body !== undefined && typeof body !== 'string') ev.message = JSON.stringify(body);
  else {
    const exMsg = lookup('exception.message');
    if (exMsg !== undefined && exMsg !== '') {
      ev.message = typeof exMsg === 'string' ? exMsg : JSON.stringify(exMsg);
      skip.add('exception.message');
    }
  }
  loggerErrorAttribute(ev, recAttrs, skip);
  if (typeof rec.eventName === 'string' && rec.eventName && ev.event_type === undefined) ev.event_type = rec.eventName;
  const traceId = idString(rec.traceId);
  const spanId = idString(rec.spanId);
  if (traceId) ev.trace_id = traceId;
  if (spanId) ev.span_id = spanId;
  if (ev.status === undefined && sevNum >= 17) ev.status = 'error';

  const attributes = restAttributes(recAttrs, resourceAttrs, skip, scope);
  if (attributes) ev.attributes = attributes;
  return { ok: true, event: ev };
}

const ERROR_PARTS = ['type', 'name', 'message', 'stack'] as const;

/**
 * A logger's error object carried as a record attribute: pino-opentelemetry-transport passes pino's
 * fields through, so `logger.error(err)` arrives as `err: {type, message, stack}` (flattened here to
 * err.type, err.message, err.stack) instead of exception.*. It fills what exception.* and the body
 * did not; its parts are then not kept again as attributes (err.code and the like stay).
 */
function loggerErrorAttribute(ev: Obj, recAttrs: Map<string, unknown>, skip: Set<string>): void {
  for (const key of ['err', 'error']) {
    const err: Obj = {};
    for (const part of ERROR_PARTS) {
      const v = recAttrs.get(`${key}.${part}`);
      if (typeof v === 'string') err[part] = v;
    }
    if (applyErrorObject(ev, err)) {
      for (const part of ERROR_PARTS) if (err[part] !== undefined) skip.add(`${key}.${part}`);
      return;
    }
  }
}

/** An ExportLogsServiceRequest in the JSON encoding → canonical inputs, one per log record. */
export function mapOtlpLogs(value: unknown): OtlpParsed {
  const bad = (field: string, message: string): OtlpParsed => ({
    ok: false, status: 400, code: 'invalid_otlp', message: `the body is not an OTLP logs request: ${field} ${message}`, errors: [{ field, message }],
  });
  if (!isObj(value)) return bad('(body)', 'must be an ExportLogsServiceRequest object');
  const resourceLogs = value.resourceLogs ?? value.resource_logs;
  if (!Array.isArray(resourceLogs)) return bad('resourceLogs', 'must be an array');

  const items: (Obj | undefined)[] = [];
  const recordErrors = new Map<number, FieldError[]>();
  const paths: string[] = [];
  for (let r = 0; r < resourceLogs.length; r++) {
    const rl = resourceLogs[r];
    if (!isObj(rl)) return bad(`resourceLogs[${r}]`, 'must be an object');
    const resourceAttrs = flattenAttributes(isObj(rl.resource) ? rl.resource.attributes : undefined);
    const scopeLogs = rl.scopeLogs ?? rl.scope_logs ?? [];
    if (!Array.isArray(scopeLogs)) return bad(`resourceLogs[${r}].scopeLogs`, 'must be an array');
    for (let s = 0; s < scopeLogs.length; s++) {
      const sl = scopeLogs[s];
      if (!isObj(sl)) return bad(`resourceLogs[${r}].scopeLogs[${s}]`, 'must be an object');
      const records = sl.logRecords ?? sl.log_records ?? [];
      if (!Array.isArray(records)) return bad(`resourceLogs[${r}].scopeLogs[${s}].logRecords`, 'must be an array');
      for (let i = 0; i < records.length; i++) {
        if (items.length >= LIMITS.maxEventsPerRequest) {
          return {
            ok: false, status: 413, code: 'too_many_events',
            message: `at most ${LIMITS.maxEventsPerRequest} log records per request`,
            errors: [{ field: '(body)', message: `more than ${LIMITS.maxEventsPerRequest} log records` }],
          };
        }
        const path = `resourceLogs[${r}].scopeLogs[${s}].logRecords[${i}]`;
        const rec = records[i];
        const mapped = isObj(rec) ? mapLogRecord(rec, resourceAttrs, isObj(sl.scope) ? sl.scope : undefined)
          : { ok: false as const, errors: [{ field: '(record)', message: 'a log record must be an object' }] };
        if (mapped.ok) items.push(mapped.event);
        else {
          recordErrors.set(items.length, mapped.errors);
          items.push(undefined);
        }
        paths.push(path);
      }
    }
  }
  return { ok: true, items, recordErrors, paths };
}

/** The body text → mapped records. */
export function parseOtlpLogsJson(text: string): OtlpParsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, status: 400, code: 'invalid_json', message: 'the body is not valid JSON (OTLP/HTTP JSON encoding expected)', errors: [{ field: '(body)', message: (e as Error).message }] };
  }
  return mapOtlpLogs(value);
}

export interface OtlpAnswer {
  partialSuccess?: { rejectedLogRecords?: number; rejectedSpans?: number; errorMessage: string };
}

/**
 * The OTLP answer for an ingest result: `{}` or a partialSuccess naming the first rejection.
 * `counter` is the signal's field (rejectedLogRecords, rejectedSpans); for traces, exception events
 * (paths with ".events") are not spans and are not counted.
 */
export function otlpResponse(r: Pick<IngestResult, 'accepted' | 'rejected'>, paths: readonly string[],
  counter: 'rejectedLogRecords' | 'rejectedSpans' = 'rejectedLogRecords'): OtlpAnswer {
  if (r.rejected.length === 0) return {};
  const first = r.rejected[0];
  const where = paths[first.index] ?? `record ${first.index}`;
  const e = first.errors[0];
  const more = r.rejected.length > 1 ? ` (and ${r.rejected.length - 1} more)` : '';
  const n = r.rejected.filter((x) => !(paths[x.index] ?? '').includes('.events')).length;
  return {
    partialSuccess: {
      [counter]: n,
      errorMessage: `${where}: ${e?.field ?? '(record)'} ${e?.message ?? 'was rejected'}${more}`,
    },
  };
}

/** True for the protobuf encoding. */
export const isProtobuf = (contentType: string | undefined): boolean => /protobuf/i.test(contentType ?? '');
