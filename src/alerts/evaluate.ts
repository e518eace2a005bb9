// Pure rule evaluation: windowed statistics in, a verdict out; and the group bookkeeping every
// kind shares (group keys, notification ids, when a repeat is due). No I/O here.
import { createHash } from 'node:crypto';
import type { RuleKind } from './rules.js';

/** One group's numbers over a rule's window (what the evaluator's GROUP BY query returns). */
export interface WindowStats {
  project_id: string;
  labels: Record<string, string>;
  /** Matching events in [now - window, now). */
  count: number;
  /** Error-like events among them (error_rate). */
  errors: number;
  /** p95 duration_ms of them (latency); null when none had a duration. */
  p95: number | null;
  /** Matching events in the baseline period before the window (spike). */
  baseline: number;
  first: number;
  last: number;
  last_message: string;
}

export interface EvalRule {
  kind: RuleKind;
  threshold: number | null;
  min_count: number | null;
  window_s: number;
  baseline_window_s: number | null;
}

export interface Verdict {
  firing: boolean;
  /** The measured value compared with the threshold (count, share, ms, ratio). */
  value: number;
  /** A few words for the title, e.g. "error rate 60%". */
  short: string;
  /** One line for the notification. */
  text: string;
}

export function formatDuration(s: number): string {
  if (s % 86400 === 0) return `${s / 86400}d`;
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

const pct = (x: number): string => `${Math.round(x * 1000) / 10}%`;

/** Decides whether one group of a windowed rule fires. */
export function evaluateWindow(rule: EvalRule, s: WindowStats): Verdict {
  const t = rule.threshold ?? Infinity;
  const w = formatDuration(rule.window_s);
  const min = rule.min_count ?? 1;
  switch (rule.kind) {
    case 'threshold':
      return {
        firing: s.count >= t,
        value: s.count,
        short: `${s.count} events in ${w}`,
        text: `${s.count} matching events in the last ${w} (threshold ${t})`,
      };
    case 'error_rate': {
      const rate = s.count > 0 ? s.errors / s.count : 0;
      return {
        firing: s.count >= min && rate >= t,
        value: rate,
        short: `error rate ${pct(rate)}`,
        text: `error rate ${pct(rate)} (${s.errors} of ${s.count}) over the last ${w} (threshold ${pct(t)}, minimum ${min} events)`,
      };
    }
    case 'latency': {
      const p95 = s.p95 ?? 0;
      return {
        firing: s.p95 !== null && s.count >= min && p95 >= t,
        value: p95,
        short: `p95 ${Math.round(p95)} ms`,
        text: `p95 duration ${Math.round(p95)} ms over the last ${w} (threshold ${t} ms, ${s.count} samples)`,
      };
    }
    case 'spike': {
      const base = baselinePerWindow(rule, s.baseline);
      const effective = Math.max(base, 1);
      const ratio = s.count / effective;
      return {
        firing: s.count >= min && s.count >= t * effective,
        value: ratio,
        short: `${Math.round(ratio * 10) / 10}× the usual volume`,
        text: `${s.count} matching events in the last ${w}, ${Math.round(ratio * 10) / 10}× the baseline of ${Math.round(base * 10) / 10} per ${w} (threshold ${t}×, minimum ${min} events)`,
      };
    }
    default:
      return { firing: false, value: 0, short: '', text: `kind ${rule.kind} is not windowed` };
  }
}

/** spike: the mean count per window over the baseline period. */
export function baselinePerWindow(rule: EvalRule, baselineCount: number): number {
  const periods = (rule.baseline_window_s ?? rule.window_s) / rule.window_s;
  return periods > 0 ? baselineCount / periods : 0;
}

/** Alertmanager's group key: the rule, the project and the sorted group_by values. */
export function groupId(ruleId: string, projectId: string, labels: Record<string, string>): string {
  const sorted = Object.keys(labels).sort().map((k) => [k, labels[k]]);
  return `grp_${hash(JSON.stringify([ruleId, projectId, sorted])).slice(0, 24)}`;
}

/**
 * The stable id of one notification: the group, the start of its firing episode and the sequence
 * number within it. A retried delivery, or the same state change recorded by two nodes, has one id.
 */
export function notificationId(group: string, episodeStart: number, seq: number): string {
  return `ntf_${hash(`${group}:${episodeStart}:${seq}`).slice(0, 24)}`;
}

export interface RepeatState {
  last_notified_at: number | null;
  last_silenced: number;
}

/**
 * While a group keeps firing: a repeat is due when repeat_interval_s has passed since the last
 * notification (0 = never repeat), or immediately when the last one was silenced and the silence
 * no longer applies.
 */
export function repeatDue(g: RepeatState, repeatIntervalS: number, silencedNow: boolean, now: number): boolean {
  if (g.last_notified_at === null) return true;
  if (g.last_silenced && !silencedNow) return true;
  if (repeatIntervalS <= 0) return false;
  return now - g.last_notified_at >= repeatIntervalS * 1000;
}

/** Exponential backoff with equal jitter: half the delay fixed, half random; Retry-After is a floor. */
export function retryDelayMs(attempt: number, baseMs: number, retryAfterMs?: number, capMs = 10 * 60_000, rand = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = exp / 2 + rand() * (exp / 2);
  return Math.max(Math.round(jittered), retryAfterMs ?? 0);
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
