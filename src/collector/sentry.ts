// Sentry SDK payloads → canonical event inputs. Pure: the envelope format
// (https://develop.sentry.dev/sdk/data-model/envelopes/) split into items, and error events,
// messages, transactions and Sentry logs mapped onto our fields. Stack frames are rendered in the
// text form of the SDK's platform (V8, Python or Java), so fingerprints match the same stacks sent
// directly (see aggregator/fingerprint.ts).
import { createHash } from 'node:crypto';
import type { FieldError } from '../event.js';
import { severityFromLevel } from './logger-conventions.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);

export interface EnvelopeItem {
  header: Obj;
  payload: Buffer;
}

/**
 * Splits an envelope: a header line, then per item a header line and a payload of `length` bytes
 * (or up to the next newline when the header has no length).
 */
export function parseEnvelope(body: Buffer): { ok: true; header: Obj; items: EnvelopeItem[] } | { ok: false; error: FieldError } {
  let pos = 0;
  const line = (): Buffer | undefined => {
    if (pos >= body.length) return undefined;
    let end = body.indexOf(0x0a, pos);
    if (end < 0) end = body.length;
    const out = body.subarray(pos, end);
    pos = end + 1;
    return out;
  };
  const json = (b: Buffer | undefined, field: string): { value: Obj } | { error: FieldError } => {
    try {
      const v = JSON.parse(b?.toString('utf8') || '{}');
      return isObj(v) ? { value: v } : { error: { field, message: 'must be a JSON object' } };
    } catch (e) {
      return { error: { field, message: `is not valid JSON: ${(e as Error).message}` } };
    }
  };
  const header = json(line(), 'envelope header');
  if ('error' in header) return { ok: false, error: header.error };
  const items: EnvelopeItem[] = [];
  while (pos < body.length) {
    const h = line();
    if (h === undefined) break;
    if (h.length === 0 || (h.length === 1 && h[0] === 0x0d)) continue; // trailing newline
    const ih = json(h, `item ${items.length} header`);
    if ('error' in ih) return { ok: false, error: ih.error };
    const header2 = ih.value;
    let payload: Buffer;
    const length = header2.length;
    if (typeof length === 'number' && Number.isInteger(length) && length >= 0) {
      if (pos + length > body.length) {
        return { ok: false, error: { field: `item ${items.length}`, message: `declares length ${length} but the envelope ends first` } };
      }
      payload = body.subarray(pos, pos + length);
      pos += length;
      if (body[pos] === 0x0a) pos++;
    } else payload = line() ?? Buffer.alloc(0);
    items.push({ header: header2, payload });
  }
  return { ok: true, header: header.value, items };
}

// ---------------------------------------------------------------------------------------------
// stack frames → stack text
// ---------------------------------------------------------------------------------------------

interface Frame {
  filename?: string; abs_path?: string; function?: string; module?: string; lineno?: number; colno?: number;
}

const fnName = (f: Frame): string | undefined => (f.function && f.function !== '?' ? f.function : undefined);

/**
 * The frames as the platform prints them. Sentry lists frames oldest first; V8 and Java print the
 * newest first, Python oldest first.
 */
export function renderStack(platform: string, type: string, value: string, frames: readonly Frame[]): string {
  const head = value ? `${type}: ${value}` : type;
  if (frames.length === 0) return '';
  if (platform === 'python') {
    const lines = frames.map((f) => `  File "${f.abs_path ?? f.filename ?? '<unknown>'}", line ${f.lineno ?? 0}, in ${fnName(f) ?? '<module>'}`);
    return `Traceback (most recent call last):\n${lines.join('\n')}\n${head}`;
  }
  const newestFirst = [...frames].reverse();
  if (platform === 'java') {
    const lines = newestFirst.map((f) => `\tat ${f.module ? `${f.module}.` : ''}${fnName(f) ?? '<unknown>'}(${f.filename ?? 'Unknown Source'}${f.lineno ? `:${f.lineno}` : ''})`);
    return `${head}\n${lines.join('\n')}`;
  }
  const lines = newestFirst.map((f) => {
    const loc = `${f.abs_path ?? f.filename ?? '<anonymous>'}${f.lineno ? `:${f.lineno}${f.colno ? `:${f.colno}` : ''}` : ''}`;
    const fn = fnName(f);
    return fn ? `    at ${fn} (${loc})` : `    at ${loc}`;
  });
  return `${head}\n${lines.join('\n')}`;
}

// ---------------------------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------------------------

/** Sentry timestamps: float seconds or RFC 3339. */
export function sentryTime(v: unknown): number | string | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.round(v * 1000);
  if (typeof v === 'string' && v !== '') return /^\d+(\.\d+)?$/.test(v) ? Math.round(Number(v) * 1000) : v;
  return undefined;
}

