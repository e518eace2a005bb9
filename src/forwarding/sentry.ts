// Error events → Sentry envelopes, as a Sentry server (or Relay) takes them at
// POST /api/<project>/envelope/: a header line, an item header line, the event JSON. One envelope per
// event; the event keeps our fingerprint, so Sentry groups the way the engine does.
import { createHash } from 'node:crypto';
import type { EventRow } from '../event.js';
import type { ParsedDsn, SentryTarget } from './config.js';

export const SENTRY_CLIENT = 'puraify-monitoring/1';

interface SentryFrame {
  function?: string;
  module?: string;
  filename?: string;
  lineno?: number;
  colno?: number;
  in_app?: boolean;
}

const V8_FRAME = /^\s*at (?:(.+?) \()?(.+?):(\d+):(\d+)\)?\s*$/;
const JAVA_FRAME = /^\s*at ([^\s()]+)\.([^.\s()]+)\(([^():]*)(?::(\d+))?\)/;
const PYTHON_FRAME = /^\s*File "([^"]+)", line (\d+)(?:, in (.+))?$/;

const libraryPath = (p: string): boolean =>
  p.startsWith('node:') || p.startsWith('internal/') || p.includes('node_modules') || /site-packages|dist-packages/.test(p);

/** The Sentry platform a stack trace comes from (Sentry reads frames per platform). */
export type StackPlatform = 'node' | 'python' | 'java' | 'other';

/**
 * A stack trace (Node/V8, Java, Python) → Sentry frames, oldest call first as Sentry wants them,
 * and the platform the frames were recognised as.
 */
export function parseStack(stack: string): { frames: SentryFrame[]; platform: StackPlatform } {
  const frames: SentryFrame[] = [];
  let python = false;
  let java = false;
  for (const line of stack.split('\n')) {
    let m = PYTHON_FRAME.exec(line);
    if (m) {
      python = true;
      frames.push({ filename: m[1], lineno: Number(m[2]), function: m[3]?.trim() || '<module>', in_app: !libraryPath(m[1]) });
      continue;
    }
    m = JAVA_FRAME.exec(line);
    if (m && !line.includes(' (')) {
      java = true;
      frames.push({ module: m[1], function: m[2], filename: m[3] || undefined, lineno: m[4] ? Number(m[4]) : undefined, in_app: !/^(java|javax|sun|jdk)\./.test(m[1]) });
      continue;
    }
    m = V8_FRAME.exec(line);
    if (m) {
      const file = m[2].startsWith('file://') ? m[2].slice(7) : m[2];
      frames.push({ function: m[1]?.replace(/^async /, '') || '<anonymous>', filename: file, lineno: Number(m[3]), colno: Number(m[4]), in_app: !libraryPath(file) });
    }
  }
  // V8 and Java print the innermost call first, Python last
  if (python) return { frames, platform: 'python' };
  return { frames: frames.reverse(), platform: java ? 'java' : frames.length ? 'node' : 'other' };
}

const LEVELS: Record<string, string> = {
  debug: 'debug', info: 'info', low: 'info', warning: 'warning', warn: 'warning', medium: 'warning',
  error: 'error', high: 'error', critical: 'fatal', fatal: 'fatal',
};

/** Our ids are UUIDs or ULID-like strings; Sentry's event_id is 32 lowercase hex: derived stably. */
export function sentryEventId(id: string): string {
  const hex = id.replace(/-/g, '').toLowerCase();
  return /^[0-9a-f]{32}$/.test(hex) ? hex : createHash('md5').update(id).digest('hex');
}

const attr = (row: EventRow, key: string): string | undefined => {
  const i = row.attr_keys.indexOf(key);
  return i < 0 ? undefined : row.attr_values[i];
};

/** One stored error event → a Sentry event payload. */
export function sentryEvent(row: EventRow, target: SentryTarget): Record<string, unknown> {
  const { frames, platform } = parseStack(row.stack);
  const extra: Record<string, string> = { puraify_event_id: row.id };
  for (let i = 0; i < row.attr_keys.length; i++) extra[row.attr_keys[i]] = row.attr_values[i];
  const tags: Record<string, string> = { project_id: row.project_id, event_type: row.event_type };
  for (const k of ['engine', 'action', 'status', 'platform', 'flow_id', 'session_id'] as const) if (row[k]) tags[k] = row[k];
  const ev: Record<string, unknown> = {
    event_id: sentryEventId(row.id),
    timestamp: Number(row.timestamp) / 1000,
    platform,
    level: LEVELS[row.severity.toLowerCase()] ?? 'error',
    logger: row.engine || undefined,
    environment: attr(row, 'environment') ?? target.environment,
    release: attr(row, 'release'),
    exception: {
      values: [{
        type: row.error_type || 'Error',
        value: row.message,
        ...(frames.length ? { stacktrace: { frames } } : {}),
      }],
    },
    tags,
    extra,
    ...(row.fingerprint ? { fingerprint: [row.fingerprint] } : {}),
    ...(row.user_id ? { user: { id: row.user_id } } : {}),
    ...(/^[0-9a-f]{32}$/.test(row.trace_id) ? { contexts: { trace: { trace_id: row.trace_id, ...(/^[0-9a-f]{16}$/.test(row.span_id) ? { span_id: row.span_id } : {}) } } } : {}),
  };
  if (frames.length === 0 && row.stack) extra.stack = row.stack;
  return ev;
}

/** The envelope for one event: newline-separated header, item header (with its byte length), payload. */
export function sentryEnvelope(row: EventRow, target: SentryTarget, dsn: string): string {
  const ev = sentryEvent(row, target);
  const payload = JSON.stringify(ev);
  const header = JSON.stringify({ event_id: ev.event_id, dsn });
  const item = JSON.stringify({ type: 'event', length: Buffer.byteLength(payload), content_type: 'application/json' });
  return `${header}\n${item}\n${payload}\n`;
}

/** The request headers Sentry authenticates an envelope with. */
export function sentryAuthHeader(dsn: ParsedDsn): Record<string, string> {
  return { 'x-sentry-auth': `Sentry sentry_version=7, sentry_key=${dsn.publicKey}, sentry_client=${SENTRY_CLIENT}` };
}
