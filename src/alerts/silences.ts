// Silences: matchers (exact values) on the facts of an alert group, active between starts_at and
// ends_at. A notification whose group matches an active silence is recorded as silenced and not sent.
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { parseTime, type FieldError } from '../event.js';
import { pathToField } from './rules.js';

/** Facts a silence can match (see contextOf() in rules.ts). */
export const SILENCE_FIELDS = [
  'project_id', 'rule_id', 'engine', 'platform', 'action', 'fingerprint', 'error_type', 'event_type', 'flow_id', 'severity',
] as const;
export type SilenceField = (typeof SILENCE_FIELDS)[number];

const Value = Type.String({ minLength: 1, maxLength: 1024 });
export const SilenceInput = Type.Object(
  {
    project_id: Type.Optional(Type.Union([Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$' }), Type.Null()])),
    matchers: Type.Record(Type.String(), Value),
    starts_at: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Number()])),
    ends_at: Type.Union([Type.String({ maxLength: 64 }), Type.Number()]),
    comment: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type SilenceInput = Static<typeof SilenceInput>;
const checker = TypeCompiler.Compile(SilenceInput);

export interface Silence {
  id: string;
  /** null = applies to every project (only principals with every project). */
  project_id: string | null;
  matchers: Partial<Record<SilenceField, string>>;
  starts_at: number;
  ends_at: number;
  comment: string;
  created_by: string | null;
  created_at: number;
  updated_at: number;
}

export type SilenceSpec = Pick<Silence, 'project_id' | 'matchers' | 'starts_at' | 'ends_at' | 'comment'>;

export function validateSilence(input: unknown, now: number): { ok: true; spec: SilenceSpec } | { ok: false; errors: FieldError[] } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, errors: [{ field: '(body)', message: 'must be a JSON object' }] };
  }
  if (!checker.Check(input)) {
    const errors: FieldError[] = [];
    const seen = new Set<string>();
    for (const e of checker.Errors(input)) {
      const field = pathToField(e.path);
      if (seen.has(field)) continue;
      seen.add(field);
      const message = e.value === undefined ? 'is required' : e.message.toLowerCase().replace(/^unexpected property.*/, 'is not a known field');
      errors.push({ field, message });
    }
    return { ok: false, errors };
  }
  const s = input as SilenceInput;
  const errors: FieldError[] = [];
  const matchers: Partial<Record<SilenceField, string>> = {};
  for (const [k, v] of Object.entries(s.matchers)) {
    if (!(SILENCE_FIELDS as readonly string[]).includes(k)) errors.push({ field: `matchers.${k}`, message: `must be one of ${SILENCE_FIELDS.join(', ')}` });
    else matchers[k as SilenceField] = v;
  }
  const project = s.project_id ?? matchers.project_id ?? null;
  if (s.project_id && matchers.project_id && matchers.project_id !== s.project_id) {
    errors.push({ field: 'matchers.project_id', message: 'differs from project_id' });
  }
  if (Object.keys(s.matchers).length === 0 && !project) errors.push({ field: 'matchers', message: 'needs at least one matcher' });
  const starts = s.starts_at === undefined ? now : parseTime(s.starts_at);
  if (starts === undefined) errors.push({ field: 'starts_at', message: 'must be ISO 8601 or epoch milliseconds' });
  const ends = parseTime(s.ends_at);
  if (ends === undefined) errors.push({ field: 'ends_at', message: 'must be ISO 8601 or epoch milliseconds' });
  else if (starts !== undefined && ends <= starts) errors.push({ field: 'ends_at', message: 'must be after starts_at' });
  if (errors.length) return { ok: false, errors };
  if (project) matchers.project_id = project;
  return { ok: true, spec: { project_id: project, matchers, starts_at: starts!, ends_at: ends!, comment: s.comment ?? '' } };
}

export function isActive(s: Pick<Silence, 'starts_at' | 'ends_at'>, now: number): boolean {
  return s.starts_at <= now && now < s.ends_at;
}

/** Every matcher must equal the fact of the same name; a missing fact never matches. */
export function silenceMatches(s: Pick<Silence, 'project_id' | 'matchers'>, context: Record<string, string>): boolean {
  if (s.project_id !== null && context.project_id !== s.project_id) return false;
  for (const [k, v] of Object.entries(s.matchers)) {
    if (context[k] !== v) return false;
  }
  return true;
}

/** The first active silence that matches, if any. */
export function findSilence(silences: readonly Silence[], context: Record<string, string>, now: number): Silence | undefined {
  return silences.find((s) => isActive(s, now) && silenceMatches(s, context));
}
