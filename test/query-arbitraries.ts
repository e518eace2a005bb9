// fast-check generators for the query-language property tests: events from small domains (so
// queries match some and miss others), query ASTs over every node kind, and a printer that writes
// an AST back as query text (so every generated query also goes through the lexer and parser).
import fc from 'fast-check';
import type { EventRow } from '../src/event.js';
import type { FieldRef, Pattern, QueryNode } from '../src/query/language/ast.js';

// Characters where JavaScript's toLowerCase and ClickHouse's lowerUTF8 agree (not İ, ẞ or a final Σ),
// with the characters LIKE, regexes, the lexer and SQL quoting treat specially.
const PIECES = [
  'token', 'Token', 'EXPIRED', 'expired', 'timeout', 'Slack', 'slack', 'Notion', 'Stripe', 'a', 'B', ' ', '  ', '\n', '\t',
  '%', '_', '\\', '*', "'", '"', '(', ')', '|', ':', '=', '-', '.', '[', ']', '{p0:String}', 'é', 'Ж', 'ж', '日本', '😀', '0', '5',
];
const text = fc.array(fc.constantFrom(...PIECES), { maxLength: 6 }).map((a) => a.join(''));
const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);

const KEYS = ['region', 'code', 'k.x', 'Region'];
const ATTR_VALUES = ['eu', 'us', 'EU', '500', '404', '1.5', '-2', '007', 'abc', '', '5%', 'a_b', '1e3'];

export const eventArb: fc.Arbitrary<Omit<EventRow, 'id' | 'project_id'>> = fc.record({
  timestamp: fc.integer({ min: 1_753_400_000_000, max: 1_753_400_100_000 }),
  received_at: fc.constant(1_753_400_100_000),
  event_type: pick('execution', 'error', 'deploy', 'log'),
  engine: pick('execution', 'vault', ''),
  triggered_by: pick('', 'execution'),
  flow_id: pick('', 'f1', 'f2', 'f10'),
  session_id: pick('', 's1', 's2'),
  user_id: pick('', 'u1', 'u2', 'u10', "u'x", 'U1'),
  trace_id: pick('', 't1'),
  span_id: pick('', 'sp1'),
  platform: pick('Slack', 'Notion', 'Stripe', 'slack', ''),
  action: pick('send_message', 'send_%', 'create', ''),
  status: pick('error', 'success', 'timeout', ''),
  severity: pick('info', 'high', 'critical', ''),
  error_type: fc.oneof(pick('', 'api_timeout', 'TokenExpired'), text),
  message: text,
  stack: fc.oneof(fc.constant(''), text),
  duration_ms: fc.oneof(fc.constant(null), pick(0, 5, 999.5, 1000, 1500, 60_000)),
  retries: fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 3 })),
  fingerprint: pick('', 'fp1', 'fp2'),
  alert: pick(0, 1),
  sampled: pick(0, 0, 1),
  attrs: fc.uniqueArray(fc.tuple(pick(...KEYS), pick(...ATTR_VALUES)), { maxLength: 3, selector: (t) => t[0] }),
}).map(({ attrs, ...r }) => ({ ...r, attr_keys: attrs.map((a) => a[0]), attr_values: attrs.map((a) => a[1]) }));

// ---- queries ------------------------------------------------------------------------------------

const col = (name: string, type: string) => ({ kind: 'column', name, type }) as FieldRef;
const keywordField = fc.oneof(
  pick('platform', 'status', 'user_id', 'action', 'severity', 'event_type', 'flow_id', 'fingerprint', 'project_id', 'error_type').map((n) => col(n, 'keyword')),
  pick(...KEYS).map((key): FieldRef => ({ kind: 'attr', key })),
);
const textField = pick('message', 'stack').map((n) => col(n, 'text'));
const literalValue = fc.oneof(
  pick('Slack', 'slack', 'error', 'u1', "u'x", 'send_%', 'eu', 'EU', '500', '', 'fp1', 'api_timeout', 'deploy', 'high', 'f1', 'q1', 'q17'),
  text,
);
/** A value with wildcards: literal segments around `*`. */
const pattern: fc.Arbitrary<Pattern> = fc.oneof(
  { weight: 3, arbitrary: literalValue.map((v) => [v]) },
  { weight: 2, arbitrary: fc.array(pick('', 'S', 'lack', 'u', '1', 'e', '%', '_', 'x', 'ok', 'E'), { minLength: 2, maxLength: 4 }) },
);
const cmpOp = pick<'>' | '>=' | '<' | '<=' | '='>('>', '>=', '<', '<=', '=');

