// OTLP traces → canonical event inputs. Every span becomes one `span` event (name → action, duration,
// status, trace and span ids), and every span event that records an exception becomes an `error`
// event on the same trace and span, so the trace reads in /monitoring/logs?trace_id= and in session
// replay, and the exception is grouped by its stack like any error. Pure; works on the OTLP JSON
// shape (otlp-proto.ts turns the protobuf encoding into it).
import { LIMITS, type FieldError } from '../event.js';
import { commonFields, flattenAttributes, idString, isObj, nanosBig, nanosToMs, restAttributes, type Obj, type OtlpParsed } from './otlp.js';

/** Status.code: 0 UNSET, 1 OK, 2 ERROR (numbers in protobuf and JSON, enum names in some JSON senders). */
function statusCode(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'STATUS_CODE_OK') return 1;
  if (v === 'STATUS_CODE_ERROR') return 2;
  return 0;
}

const SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
function spanKind(v: unknown): string | undefined {
  if (typeof v === 'number') return SPAN_KINDS[v];
  if (typeof v === 'string') return /^SPAN_KIND_([A-Z]+)$/.exec(v)?.[1].toLowerCase();
  return undefined;
}

/** Whole nanoseconds between two unix-nano timestamps, as milliseconds (exact for strings). */
function durationMs(start: unknown, end: unknown): number | undefined {
  const s = nanosBig(start);
  const e = nanosBig(end);
  if (s === undefined || e === undefined || s === 0n || e < s) return undefined;
  return Number(e - s) / 1e6;
}

type Mapped = { ok: true; events: Obj[] } | { ok: false; errors: FieldError[] };

/** One span → its span event, then an error event per recorded exception. */
export function mapSpan(span: Obj, resourceAttrs: Map<string, unknown>, scope: Obj | undefined): Mapped {
  const own = flattenAttributes(span.attributes);
  const { ev, skip } = commonFields(own, resourceAttrs);
  const start = nanosToMs(span.startTimeUnixNano);
  if (start === null) return { ok: false, errors: [{ field: 'startTimeUnixNano', message: 'must be unix nanoseconds (a digit string or number)' }] };
  if (nanosToMs(span.endTimeUnixNano) === null) return { ok: false, errors: [{ field: 'endTimeUnixNano', message: 'must be unix nanoseconds (a digit string or number)' }] };
  const traceId = idString(span.traceId);
  const spanId = idString(span.spanId);

  ev.event_type = 'span';
  if (typeof span.name === 'string' && span.name) ev.action = span.name.slice(0, 256);
  if (start !== undefined) ev.timestamp = start;
  const d = durationMs(span.startTimeUnixNano, span.endTimeUnixNano);
  if (d !== undefined && ev.duration_ms === undefined) ev.duration_ms = d;
  if (traceId) ev.trace_id = traceId;
  if (spanId) ev.span_id = spanId;
  const status = isObj(span.status) ? span.status : {};
  const code = statusCode(status.code);
  if (ev.status === undefined) ev.status = code === 2 ? 'error' : 'ok';
  if (typeof status.message === 'string' && status.message) ev.message = status.message;

  const attributes = restAttributes(own, resourceAttrs, skip, scope) ?? {};
  const parent = idString(span.parentSpanId);
  if (parent) attributes['otel.parent_span_id'] = parent;
  const kind = spanKind(span.kind);
  if (kind) attributes['otel.span_kind'] = kind;
  if (Object.keys(attributes).length > 0) ev.attributes = attributes;

  const events: Obj[] = [ev];
  const spanEvents = Array.isArray(span.events) ? span.events : [];
  for (const se of spanEvents) {
    if (!isObj(se)) continue;
    const attrs = flattenAttributes(se.attributes);
    const type = attrs.get('exception.type');
    const message = attrs.get('exception.message');
    const stack = attrs.get('exception.stacktrace');
    if (se.name !== 'exception' && type === undefined && message === undefined) continue;
    const err: Obj = {
      event_type: 'error', status: 'error', severity: 'high',
      ...(ev.project_id !== undefined ? { project_id: ev.project_id } : {}),
      ...(ev.engine !== undefined ? { engine: ev.engine } : {}),
      ...(ev.action !== undefined ? { action: ev.action } : {}),
      ...(ev.session_id !== undefined ? { session_id: ev.session_id } : {}),
      ...(ev.user_id !== undefined ? { user_id: ev.user_id } : {}),
      ...(ev.flow_id !== undefined ? { flow_id: ev.flow_id } : {}),
      ...(traceId ? { trace_id: traceId } : {}),
      ...(spanId ? { span_id: spanId } : {}),
    };
    const t = nanosToMs(se.timeUnixNano);
    if (typeof t === 'number') err.timestamp = t;
    else if (start !== undefined) err.timestamp = start;
    if (type !== undefined && type !== '') err.error_type = String(type);
    if (message !== undefined && message !== '') err.message = String(message);
    if (typeof stack === 'string' && stack) err.stack = stack;
    const rest: Obj = {};
    for (const [k, v] of attrs) if (k !== 'exception.type' && k !== 'exception.message' && k !== 'exception.stacktrace') rest[k] = v;
    if (Object.keys(rest).length > 0) err.attributes = rest;
    events.push(err);
  }
  return { ok: true, events };
}

