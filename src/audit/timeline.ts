// Audit timeline entries: one stored event as "who did what, when, from where, with what outcome".
// Pure functions; the routes in http.ts and the exports in export.ts share them.
import { isErrorLike, type EventRow } from '../event.js';
import { configDiff, parseConfigValue, type DiffEntry } from './diff.js';

/** Attributes an engine may record the client's address under, in order of preference. */
export const CLIENT_ADDRESS_KEYS = ['client_ip', 'ip', 'remote_addr', 'client_address'] as const;
/** Attributes that may name what a config change or deploy touched. */
export const CHANGE_TARGET_KEYS = ['target', 'config_key', 'key', 'setting', 'path', 'field', 'component', 'service'] as const;
export const CHANGE_VERSION_KEYS = ['version', 'release', 'revision', 'commit'] as const;
export const CHANGE_EVENT_TYPES = ['config_change', 'deploy'] as const;
/** Diffs longer than this are cut (the timeline says so). */
export const MAX_DIFF_ENTRIES = 500;

export type Attrs = Record<string, string>;

export function attributesOf(row: Pick<EventRow, 'attr_keys' | 'attr_values'>): Attrs {
  const out: Attrs = {};
  for (let i = 0; i < row.attr_keys.length; i++) out[row.attr_keys[i]] = row.attr_values[i];
  return out;
}

export function clientAddress(attrs: Attrs): string | null {
  for (const k of CLIENT_ADDRESS_KEYS) {
    const v = attrs[k];
    if (v) return v;
  }
  return null;
}

/** An error is what the aggregator fingerprinted: every error-like event (see event.ts) has one. */
export function isErrorRow(row: Pick<EventRow, 'fingerprint' | 'status' | 'severity' | 'event_type'>): boolean {
  return row.fingerprint !== '' || isErrorLike(row);
}

export function isChangeEvent(row: Pick<EventRow, 'event_type'>): boolean {
  return (CHANGE_EVENT_TYPES as readonly string[]).includes(row.event_type);
}

export interface ChangeInfo {
  kind: string;
  /** What was changed (a config key, a component), when the event names it. */
  target: string | null;
  version: string | null;
  summary: string;
  before?: unknown;
  after?: unknown;
  /** Present when the event carries before and/or after values. */
  diff?: DiffEntry[];
  diff_truncated?: boolean;
}

function firstOf(attrs: Attrs, keys: readonly string[]): string | null {
  for (const k of keys) if (attrs[k]) return attrs[k];
  return null;
}

/** What a config_change or deploy event says changed; null for other events. */
export function changeInfo(row: EventRow, attrs: Attrs = attributesOf(row)): ChangeInfo | null {
  if (!isChangeEvent(row)) return null;
  const info: ChangeInfo = {
    kind: row.event_type,
    target: firstOf(attrs, CHANGE_TARGET_KEYS),
    version: firstOf(attrs, CHANGE_VERSION_KEYS),
    summary: row.message,
  };
  const hasBefore = Object.hasOwn(attrs, 'before');
  const hasAfter = Object.hasOwn(attrs, 'after');
  if (hasBefore || hasAfter) {
    const before = hasBefore ? parseConfigValue(attrs.before) : undefined;
    const after = hasAfter ? parseConfigValue(attrs.after) : undefined;
    if (hasBefore) info.before = before;
    if (hasAfter) info.after = after;
    // a change to one named key with scalar values reads best under that key's name
    const scalar = (v: unknown) => v === undefined || v === null || typeof v !== 'object';
    const root = info.target && scalar(before) && scalar(after) ? info.target : '';
    const diff = configDiff(before, after, { root, maxEntries: MAX_DIFF_ENTRIES + 1 });
    if (diff.length > MAX_DIFF_ENTRIES) {
      diff.length = MAX_DIFF_ENTRIES;
      info.diff_truncated = true;
    }
    info.diff = diff;
  }
  return info;
}

export interface TimelineEntry {
  id: string;
  project_id: string;
  when: string;
  who: { user_id: string; session_id: string };
  what: { event_type: string; action: string; platform: string; flow_id: string; trace_id: string; message: string };
  from: { engine: string; triggered_by: string; address: string | null };
  outcome: {
    status: string;
    severity: string;
    duration_ms: number | null;
    error: { error_type: string; message: string; fingerprint: string } | null;
  };
  change?: ChangeInfo;
  attributes: Attrs;
}

/** The attributes shown beside an entry: the ones not already shown as address or change. */
function otherAttributes(attrs: Attrs, change: boolean): Attrs {
  const out: Attrs = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (change && (k === 'before' || k === 'after')) continue;
    out[k] = v;
  }
  return out;
}

export function toTimelineEntry(row: EventRow): TimelineEntry {
  const attrs = attributesOf(row);
  const error = isErrorRow(row)
    ? { error_type: row.error_type, message: row.message, fingerprint: row.fingerprint }
    : null;
  const entry: TimelineEntry = {
    id: row.id,
    project_id: row.project_id,
    when: new Date(Number(row.timestamp)).toISOString(),
    who: { user_id: row.user_id, session_id: row.session_id },
    what: {
      event_type: row.event_type, action: row.action, platform: row.platform, flow_id: row.flow_id,
      trace_id: row.trace_id, message: row.message,
    },
    from: { engine: row.engine, triggered_by: row.triggered_by, address: clientAddress(attrs) },
    outcome: {
      status: row.status,
      severity: row.severity,
      duration_ms: row.duration_ms === null ? null : Number(row.duration_ms),
      error,
    },
    attributes: {},
  };
  const change = changeInfo(row, attrs);
  if (change) entry.change = change;
  entry.attributes = otherAttributes(attrs, change !== null);
  return entry;
}
