// AST → a ClickHouse WHERE expression. Every value is a bound parameter (`{p3:String}`); only
// column names from the field catalogue and fixed operators enter the SQL text. Runs unchanged on
// chDB and on clickhouse-server 18.16 (no ILIKE, no hasToken there):
// - text is `lowerUTF8(col) LIKE '%…%'`, which an ngrambf_v1 skip index on lowerUTF8(col) can
//   answer (tokenbf_v1 too, for the whole words inside a longer phrase); positionCaseInsensitive
//   cannot use any index;
// - keyword equality is `col = v` (primary key, bloom_filter skip indexes);
// - nullable numbers compare through ifNull(…, 0), so NOT keeps two-valued logic, as in memory.
import type { ParamBag } from '../filters.js';
import { isWildcard, literal, NUMERIC_ATTR_RE, type FieldRef, type Pattern, type QueryNode } from './ast.js';

export function compileSql(node: QueryNode, bag: ParamBag): string {
  switch (node.kind) {
    case 'and':
      return `(${node.items.map((n) => compileSql(n, bag)).join(' AND ')})`;
    case 'or':
      return `(${node.items.map((n) => compileSql(n, bag)).join(' OR ')})`;
    case 'not':
      return `NOT ${compileSql(node.item, bag)}`;
    case 'text':
      return textSql(node.pattern, bag);
    case 'match':
      return matchSql(node.field, node.pattern, bag);
    case 'compare':
      return compareSql(node.field, node.op === '=' ? '=' : node.op, node.value, bag);
    case 'has':
      return hasSql(node.field, bag);
  }
}

/** The columns bare words and phrases search. */
export const TEXT_COLUMNS = ['message', 'error_type', 'stack'] as const;

/** Case-insensitive: the pattern anywhere in message, error_type or stack. */
export function textSql(pattern: Pattern, bag: ParamBag): string {
  const p = bag.add(containsLike(pattern), 'String');
  return `(${TEXT_COLUMNS.map((c) => `lowerUTF8(${c}) LIKE ${p}`).join(' OR ')})`;
}

function matchSql(field: FieldRef, pattern: Pattern, bag: ParamBag): string {
  if (field.kind === 'attr') {
    const k = bag.add(field.key, 'String');
    const v = `attr_values[indexOf(attr_keys, ${k})]`;
    const cond = isWildcard(pattern) ? `${v} LIKE ${bag.add(anchoredLike(pattern), 'String')}` : `${v} = ${bag.add(literal(pattern), 'String')}`;
    return `(has(attr_keys, ${k}) AND ${cond})`;
  }
  if (field.type === 'text') return `lowerUTF8(${field.name}) LIKE ${bag.add(containsLike(pattern), 'String')}`;
  return isWildcard(pattern)
    ? `${field.name} LIKE ${bag.add(anchoredLike(pattern), 'String')}`
    : `${field.name} = ${bag.add(literal(pattern), 'String')}`;
}

function compareSql(field: FieldRef, op: string, value: number, bag: ParamBag): string {
  if (field.kind === 'attr') {
    const k = bag.add(field.key, 'String');
    const v = `attr_values[indexOf(attr_keys, ${k})]`;
    return `(has(attr_keys, ${k}) AND match(${v}, ${bag.add(NUMERIC_ATTR_RE, 'String')}) AND toFloat64OrZero(${v}) ${op} ${bag.add(value, 'Float64')})`;
  }
  switch (field.type) {
    case 'number':
      return `ifNull(${field.name} ${op} ${bag.add(value, 'Float64')}, 0)`;
    default: // time, flag: integers, never null
      return `${field.name} ${op} ${bag.add(value, 'Int64')}`;
  }
}

function hasSql(field: FieldRef, bag: ParamBag): string {
  if (field.kind === 'attr') return `has(attr_keys, ${bag.add(field.key, 'String')})`;
  return field.type === 'number' ? `isNotNull(${field.name})` : `${field.name} != ''`;
}

/** LIKE's own characters, escaped: the value means itself. */
function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** The whole value: `a*b` → `a%b`. */
export function anchoredLike(pattern: Pattern): string {
  return pattern.map(escapeLike).join('%');
}

/** Anywhere, lower-cased (the column side is lowerUTF8'd): `a*b` → `%a%b%`. */
export function containsLike(pattern: Pattern): string {
  return `%${pattern.map((s) => escapeLike(s.toLowerCase())).join('%')}%`;
}