/** An ExportTraceServiceRequest (JSON shape) → canonical inputs: spans and their exceptions. */
export function mapOtlpTraces(value: unknown): OtlpParsed {
  const bad = (field: string, message: string): OtlpParsed => ({
    ok: false, status: 400, code: 'invalid_otlp', message: `the body is not an OTLP traces request: ${field} ${message}`, errors: [{ field, message }],
  });
  if (!isObj(value)) return bad('(body)', 'must be an ExportTraceServiceRequest object');
  const resourceSpans = value.resourceSpans ?? value.resource_spans;
  if (!Array.isArray(resourceSpans)) return bad('resourceSpans', 'must be an array');
  const items: (Obj | undefined)[] = [];
  const recordErrors = new Map<number, FieldError[]>();
  const paths: string[] = [];
  for (let r = 0; r < resourceSpans.length; r++) {
    const rs = resourceSpans[r];
    if (!isObj(rs)) return bad(`resourceSpans[${r}]`, 'must be an object');
    const resourceAttrs = flattenAttributes(isObj(rs.resource) ? rs.resource.attributes : undefined);
    const scopeSpans = rs.scopeSpans ?? rs.scope_spans ?? [];
    if (!Array.isArray(scopeSpans)) return bad(`resourceSpans[${r}].scopeSpans`, 'must be an array');
    for (let s = 0; s < scopeSpans.length; s++) {
      const ss = scopeSpans[s];
      if (!isObj(ss)) return bad(`resourceSpans[${r}].scopeSpans[${s}]`, 'must be an object');
      const spans = ss.spans ?? [];
      if (!Array.isArray(spans)) return bad(`resourceSpans[${r}].scopeSpans[${s}].spans`, 'must be an array');
      for (let i = 0; i < spans.length; i++) {
        const path = `resourceSpans[${r}].scopeSpans[${s}].spans[${i}]`;
        const span = spans[i];
        const mapped = isObj(span) ? mapSpan(span, resourceAttrs, isObj(ss.scope) ? ss.scope : undefined)
          : { ok: false as const, errors: [{ field: '(span)', message: 'a span must be an object' }] };
        if (items.length + (mapped.ok ? mapped.events.length : 1) > LIMITS.maxEventsPerRequest) {
          return {
            ok: false, status: 413, code: 'too_many_events',
            message: `at most ${LIMITS.maxEventsPerRequest} spans and exceptions per request`,
            errors: [{ field: '(body)', message: `more than ${LIMITS.maxEventsPerRequest} events` }],
          };
        }
        if (mapped.ok) {
          for (let k = 0; k < mapped.events.length; k++) {
            items.push(mapped.events[k]);
            paths.push(k === 0 ? path : `${path}.events (exception ${k})`);
          }
        } else {
          recordErrors.set(items.length, mapped.errors);
          items.push(undefined);
          paths.push(path);
        }
      }
    }
  }
  return { ok: true, items, recordErrors, paths };
}
