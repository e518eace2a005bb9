// The canonical event: one TypeBox schema gives validation, the TS type and the OpenAPI shape.
// normalize() turns one accepted input object into a stored row; it never throws on bad input,
// it returns field-level errors instead, so one bad event never costs its batch neighbours.
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { newEventId } from './ids.js';
import { LosslessNumber, rawNumbersIn } from './collector/lossless-json.js';

export const LIMITS = {
  maxBodyBytes: 5 * 1024 * 1024,
  maxEventsPerRequest: 10_000,
  maxEventBytes: 64 * 1024,
  maxAttributes: 100,
  maxAttributeKeyLength: 128,
  maxFutureSkewMs: 24 * 3600 * 1000,
  // before 2000-01-01 is almost certainly seconds-vs-ms confusion or garbage
  minTimestampMs: 946_684_800_000,
} as const;

const ProjectId = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$', description: 'the tenant' });
const ShortString = Type.String({ maxLength: 256 });
const IdLike = Type.Union([Type.String({ maxLength: 256 }), Type.Integer()]);

/** What a client may send. Unknown fields are allowed and kept as attributes. */
export const EventInput = Type.Object(
  {
    id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    timestamp: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Number()])),
    project_id: ProjectId,
    event_type: Type.Optional(ShortString),
    type: Type.Optional(Type.Unknown({ description: 'alias of event_type (the spec\'s query output uses it)' })),
    engine: Type.Optional(ShortString),
    triggered_by: Type.Optional(ShortString),
    flow_id: Type.Optional(IdLike),
    session_id: Type.Optional(IdLike),
    user_id: Type.Optional(IdLike),
    trace_id: Type.Optional(IdLike),
    span_id: Type.Optional(IdLike),
    platform: Type.Optional(ShortString),
    action: Type.Optional(ShortString),
    status: Type.Optional(ShortString),
    severity: Type.Optional(ShortString),
    error_type: Type.Optional(ShortString),
    message: Type.Optional(Type.String()),
    stack: Type.Optional(Type.String()),
    duration_ms: Type.Optional(Type.Number({ minimum: 0, maximum: 1e12 })),
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    fingerprint: Type.Optional(Type.String({ maxLength: 256 })),
    attributes: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: true },
);
export type EventInput = Static<typeof EventInput>;

/** A stored event, as the query API returns it. */
export const StoredEvent = Type.Object({
  id: Type.String(),
  timestamp: Type.String({ description: 'ISO 8601' }),
  received_at: Type.String({ description: 'ISO 8601' }),
  project_id: Type.String(),
  event_type: Type.String(),
  engine: Type.String(),
  triggered_by: Type.String(),
  flow_id: Type.String(),
  session_id: Type.String(),
  user_id: Type.String(),
  trace_id: Type.String(),
  span_id: Type.String(),
  platform: Type.String(),
  action: Type.String(),
  status: Type.String(),
  severity: Type.String(),
  error_type: Type.String(),
  message: Type.String(),
  stack: Type.String(),
  duration_ms: Type.Union([Type.Number(), Type.Null()]),
  retries: Type.Union([Type.Integer(), Type.Null()]),
  fingerprint: Type.String(),
  alert: Type.Boolean(),
  sampled: Type.Boolean(),
  attributes: Type.Record(Type.String(), Type.String()),
});
export type StoredEvent = Static<typeof StoredEvent>;

/**
 * The row as it goes to storage. Order matters: it is the column order of the events table
 * (see storage/schema.ts), so rows can be sent as compact arrays.
 */
export interface EventRow {
  id: string;
  timestamp: number;
  received_at: number;
  project_id: string;
  event_type: string;
  engine: string;
  triggered_by: string;
  flow_id: string;
  session_id: string;
  user_id: string;
  trace_id: string;
  span_id: string;
  platform: string;
  action: string;
  status: string;
  severity: string;
  error_type: string;
  message: string;
  stack: string;
  duration_ms: number | null;
  retries: number | null;
  fingerprint: string;
  alert: number;
  /** 1 when flood protection kept only the counting fields of this event (see aggregator/flood.ts). */
  sampled: number;
  attr_keys: string[];
  attr_values: string[];
}

