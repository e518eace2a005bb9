// Query-parameter readers the audit routes add to the shared ones in query/filters.ts. Pure.
import type { FieldError } from '../event.js';
import { asSingle } from '../query/filters.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "250ms", "90s", "30m", "2h", "1d", or a plain number of milliseconds. */
export function parseDuration(s: string): number | undefined {
  const m = /^(\d{1,12})(ms|s|m|h|d)?$/.exec(s.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNITS[m[2] ?? 'ms'];
}

export function asDuration(raw: unknown, field: string, min: number, max: number, errors: FieldError[]): number | undefined {
  const s = asSingle(raw, field, errors);
  if (s === undefined || s === '') return undefined;
  const d = parseDuration(s);
  if (d === undefined || d < min || d > max) {
    errors.push({ field, message: `must be a duration from ${fmt(min)} to ${fmt(max)} (e.g. 30m, 2h, 1d, or milliseconds)` });
    return undefined;
  }
  return d;
}

function fmt(ms: number): string {
  for (const [u, n] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= n && ms % n === 0) return `${ms / n}${u}`;
  }
  return `${ms}ms`;
}

export function asNumber(raw: unknown, field: string, min: number, max: number, errors: FieldError[]): number | undefined {
  const s = asSingle(raw, field, errors);
  if (s === undefined || s === '') return undefined;
  if (!/^\d{1,9}(\.\d{1,6})?$/.test(s) || Number(s) < min || Number(s) > max) {
    errors.push({ field, message: `must be a number from ${min} to ${max}` });
    return undefined;
  }
  return Number(s);
}

export function asBool(raw: unknown, field: string, errors: FieldError[]): boolean | undefined {
  const s = asSingle(raw, field, errors);
  if (s === undefined || s === '') return undefined;
  if (s !== 'true' && s !== 'false') {
    errors.push({ field, message: 'must be true or false' });
    return undefined;
  }
  return s === 'true';
}

/** Parameters outside `allowed` are errors (keys are checked before the shared filter reader sees them). */
export function onlyParams(query: Record<string, unknown>, allowed: readonly string[], errors: FieldError[]): void {
  const ok = new Set(allowed);
  for (const k of Object.keys(query)) if (!ok.has(k)) errors.push({ field: k, message: 'is not a known parameter' });
}