/** Sentry span / trace status → ours. */
function spanStatus(v: unknown): string {
  if (v === undefined || v === null || v === 'ok' || v === 'unset' || v === 'unknown') return 'ok';
  if (v === 'deadline_exceeded') return 'timeout';
  return 'error';
}

/** Flattens an object into dotted keys (depth-bounded); arrays are kept as values. */
function flatten(prefix: string, v: unknown, out: Obj, depth = 0): void {
  if (isObj(v) && depth < 4) {
    for (const k of Object.keys(v)) flatten(prefix ? `${prefix}.${k}` : k, v[k], out, depth + 1);
  } else if (v !== undefined && v !== null) out[prefix] = v;
}

/** The fields every Sentry event kind shares: ids, user, tags, contexts, release, environment. */
function commonSentry(ev: Obj, project: string): { out: Obj; attrs: Obj } {
  const out: Obj = { project_id: project };
  const attrs: Obj = {};
  const tags = isObj(ev.tags) ? ev.tags : Array.isArray(ev.tags) ? Object.fromEntries(ev.tags.filter(Array.isArray)) : {};
  const engine = str(tags.engine) ?? str(tags.service) ?? str(tags['service.name']);
  if (engine) out.engine = engine;
  for (const [k, v] of Object.entries(tags)) if (k !== 'engine') attrs[k] = v;
  const user = isObj(ev.user) ? ev.user : undefined;
  if (user) {
    const id = str(user.id) ?? str(user.email) ?? str(user.username) ?? str(user.ip_address);
    if (id) out.user_id = id;
    for (const k of ['email', 'username', 'ip_address', 'segment']) if (str(user[k])) attrs[`user.${k}`] = user[k];
  }
  for (const k of ['release', 'environment', 'server_name', 'logger', 'dist', 'transaction'] as const) {
    if (str(ev[k])) attrs[k] = ev[k];
  }
  if (str(ev.platform)) attrs['sentry.platform'] = ev.platform;
  const sdk = isObj(ev.sdk) ? ev.sdk : undefined;
  if (sdk && str(sdk.name)) attrs['sentry.sdk'] = `${sdk.name}${str(sdk.version) ? `/${sdk.version}` : ''}`;
  const contexts = isObj(ev.contexts) ? ev.contexts : {};
  const trace = isObj(contexts.trace) ? contexts.trace : undefined;
  if (trace) {
    if (str(trace.trace_id)) out.trace_id = String(trace.trace_id).toLowerCase();
    if (str(trace.span_id)) out.span_id = String(trace.span_id).toLowerCase();
  }
  for (const [name, c] of Object.entries(contexts)) if (name !== 'trace') flatten(`contexts.${name}`, c, attrs);
  if (isObj(ev.extra)) flatten('extra', ev.extra, attrs);
  if (Array.isArray(ev.fingerprint)) {
    const parts = ev.fingerprint.filter((x): x is string => typeof x === 'string');
    if (parts.length > 0 && !parts.includes('{{ default }}')) out.fingerprint = parts.join('|').slice(0, 256);
  }
  return { out, attrs };
}

/** The last breadcrumbs, oldest first, as one JSON attribute (they explain what led to the event). */
function breadcrumbs(ev: Obj): string | undefined {
  const b = Array.isArray(ev.breadcrumbs) ? ev.breadcrumbs : isObj(ev.breadcrumbs) && Array.isArray(ev.breadcrumbs.values) ? ev.breadcrumbs.values : [];
  if (b.length === 0) return undefined;
  const kept = b.slice(-30).filter(isObj).map((c) => ({
    timestamp: c.timestamp, type: c.type, category: c.category, level: c.level, message: typeof c.message === 'string' ? c.message.slice(0, 500) : undefined,
  }));
  return JSON.stringify(kept);
}