export const EVENT_COLUMNS = [
  'id', 'timestamp', 'received_at', 'project_id', 'event_type', 'engine', 'triggered_by',
  'flow_id', 'session_id', 'user_id', 'trace_id', 'span_id', 'platform', 'action', 'status',
  'severity', 'error_type', 'message', 'stack', 'duration_ms', 'retries', 'fingerprint', 'alert',
  'sampled', 'attr_keys', 'attr_values',
] as const satisfies readonly (keyof EventRow)[];

/** Columns a query can filter on with exact match. */
export const FILTER_FIELDS = [
  'project_id', 'engine', 'event_type', 'status', 'severity', 'platform', 'action', 'flow_id',
  'session_id', 'user_id', 'trace_id', 'error_type', 'fingerprint', 'triggered_by', 'span_id', 'id',
] as const;
export type FilterField = (typeof FILTER_FIELDS)[number];

export interface FieldError {
  field: string;
  message: string;
  /** For a query-language error: where in the query (1-based). */
  column?: number;
}

export type NormalizeResult =
  | { ok: true; row: EventRow; droppedAttributes: number }
  | { ok: false; errors: FieldError[] };

const checker = TypeCompiler.Compile(EventInput);

const KNOWN_FIELDS = new Set(Object.keys(EventInput.properties));
const STRING_FIELDS = [
  'engine', 'triggered_by', 'platform', 'action', 'status', 'severity', 'error_type',
  'message', 'stack', 'fingerprint',
] as const;
const ID_FIELDS = ['flow_id', 'session_id', 'user_id', 'trace_id', 'span_id'] as const;

export const ERROR_STATUSES: ReadonlySet<string> = new Set(['error', 'failure', 'failed', 'timeout', 'fatal']);