const leaf: fc.Arbitrary<QueryNode> = fc.oneof(
  pattern.map((p): QueryNode => ({ kind: 'text', pattern: p, column: 1 })),
  fc.record({ field: keywordField, pattern }).map(({ field, pattern }): QueryNode => ({ kind: 'match', field, pattern, column: 1 })),
  fc.record({ field: textField, pattern }).map(({ field, pattern }): QueryNode => ({ kind: 'match', field, pattern, column: 1 })),
  fc.record({ name: pick('duration_ms', 'retries'), op: cmpOp, value: pick(0, 1, 3, 5, 999.5, 1000, 1200, -1) })
    .map(({ name, op, value }): QueryNode => ({ kind: 'compare', field: col(name, 'number'), op, value, column: 1 })),
  fc.record({ op: cmpOp, value: fc.integer({ min: 1_753_400_000_000, max: 1_753_400_100_000 }) })
    .map(({ op, value }): QueryNode => ({ kind: 'compare', field: col('timestamp', 'time'), op, value, column: 1 })),
  fc.record({ name: pick('alert', 'sampled'), value: pick(0, 1) })
    .map(({ name, value }): QueryNode => ({ kind: 'compare', field: col(name, 'flag'), op: '=', value, column: 1 })),
  fc.record({ key: pick(...KEYS), op: cmpOp, value: pick(-2, 0, 1.5, 404, 500, 1000) })
    .map(({ key, op, value }): QueryNode => ({ kind: 'compare', field: { kind: 'attr', key }, op, value, column: 1 })),
  fc.oneof(
    pick('stack', 'user_id', 'platform', 'message').map((n) => col(n, n === 'stack' || n === 'message' ? 'text' : 'keyword')),
    pick('duration_ms', 'retries').map((n) => col(n, 'number')),
    pick(...KEYS).map((key): FieldRef => ({ kind: 'attr', key })),
  ).map((field): QueryNode => ({ kind: 'has', field, column: 1 })),
);

export const queryArb: fc.Arbitrary<QueryNode> = fc.letrec<{ node: QueryNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 4, arbitrary: leaf },
    { weight: 1, arbitrary: fc.array(tie('node'), { minLength: 2, maxLength: 3 }).map((items): QueryNode => ({ kind: 'and', items, column: 1 })) },
    { weight: 1, arbitrary: fc.array(tie('node'), { minLength: 2, maxLength: 3 }).map((items): QueryNode => ({ kind: 'or', items, column: 1 })) },
    { weight: 1, arbitrary: tie('node').map((item): QueryNode => ({ kind: 'not', item, column: 1 })) },
  ),
})).node;

/** Query text with the AST's meaning; `style` varies the spelling (OR vs |, NOT vs -, = vs :). */
export function printQuery(n: QueryNode, style = 0): string {
  const alt = (k: number) => ((style >> k) & 1) === 1;
  switch (n.kind) {
    case 'and':
      return `(${n.items.map((x) => printQuery(x, style)).join(alt(0) ? ' AND ' : ' ')})`;
    case 'or': {
      // an OR of one keyword field's values, sometimes as field:(a OR b)
      const same = n.items.every((x) => x.kind === 'match' && sameField(x.field, (n.items[0] as { field: FieldRef }).field));
      if (same && alt(4)) {
        const f = (n.items[0] as { field: FieldRef }).field;
        return `${fieldName(f)}:(${n.items.map((x) => printValue((x as { pattern: Pattern }).pattern)).join(' OR ')})`;
      }
      // words and phrases glued with | are one term of alternatives
      if (alt(1) && alt(2) && n.items.every((x) => x.kind === 'text')) return `(${n.items.map((x) => printQuery(x, style)).join('|')})`;
      return `(${n.items.map((x) => printQuery(x, style)).join(alt(1) ? ' | ' : ' OR ')})`;
    }
    case 'not':
      return alt(2) ? `-(${printQuery(n.item, style)})` : `NOT (${printQuery(n.item, style)})`;
    case 'text':
      return printWord(n.pattern);
    case 'match':
      return `${fieldName(n.field)}${alt(3) ? '=' : ':'}${printValue(n.pattern)}`;
    case 'compare': {
      const v = n.field.kind === 'column' && n.field.type === 'flag' ? (n.value === 1 ? 'true' : 'false') : String(n.value);
      return `${fieldName(n.field)}:${n.op === '=' ? '' : n.op}${v}`;
    }
    case 'has':
      return `has:${fieldName(n.field)}`;
  }
}

function sameField(a: FieldRef, b: FieldRef): boolean {
  return a.kind === b.kind && (a.kind === 'attr' ? a.key === (b as typeof a).key : a.name === (b as typeof a).name);
}

function fieldName(f: FieldRef): string {
  return f.kind === 'attr' ? `attr.${f.key}` : f.name;
}

/** A bare word (escaping what the lexer would read otherwise), or a phrase when that is simpler. */
function printWord(p: Pattern): string {
  if (p.length === 1) return `"${p[0].replace(/["\\]/g, (c) => `\\${c}`)}"`;
  return p.map((s) => s.replace(/[\s\\*()"|:=!-]|^[A-Za-z]/g, (c) => `\\${c}`)).join('*');
}

/** In value position: ` `, ( ) " | and a leading > < [ { are special. */
function printValue(p: Pattern): string {
  if (p.length === 1 && (p[0] === '' || /[\s"]/.test(p[0]))) return `"${p[0].replace(/["\\]/g, (c) => `\\${c}`)}"`;
  const s = p.map((x) => x.replace(/[\s\\*()"|]/g, (c) => `\\${c}`)).join('*');
  return /^[<>[{]/.test(s) ? `\\${s}` : s;
}
