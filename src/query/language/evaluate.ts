// The same AST decided on one row in memory (live tail, instant alert rules). Property tests hold
// it to compile-sql.ts: for any query and any events, both select the same rows. The AST is turned
// into a closure once (regexes built once), so the hot path allocates nothing per row.
import type { EventRow } from '../../event.js';
import { isWildcard, literal, NUMERIC_ATTR, type CompareOp, type FieldRef, type Pattern, type QueryNode } from './ast.js';
import { TEXT_COLUMNS } from './compile-sql.js';

export type RowPredicate = (row: EventRow) => boolean;

const compiled = new WeakMap<QueryNode, RowPredicate>();

/** Does the row satisfy the query? */
export function evaluate(node: QueryNode, row: EventRow): boolean {
  return predicateOf(node)(row);
}

export function predicateOf(node: QueryNode): RowPredicate {
  let p = compiled.get(node);
  if (!p) compiled.set(node, (p = build(node)));
  return p;
}

function build(node: QueryNode): RowPredicate {
  switch (node.kind) {
    case 'and': {
      const items = node.items.map(build);
      return (r) => items.every((p) => p(r));
    }
    case 'or': {
      const items = node.items.map(build);
      return (r) => items.some((p) => p(r));
    }
    case 'not': {
      const item = build(node.item);
      return (r) => !item(r);
    }
    case 'text': {
      const test = containsTest(node.pattern);
      return (r) => TEXT_COLUMNS.some((c) => test(r[c]));
    }
    case 'match':
      return matchPredicate(node.field, node.pattern);
    case 'compare':
      return comparePredicate(node.field, node.op, node.value);
    case 'has':
      return hasPredicate(node.field);
  }
}

/** Case-insensitive text contains (lowerUTF8 + LIKE '%…%' in SQL). */
export function containsTest(pattern: Pattern): (s: string) => boolean {
  const lowered = pattern.map((s) => s.toLowerCase());
  if (!isWildcard(lowered)) {
    const needle = lowered[0];
    return (s) => s.toLowerCase().includes(needle);
  }
  return (s) => {
    const l = s.toLowerCase();
    return segmentsIn(lowered, l, 0, l.length);
  };
}

function exactTest(pattern: Pattern): (s: string) => boolean {
  if (!isWildcard(pattern)) {
    const v = literal(pattern);
    return (s) => s === v;
  }
  const first = pattern[0];
  const last = pattern[pattern.length - 1];
  const middle = pattern.slice(1, -1);
  return (s) => s.length >= first.length + last.length && s.startsWith(first) && s.endsWith(last)
    && segmentsIn(middle, s, first.length, s.length - last.length);
}

/**
 * Do the segments occur in order, without overlapping, inside s[from, to)? Taking the leftmost
 * place of each is always right when the only wildcard is `*`, so this is a few indexOf calls:
 * linear, where a regex with many `.*` can backtrack for ages on a long message.
 */
function segmentsIn(segments: readonly string[], s: string, from: number, to: number): boolean {
  let at = from;
  for (const seg of segments) {
    if (seg === '') continue;
    const i = s.indexOf(seg, at);
    if (i < 0 || i + seg.length > to) return false;
    at = i + seg.length;
  }
  return true;
}

function attrValue(row: EventRow, key: string): string | undefined {
  const i = row.attr_keys.indexOf(key);
  return i < 0 ? undefined : row.attr_values[i];
}

function matchPredicate(field: FieldRef, pattern: Pattern): RowPredicate {
  if (field.kind === 'attr') {
    const test = exactTest(pattern);
    return (r) => {
      const v = attrValue(r, field.key);
      return v !== undefined && test(v);
    };
  }
  const name = field.name;
  const test = field.type === 'text' ? containsTest(pattern) : exactTest(pattern);
  return (r) => test(String(r[name] ?? ''));
}

const CMP: Record<CompareOp, (a: number, b: number) => boolean> = {
  '=': (a, b) => a === b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
};

function comparePredicate(field: FieldRef, op: CompareOp, value: number): RowPredicate {
  const cmp = CMP[op];
  if (field.kind === 'attr') {
    return (r) => {
      const v = attrValue(r, field.key);
      return v !== undefined && NUMERIC_ATTR.test(v) && cmp(Number(v), value);
    };
  }
  const name = field.name;
  return (r) => {
    const v = r[name];
    return v !== null && v !== undefined && cmp(Number(v), value);
  };
}

function hasPredicate(field: FieldRef): RowPredicate {
  if (field.kind === 'attr') return (r) => r.attr_keys.includes(field.key);
  const name = field.name;
  if (field.type === 'number') return (r) => r[name] !== null && r[name] !== undefined;
  return (r) => r[name] !== '' && r[name] !== undefined && r[name] !== null;
}