/** Parses an ISO 8601 string or epoch milliseconds (number or digit string). */
export function parseTime(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : undefined;
  if (typeof value !== 'string' || value.length === 0) return undefined;
  if (/^\d{1,16}$/.test(value)) return Number(value);
  // Date.parse accepts many loose forms; insist on an ISO-like date first.
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

function pathToField(path: string): string {
  // TypeBox paths look like "/duration_ms" or "/attributes/foo"
  return path.replace(/^\//, '').replace(/\//g, '.') || '(event)';
}

function stringifyAttr(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (value instanceof LosslessNumber) return value.text;
  if (typeof value === 'object') return rawNumbersIn(JSON.stringify(value));
  return String(value);
}

// ES2024 string methods (Node 20 has them; the ES2023 lib does not declare them)
interface WellFormed { isWellFormed(): boolean; toWellFormed(): string }

/**
 * The string with every lone surrogate replaced by U+FFFD. JSON may carry them ("\ud800"), but
 * ClickHouse's input formats refuse them, and one such event would fail every row of its insert.
 */
export function wellFormed(s: string): string {
  return (s as unknown as WellFormed).isWellFormed() ? s : (s as unknown as WellFormed).toWellFormed();
}

/** Fields whose numbers are read as numbers: a LosslessNumber becomes its value for validation. */
const NUMERIC_FIELDS = ['timestamp', 'duration_ms', 'retries', 'flow_id', 'session_id', 'user_id', 'trace_id', 'span_id', 'id', 'project_id'] as const;

/** The input with LosslessNumbers in typed fields unwrapped (a copy, only when there are any). */
function unwrapNumbers(ev: Record<string, unknown>): { ev: Record<string, unknown>; raw?: Map<string, string> } {
  let out = ev;
  let raw: Map<string, string> | undefined;
  for (const f of NUMERIC_FIELDS) {
    const v = ev[f];
    if (!(v instanceof LosslessNumber)) continue;
    if (out === ev) out = { ...ev };
    out[f] = v.value;
    (raw ??= new Map()).set(f, v.text);
  }
  return { ev: out, raw };
}

/**
 * Validates one input object and turns it into a row. `receivedAt` is the server time of the request.
 */
export function normalize(input: unknown, receivedAt: number): NormalizeResult {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, errors: [{ field: '(event)', message: 'an event must be a JSON object' }] };
  }
  const unwrapped = unwrapNumbers(input as Record<string, unknown>);
  input = unwrapped.ev;
  if (!checker.Check(input)) {
    const errors: FieldError[] = [];
    const seen = new Set<string>();
    for (const e of checker.Errors(input)) {
      const field = pathToField(e.path);
      if (seen.has(field)) continue; // a union reports once per branch; the first message is enough
      seen.add(field);
      const message = field === 'project_id' && e.value === undefined ? 'is required' : e.message;
      errors.push({ field, message: message.toLowerCase() });
      if (errors.length >= 10) break;
    }
    return { ok: false, errors };
  }
  const ev = input as EventInput & Record<string, unknown>;
  const errors: FieldError[] = [];

  let timestamp = receivedAt;
  if (ev.timestamp !== undefined) {
    const t = parseTime(ev.timestamp);
    if (t === undefined) {
      errors.push({ field: 'timestamp', message: 'must be ISO 8601 (e.g. 2025-07-25T14:01:00Z) or epoch milliseconds' });
    } else if (t > receivedAt + LIMITS.maxFutureSkewMs) {
      errors.push({ field: 'timestamp', message: `is more than ${LIMITS.maxFutureSkewMs / 3600000} h in the future` });
    } else if (t < LIMITS.minTimestampMs) {
      errors.push({ field: 'timestamp', message: 'is before the year 2000 (seconds instead of milliseconds?)' });
    } else timestamp = t;
  }
  if (ev.type !== undefined && ev.event_type === undefined && typeof ev.type !== 'string') {
    errors.push({ field: 'type', message: 'must be a string' });
  }

  // Attributes: the explicit object first, then unknown top-level fields.
  const attrKeys: string[] = [];
  const attrValues: string[] = [];
  let dropped = 0;
  let size = 0;
  const addAttr = (key: string, value: unknown): void => {
    if (key.length === 0 || key.length > LIMITS.maxAttributeKeyLength) {
      errors.push({ field: `attributes.${key.slice(0, 40)}`, message: `attribute names must be 1..${LIMITS.maxAttributeKeyLength} characters` });
      return;
    }
    if (attrKeys.length >= LIMITS.maxAttributes) {
      dropped++;
      return;
    }
    let v: string;
    try {
      v = stringifyAttr(value);
    } catch {
      // JSON.stringify recurses: a value nested thousands deep overflows the stack
      errors.push({ field: `attributes.${key.slice(0, 40)}`, message: 'is nested too deeply to store' });
      return;
    }
    attrKeys.push(key);
    attrValues.push(v);
    size += key.length + v.length;
  };
  if (ev.attributes) for (const k in ev.attributes) addAttr(k, ev.attributes[k]);
  for (const k in ev) {
    if (KNOWN_FIELDS.has(k)) continue;
    if (attrKeys.includes(k)) continue; // explicit attributes win
    addAttr(k, ev[k]);
  }
  if (errors.length > 0) return { ok: false, errors };

  const row: EventRow = {
    id: ev.id ?? newEventId(timestamp),
    timestamp,
    received_at: receivedAt,
    project_id: ev.project_id,
    event_type: '',
    engine: ev.engine ?? '',
    triggered_by: ev.triggered_by ?? '',
    flow_id: '', session_id: '', user_id: '', trace_id: '', span_id: '',
    platform: ev.platform ?? '',
    action: ev.action ?? '',
    status: ev.status ?? '',
    severity: ev.severity ?? '',
    error_type: ev.error_type ?? '',
    message: ev.message ?? '',
    stack: ev.stack ?? '',
    duration_ms: ev.duration_ms ?? null,
    retries: ev.retries ?? null,
    fingerprint: ev.fingerprint ?? '',
    alert: 0,
    sampled: 0,
    attr_keys: attrKeys,
    attr_values: attrValues,
  };
  for (const f of ID_FIELDS) {
    const v = ev[f];
    // an integer id keeps the digits it was sent with (12345678901234567890 is not 12345678901234567000)
    if (v !== undefined) row[f] = unwrapped.raw?.get(f) ?? String(v);
  }
  // An engine that only says who triggered it ("execution_engine") still names an engine.
  if (!row.engine && row.triggered_by) row.engine = row.triggered_by.replace(/_engine$/, '');
  row.event_type = ev.event_type ?? (typeof ev.type === 'string' ? ev.type : '') ?? '';
  if (!row.event_type) row.event_type = isErrorLike(row) ? 'error' : 'log';

  makeWellFormed(row);
  for (const f of STRING_FIELDS) size += row[f].length;
  size += row.id.length + row.project_id.length + row.event_type.length + 64;
  if (size > LIMITS.maxEventBytes) {
    return { ok: false, errors: [{ field: '(event)', message: `is larger than ${LIMITS.maxEventBytes} bytes` }] };
  }
  return { ok: true, row, droppedAttributes: dropped };
}