/** An error or message event (item type "event", or the body of /store/). */
export function mapSentryEvent(ev: Obj, project: string): Obj {
  const { out, attrs } = commonSentry(ev, project);
  if (typeof ev.event_id === 'string' && /^[0-9a-fA-F-]{32,36}$/.test(ev.event_id)) out.id = ev.event_id.replace(/-/g, '').toLowerCase();
  const t = sentryTime(ev.timestamp);
  if (t !== undefined) out.timestamp = t;
  const severity = severityFromLevel(ev.level ?? (ev.exception ? 'error' : undefined));
  if (severity) out.severity = severity;

  const values = isObj(ev.exception) && Array.isArray(ev.exception.values) ? ev.exception.values.filter(isObj)
    : Array.isArray(ev.exception) ? ev.exception.filter(isObj) : [];
  // the last value is the exception that was raised (earlier ones are its causes); a synthetic one
  // (captureMessage with a stack attached) is a message, not an error
  const last = values[values.length - 1];
  const synthetic = last && isObj(last.mechanism) && last.mechanism.synthetic === true && !str(last.type);
  const main = synthetic ? undefined : last;
  const logentry = isObj(ev.logentry) ? ev.logentry : isObj(ev.message) ? ev.message : undefined;
  const text = str(logentry?.formatted) ?? str(logentry?.message) ?? (typeof ev.message === 'string' ? ev.message : undefined);
  if (main) {
    out.event_type = 'error';
    out.status = 'error';
    const type = str(main.type) ?? 'Error';
    const value = str(main.value) ?? '';
    out.error_type = type;
    out.message = value || text || type;
    if (text && value && text !== value) attrs['sentry.message'] = text;
    const platform = String(ev.platform ?? '');
    const st = isObj(main.stacktrace) ? main.stacktrace : undefined;
    const frames = st && Array.isArray(st.frames) ? (st.frames.filter(isObj) as Frame[]) : [];
    const stack = renderStack(platform, type, value, frames);
    if (stack) out.stack = stack;
    if (str(main.module)) attrs['exception.module'] = main.module;
    const mech = isObj(main.mechanism) ? main.mechanism : undefined;
    if (mech && str(mech.type)) attrs['exception.mechanism'] = mech.type;
    if (mech && typeof mech.handled === 'boolean') attrs['exception.handled'] = mech.handled;
    if (values.length > 1) attrs['exception.causes'] = values.slice(0, -1).map((v) => `${str(v.type) ?? ''}: ${str(v.value) ?? ''}`).join('\n');
  } else if (text) {
    out.message = text;
  }
  const crumbs = breadcrumbs(ev);
  if (crumbs) attrs.breadcrumbs = crumbs;
  if (Object.keys(attrs).length > 0) out.attributes = attrs;
  return out;
}

/** A transaction: the transaction itself and each of its spans become `span` events. */
export function mapSentryTransaction(ev: Obj, project: string): Obj[] {
  const { out, attrs } = commonSentry(ev, project);
  const contexts = isObj(ev.contexts) ? ev.contexts : {};
  const trace = isObj(contexts.trace) ? contexts.trace : {};
  const start = sentryTime(ev.start_timestamp);
  const end = sentryTime(ev.timestamp);
  const root: Obj = { ...out, event_type: 'span', status: spanStatus(trace.status) };
  if (str(ev.transaction)) root.action = String(ev.transaction).slice(0, 256);
  if (start !== undefined) root.timestamp = start;
  if (typeof start === 'number' && typeof end === 'number' && end >= start) root.duration_ms = end - start;
  if (typeof ev.event_id === 'string' && /^[0-9a-fA-F]{32}$/.test(ev.event_id)) root.id = ev.event_id.toLowerCase();
  if (str(trace.op)) attrs['sentry.op'] = trace.op;
  if (str(trace.parent_span_id)) attrs['sentry.parent_span_id'] = trace.parent_span_id;
  if (Object.keys(attrs).length > 0) root.attributes = attrs;
  const events: Obj[] = [root];
  const spans = Array.isArray(ev.spans) ? ev.spans.filter(isObj) : [];
  for (const s of spans) {
    const e: Obj = { project_id: project, event_type: 'span', status: spanStatus(s.status) };
    if (out.engine) e.engine = out.engine;
    if (out.user_id) e.user_id = out.user_id;
    const name = str(s.description) ?? str(s.op);
    if (name) e.action = name.slice(0, 256);
    if (str(s.trace_id)) e.trace_id = String(s.trace_id).toLowerCase();
    else if (out.trace_id) e.trace_id = out.trace_id;
    if (str(s.span_id)) e.span_id = String(s.span_id).toLowerCase();
    const ss = sentryTime(s.start_timestamp);
    const se = sentryTime(s.timestamp);
    if (ss !== undefined) e.timestamp = ss;
    if (typeof ss === 'number' && typeof se === 'number' && se >= ss) e.duration_ms = se - ss;
    const a: Obj = {};
    if (str(s.op)) a['sentry.op'] = s.op;
    if (str(s.parent_span_id)) a['sentry.parent_span_id'] = s.parent_span_id;
    if (isObj(s.data)) flatten('', s.data, a);
    if (Object.keys(a).length > 0) e.attributes = a;
    events.push(e);
  }
  return events;
}

