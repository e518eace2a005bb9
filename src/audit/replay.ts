// Session replay. Pure: a session's stored rows in (any order, as they came from storage), the
// ordered steps with their timings, the first error and what led to it out.
import { toStoredEvent, type EventRow, type StoredEvent } from '../event.js';
import { isErrorRow } from './timeline.js';
import type { SessionListItem } from './sessions.js';

/**
 * Time order. Equal timestamps are broken by arrival (received_at), then by id, so the order is
 * the same on every call whatever order storage returns the rows in. A late arrival (sent in a
 * later batch) sorts by its own timestamp, where it belongs.
 */
export function compareSteps(a: EventRow, b: EventRow): number {
  return (Number(a.timestamp) - Number(b.timestamp)) ||
    (Number(a.received_at) - Number(b.received_at)) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export interface ReplayStep extends StoredEvent {
  /** 0-based position in the session. */
  step: number;
  /** Since the session's first event. */
  offset_ms: number;
  /** Since the previous step; null for the first. */
  gap_ms: number | null;
  /** The duration the event reported, else the time until the next step (null for the last). */
  step_duration_ms: number | null;
  step_duration_source: 'reported' | 'until_next' | null;
  is_error: boolean;
  first_error: boolean;
  /** Received after an event that happened later: it arrived late and was put back in its place. */
  arrived_late: boolean;
}

export interface LedToStep {
  step: number;
  id: string;
  timestamp: string;
  event_type: string;
  engine: string;
  platform: string;
  action: string;
  status: string;
  message: string;
  /** How long before the first error this step happened. */
  before_error_ms: number;
}

/** The replay's header: a session list item's facts, plus the engines involved. */
export type SessionSummary = Omit<SessionListItem, 'has_error' | 'user_count' | 'flow_count'> & { engines: string[] };

export interface Replay {
  session: SessionSummary;
  steps: ReplayStep[];
  first_error: { step: number; id: string; timestamp: string; error_type: string; message: string; fingerprint: string; offset_ms: number } | null;
  /** The steps before the first error, oldest first (at most `lead` of them, the nearest ones). */
  led_to: LedToStep[];
  /** How many steps came before the first error in all (led_to may show fewer). */
  led_to_total: number;
}

function uniq(values: Iterable<string>): string[] {
  const s = new Set<string>();
  for (const v of values) if (v) s.add(v);
  return [...s];
}

export function buildReplay(sessionId: string, input: readonly EventRow[], opts: { lead?: number } = {}): Replay {
  const lead = opts.lead ?? 10;
  const rows = [...input].sort(compareSteps);
  const n = rows.length;
  const t = rows.map((r) => Number(r.timestamp));
  const start = n ? t[0] : 0;
  const end = n ? t[n - 1] : 0;

  // arrived_late: received after some later step was received (suffix minimum of received_at)
  const late = new Array<boolean>(n).fill(false);
  let minLater = Infinity;
  for (let i = n - 1; i >= 0; i--) {
    const rec = Number(rows[i].received_at);
    late[i] = rec > minLater;
    minLater = Math.min(minLater, rec);
  }

  let firstError = -1;
  const steps: ReplayStep[] = rows.map((r, i) => {
    const isError = isErrorRow(r);
    if (isError && firstError === -1) firstError = i;
    const reported = r.duration_ms === null ? null : Number(r.duration_ms);
    const untilNext = i + 1 < n ? t[i + 1] - t[i] : null;
    return {
      ...toStoredEvent(r),
      step: i,
      offset_ms: t[i] - start,
      gap_ms: i === 0 ? null : t[i] - t[i - 1],
      step_duration_ms: reported ?? untilNext,
      step_duration_source: reported !== null ? 'reported' : untilNext !== null ? 'until_next' : null,
      is_error: isError,
      first_error: false,
      arrived_late: late[i],
    };
  });

  let first: Replay['first_error'] = null;
  let ledTo: LedToStep[] = [];
  if (firstError >= 0) {
    const e = steps[firstError];
    e.first_error = true;
    first = {
      step: firstError, id: e.id, timestamp: e.timestamp, error_type: e.error_type, message: e.message,
      fingerprint: e.fingerprint, offset_ms: e.offset_ms,
    };
    ledTo = steps.slice(Math.max(0, firstError - lead), firstError).map((s) => ({
      step: s.step, id: s.id, timestamp: s.timestamp, event_type: s.event_type, engine: s.engine,
      platform: s.platform, action: s.action, status: s.status, message: s.message,
      before_error_ms: t[firstError] - t[s.step],
    }));
  }

  return {
    session: {
      id: sessionId,
      project_id: rows[0]?.project_id ?? '',
      start: new Date(start).toISOString(),
      end: new Date(end).toISOString(),
      duration_ms: end - start,
      events: n,
      errors: steps.filter((s) => s.is_error).length,
      users: uniq(rows.map((r) => r.user_id)),
      flows: uniq(rows.map((r) => r.flow_id)),
      engines: uniq(rows.map((r) => r.engine)),
    },
    steps,
    first_error: first,
    led_to: ledTo,
    led_to_total: Math.max(0, firstError),
  };
}