const ROW_STRINGS = ['id', 'project_id', 'event_type', ...STRING_FIELDS, ...ID_FIELDS] as const;

/** Every string of the row well-formed (see wellFormed); cheap when they already are. */
function makeWellFormed(row: EventRow): void {
  for (const f of ROW_STRINGS) row[f] = wellFormed(row[f]);
  const k = row.attr_keys;
  const v = row.attr_values;
  for (let i = 0; i < k.length; i++) {
    k[i] = wellFormed(k[i]);
    v[i] = wellFormed(v[i]);
  }
}

const ERROR_SEVERITIES: ReadonlySet<string> = new Set(['error', 'high', 'critical', 'fatal', 'emergency', 'alert']);
const ERROR_EVENT_TYPES: ReadonlySet<string> = new Set(['error', 'action_error']);

/** Whether an event describes a failure: the aggregator fingerprints exactly these. */
export function isErrorLike(row: Pick<EventRow, 'status' | 'severity' | 'event_type'>): boolean {
  return (
    ERROR_STATUSES.has(row.status.toLowerCase()) ||
    ERROR_SEVERITIES.has(row.severity.toLowerCase()) ||
    ERROR_EVENT_TYPES.has(row.event_type)
  );
}

/** The stored row as the API shows it. */
export function toStoredEvent(row: EventRow): StoredEvent {
  const attributes: Record<string, string> = {};
  for (let i = 0; i < row.attr_keys.length; i++) attributes[row.attr_keys[i]] = row.attr_values[i];
  return {
    id: row.id,
    timestamp: new Date(Number(row.timestamp)).toISOString(),
    received_at: new Date(Number(row.received_at)).toISOString(),
    project_id: row.project_id,
    event_type: row.event_type,
    engine: row.engine,
    triggered_by: row.triggered_by,
    flow_id: row.flow_id,
    session_id: row.session_id,
    user_id: row.user_id,
    trace_id: row.trace_id,
    span_id: row.span_id,
    platform: row.platform,
    action: row.action,
    status: row.status,
    severity: row.severity,
    error_type: row.error_type,
    message: row.message,
    stack: row.stack,
    duration_ms: row.duration_ms === null ? null : Number(row.duration_ms),
    retries: row.retries === null ? null : Number(row.retries),
    fingerprint: row.fingerprint,
    alert: Number(row.alert) === 1,
    sampled: Number(row.sampled) === 1,
    attributes,
  };
}