/** A "log" item (Sentry.logger.*): {items: [{timestamp, level, body, trace_id, attributes: {k: {value, type}}}]}. */
export function mapSentryLogs(payload: Obj, project: string): Obj[] {
  const items = Array.isArray(payload.items) ? payload.items.filter(isObj) : [];
  return items.map((l) => {
    const e: Obj = { project_id: project };
    const t = sentryTime(l.timestamp);
    if (t !== undefined) e.timestamp = t;
    const sev = severityFromLevel(l.level);
    if (sev) e.severity = sev;
    if (typeof l.body === 'string') e.message = l.body;
    if (str(l.trace_id)) e.trace_id = String(l.trace_id).toLowerCase();
    const attrs = typedAttributes(l.attributes);
    const engine = str(attrs.engine) ?? str(attrs['service.name']);
    if (engine) e.engine = engine;
    if (str(attrs['user.id'])) e.user_id = attrs['user.id'];
    if (Object.keys(attrs).length > 0) e.attributes = attrs;
    return e;
  });
}

/** Typed attributes ({key: {value, type}}) as plain values. */
function typedAttributes(v: unknown): Obj {
  const out: Obj = {};
  if (isObj(v)) for (const [k, a] of Object.entries(v)) out[k] = isObj(a) && 'value' in a ? a.value : a;
  return out;
}

/** Attributes SDKs add to every span that say nothing about it. */
const NOISE = new Set(['sentry.sdk.integrations', 'sentry.sdk.name', 'sentry.sdk.version', 'sentry.trace_lifecycle', 'sentry.segment.name.source']);

/**
 * A "span" item (span streaming, v2: the SDKs since 10.x send spans this way instead of
 * transactions): {version: 2, items: [{name, trace_id, span_id, parent_span_id, start_timestamp,
 * end_timestamp, status, attributes}]}.
 */
export function mapSentrySpans(payload: Obj, project: string): Obj[] {
  const items = Array.isArray(payload.items) ? payload.items.filter(isObj) : [];
  return items.map((sp) => {
    const e: Obj = { project_id: project, event_type: 'span', status: spanStatus(sp.status) };
    if (str(sp.name)) e.action = String(sp.name).slice(0, 256);
    if (str(sp.trace_id)) e.trace_id = String(sp.trace_id).toLowerCase();
    if (str(sp.span_id)) e.span_id = String(sp.span_id).toLowerCase();
    const ss = sentryTime(sp.start_timestamp);
    const se = sentryTime(sp.end_timestamp ?? sp.timestamp);
    if (ss !== undefined) e.timestamp = ss;
    if (typeof ss === 'number' && typeof se === 'number' && se >= ss) e.duration_ms = se - ss;
    const attrs = typedAttributes(sp.attributes);
    for (const k of NOISE) delete attrs[k];
    const engine = str(attrs.engine) ?? str(attrs['service.name']);
    if (engine) e.engine = engine;
    if (str(attrs['user.id'])) {
      e.user_id = attrs['user.id'];
      delete attrs['user.id'];
    }
    for (const k of ['release', 'environment'] as const) {
      if (attrs[`sentry.${k}`] !== undefined) {
        attrs[k] = attrs[`sentry.${k}`];
        delete attrs[`sentry.${k}`];
      }
    }
    if (str(sp.parent_span_id)) attrs['sentry.parent_span_id'] = String(sp.parent_span_id).toLowerCase();
    if (Object.keys(attrs).length > 0) e.attributes = attrs;
    return e;
  });
}

/** Item types a Sentry SDK sends that carry no event for us: accepted and ignored. */
export const IGNORED_ITEMS: ReadonlySet<string> = new Set([
  'session', 'sessions', 'client_report', 'attachment', 'profile', 'profile_chunk', 'replay_event', 'replay_recording',
  'check_in', 'statsd', 'metric_buckets', 'user_report', 'feedback', 'otel_log', 'trace_metric',
]);

// ---------------------------------------------------------------------------------------------
// DSNs
// ---------------------------------------------------------------------------------------------

/**
 * The numeric project a DSN names (Sentry SDKs accept only digits there): derived from the project
 * id, so it needs no table and is the same on every node.
 */
export function dsnProjectNumber(project: string): string {
  return String(parseInt(createHash('sha256').update(project).digest('hex').slice(0, 12), 16));
}

/** `http://<public key>@host:port/<project number>` for a base URL such as http://127.0.0.1:8080. */
export function buildDsn(baseUrl: string, publicKey: string, project: string): string {
  const u = new URL(baseUrl);
  u.username = publicKey;
  u.password = '';
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.protocol}//${publicKey}@${u.host}${path}/${dsnProjectNumber(project)}`;
}
