// The query language's syntax tree and its field catalogue. The parser builds it; compile-sql.ts
// turns it into bound-parameter SQL, evaluate.ts decides it on one row in memory. Both read the
// same catalogue, so a field means the same thing on either path.
import { FILTER_FIELDS, type EventRow, type FilterField } from '../../event.js';

/**
 * What a field holds, which decides what `field:value` means:
 * - keyword: exact, case-sensitive (`*` makes it a pattern)
 * - text: the value anywhere in it, case-insensitive (message, stack)
 * - number: numeric equality and comparisons; missing (null) never matches
 * - time: epoch ms, values as ISO 8601 or epoch ms
 * - flag: true/false
 */
export type FieldKind = 'keyword' | 'text' | 'number' | 'time' | 'flag';

type ColumnName = keyof EventRow;

export const FIELD_KINDS: Readonly<Record<string, FieldKind>> = {
  ...Object.fromEntries(FILTER_FIELDS.map((f) => [f, 'keyword' as const])),
  message: 'text',
  stack: 'text',
  duration_ms: 'number',
  retries: 'number',
  timestamp: 'time',
  received_at: 'time',
  alert: 'flag',
  sampled: 'flag',
};

/** Other names people type for a field (Sentry's `level`, the spec's `type`). */
export const FIELD_ALIASES: Readonly<Record<string, string>> = { type: 'event_type', level: 'severity' };

/** A field a term names: a column of the events table, or one attribute. */
export type FieldRef =
  | { kind: 'column'; name: ColumnName; type: FieldKind }
  | { kind: 'attr'; key: string };

/**
 * A value to match: literal segments joined by `*` wildcards. `["tok"]` is the literal "tok",
 * `["tok", ""]` is `tok*`, `["", "a", "b"]` is `*a*b`. Escaped stars are inside a segment.
 */
export type Pattern = readonly string[];

export type CompareOp = '>' | '>=' | '<' | '<=' | '=';

/** Where in the query a node came from: 1-based column of its first character. */
interface At {
  column: number;
}

export type QueryNode =
  | ({ kind: 'and'; items: QueryNode[] } & At)
  | ({ kind: 'or'; items: QueryNode[] } & At)
  | ({ kind: 'not'; item: QueryNode } & At)
  /** Bare words and "phrases": case-insensitive, anywhere in message, error_type or stack. */
  | ({ kind: 'text'; pattern: Pattern } & At)
  /** `field:value` on a keyword, text or flag field, or an attribute. */
  | ({ kind: 'match'; field: FieldRef; pattern: Pattern } & At)
  /** `field:>n`, `field:[a TO b]` (two nodes), `duration_ms:100`; attributes compare as numbers. */
  | ({ kind: 'compare'; field: FieldRef; op: CompareOp; value: number } & At)
  /** `has:field`: set (not empty, not null; for attributes: the key is present). */
  | ({ kind: 'has'; field: FieldRef } & At);

export function isWildcard(p: Pattern): boolean {
  return p.length > 1;
}

/** The literal value of a pattern without wildcards. */
export function literal(p: Pattern): string {
  return p[0];
}

export function fieldLabel(f: FieldRef): string {
  return f.kind === 'attr' ? `attr.${f.key}` : f.name;
}

export function isFilterField(name: string): name is FilterField {
  return (FILTER_FIELDS as readonly string[]).includes(name);
}

/** Attribute values compared as numbers must look like this (both paths test it the same way). */
export const NUMERIC_ATTR_RE = '^-?[0-9]{1,18}(\\.[0-9]{1,18})?$';
export const NUMERIC_ATTR = new RegExp(NUMERIC_ATTR_RE);

/** `has`, an event field (or alias), or `attr.<key>`. */
export function isKnownFieldName(name: string): boolean {
  return name === 'has' || name.startsWith('attr.') || Object.hasOwn(FIELD_KINDS, name) || Object.hasOwn(FIELD_ALIASES, name);
}

/** The known field closest to a mistyped one (at most 2 edits away), for "did you mean". */
export function closestField(name: string): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const f of [...Object.keys(FIELD_KINDS), ...Object.keys(FIELD_ALIASES)]) {
    const d = editDistance(name.toLowerCase(), f, bestD);
    if (d < bestD) {
      best = f;
      bestD = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) >= max) return max;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
