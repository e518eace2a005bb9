// Filters → SQL. Pure functions: a filter object in, a WHERE clause and its bound parameters out.
// Values never enter the SQL text; only column names from a fixed list and parameter names do.
import { FILTER_FIELDS, parseTime, type FieldError, type FilterField } from '../event.js';
import type { Params } from '../storage/transport.js';
import { isFilterField, isWildcard, literal, type QueryNode } from './language/ast.js';
import { compileSql, textSql } from './language/compile-sql.js';
import { QuerySyntaxError } from './language/errors.js';
import { parseQuery } from './language/parser.js';
import { Type, type TObject, type TSchema } from '@sinclair/typebox';

export interface EventFilter {
  /** The tenant guard: the projects the caller may see; undefined = all (admin). */
  projects?: readonly string[];
  eq: Partial<Record<FilterField, string[]>>;
  attrs: { key: string; values: string[] }[];
  from?: number;
  to?: number;
  /** Case-insensitive text in message, error_type and stack. */
  q?: string;
  /** The query language (language/), ANDed with everything else. */
  query?: QueryNode;
  alert?: boolean;
  /** Only events with a duration (performance views). */
  hasDuration?: boolean;
  /** Only events the aggregator fingerprinted (error groups). */
  hasFingerprint?: boolean;
  /** Leave out the engine's own audit records (admin actions), e.g. from performance figures. */
  excludeAudit?: boolean;
}

export function emptyFilter(): EventFilter {
  return { eq: {}, attrs: [] };
}

export interface SqlFragment {
  sql: string;
  params: Params;
}

/** Builds parameter names p0, p1… so fragments from several builders never collide. */
export class ParamBag {
  readonly params: Params = {};
  private n = 0;
  constructor(private readonly prefix = 'p') {}
  add(value: Params[string], type: string): string {
    const name = `${this.prefix}${this.n++}`;
    this.params[name] = value;
    return `{${name}:${type}}`;
  }
}

export function whereClause(f: EventFilter, bag: ParamBag): string {
  const parts: string[] = [];
  if (f.projects) parts.push(`project_id IN ${bag.add([...f.projects], 'Array(String)')}`);
  // id, session, trace, user and fingerprint conditions are answered by the events' skip indexes
  // (storage/schema.ts EVENT_INDEXES): plain comparisons, so the index analysis sees them
  for (const field of FILTER_FIELDS) {
    const values = f.eq[field];
    if (!values || values.length === 0) continue;
    parts.push(values.length === 1
      ? `${field} = ${bag.add(values[0], 'String')}`
      : `${field} IN ${bag.add(values, 'Array(String)')}`);
  }
  for (const a of f.attrs) {
    const v = `attr_values[indexOf(attr_keys, ${bag.add(a.key, 'String')})]`;
    parts.push(a.values.length === 1
      ? `has(attr_keys, ${bag.add(a.key, 'String')}) AND ${v} = ${bag.add(a.values[0], 'String')}`
      : `has(attr_keys, ${bag.add(a.key, 'String')}) AND ${v} IN ${bag.add(a.values, 'Array(String)')}`);
  }
  if (f.from !== undefined) parts.push(`timestamp >= ${bag.add(f.from, 'Int64')}`);
  if (f.to !== undefined) parts.push(`timestamp < ${bag.add(f.to, 'Int64')}`);
  if (f.q) parts.push(textSql([f.q], bag));
  if (f.query) parts.push(compileSql(f.query, bag));
  if (f.alert !== undefined) parts.push(`alert = ${f.alert ? 1 : 0}`);
  if (f.hasDuration) parts.push('isNotNull(duration_ms)');
  if (f.hasFingerprint) parts.push("fingerprint != ''");
  if (f.excludeAudit) parts.push("event_type != 'audit'");
  return parts.length ? parts.join(' AND ') : '1';
}

// ---- query-string parsing -------------------------------------------------------------------

export const MAX_VALUES_PER_FIELD = 100;
const MAX_VALUE_LENGTH = 1024;

type Raw = Record<string, unknown>;

function asStrings(raw: unknown, field: string, errors: FieldError[]): string[] | undefined {
  if (raw === undefined) return undefined;
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length > MAX_VALUES_PER_FIELD) {
    errors.push({ field, message: `at most ${MAX_VALUES_PER_FIELD} values` });
    return undefined;
  }
  const out: string[] = [];
  for (const v of list) {
    if (typeof v !== 'string') {
      errors.push({ field, message: 'must be a string' });
      return undefined;
    }
    if (v.length > MAX_VALUE_LENGTH) {
      errors.push({ field, message: `must be at most ${MAX_VALUE_LENGTH} characters` });
      return undefined;
    }
    if (v.includes('\u0000')) {
      errors.push({ field, message: 'must not contain NUL' });
      return undefined;
    }
    out.push(v);
  }
  return out;
}

export function asSingle(raw: unknown, field: string, errors: FieldError[]): string | undefined {
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) {
    errors.push({ field, message: 'must be given once' });
    return undefined;
  }
  return asStrings(raw, field, errors)?.[0];
}

export function asTime(raw: unknown, field: string, errors: FieldError[]): number | undefined {
  const s = asSingle(raw, field, errors);
  if (s === undefined || s === '') return undefined;
  const t = parseTime(s);
  if (t === undefined || t < 0 || t > 8.64e15) {
    errors.push({ field, message: 'must be ISO 8601 or epoch milliseconds' });
    return undefined;
  }
  return t;
}

export function asInt(raw: unknown, field: string, min: number, max: number, errors: FieldError[]): number | undefined {
  const s = asSingle(raw, field, errors);
  if (s === undefined || s === '') return undefined;
  if (!/^\d{1,10}$/.test(s) || Number(s) < min || Number(s) > max) {
    errors.push({ field, message: `must be a whole number from ${min} to ${max}` });
    return undefined;
  }
  return Number(s);
}

/**
 * The parameters parseFilter() reads, as a TypeBox querystring schema for the OpenAPI document
 * (routes name it under config.docs; parseFilter stays the validator). `extra`: the route's own.
 */
export function filterQueryDocs(extra: Record<string, TSchema> = {}): TObject {
  const anyOf = Type.Union([Type.String(), Type.Array(Type.String())], { description: 'repeat the parameter for "any of"' });
  const fields: Record<string, TSchema> = {};
  for (const f of FILTER_FIELDS) fields[f] = Type.Optional(anyOf);
  return Type.Object({
    ...fields,
    from: Type.Optional(Type.String({ description: 'ISO 8601 or epoch ms; [from, to)' })),
    to: Type.Optional(Type.String({ description: 'ISO 8601 or epoch ms' })),
    q: Type.Optional(Type.String({ description: 'case-insensitive text in message, error_type and stack' })),
    query: Type.Optional(Type.String({ description: 'the query language, e.g. status:error platform:(Slack OR Notion) -"rate limit"' })),
    ...extra,
  }, { description: 'attr.<key>=<value> filters on attributes too' });
}

/**
 * Reads the filters every event route shares: exact fields, attr.<key>, from/to, q.
 * Unknown parameters are errors unless listed in `extra` (the route reads those itself).
 */
export function parseFilter(query: Raw, extra: readonly string[], errors: FieldError[]): EventFilter {
  const f = emptyFilter();
  const known = new Set<string>([...FILTER_FIELDS, 'from', 'to', 'q', 'query', ...extra]);
  for (const field of FILTER_FIELDS) {
    const v = asStrings(query[field], field, errors);
    if (v) f.eq[field] = v;
  }
  for (const key of Object.keys(query)) {
    if (key.startsWith('attr.')) {
      const name = key.slice(5);
      if (name.length === 0 || name.length > 128) {
        errors.push({ field: key, message: 'attribute name must be 1..128 characters' });
        continue;
      }
      const v = asStrings(query[key], key, errors);
      if (v) f.attrs.push({ key: name, values: v });
    } else if (!known.has(key)) {
      errors.push({ field: key, message: 'is not a known parameter' });
    }
  }
  f.from = asTime(query.from, 'from', errors);
  f.to = asTime(query.to, 'to', errors);
  if (f.from !== undefined && f.to !== undefined && f.from > f.to) {
    errors.push({ field: 'from', message: 'must not be after to' });
  }
  const q = asSingle(query.q, 'q', errors);
  if (q) f.q = q;
  const text = asQueryText(query.query, 'query', errors);
  if (text) addQuery(f, text, 'query', errors);
  return f;
}

function asQueryText(raw: unknown, field: string, errors: FieldError[]): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') {
    errors.push({ field, message: Array.isArray(raw) ? 'must be given once' : 'must be a string' });
    return undefined;
  }
  return raw;
}

/**
 * Parses a query-language string into the filter (ANDed with what is there); a syntax error is
 * reported on `field` with its column. Top-level `field:value` conjuncts on exact fields become
 * `eq` filters, so they reach the primary key, the skip indexes, the rollup and the tenant guard as the
 * plain parameters do.
 */
export function addQuery(f: EventFilter, text: string, field: string, errors: FieldError[]): void {
  let node: QueryNode | undefined;
  try {
    node = parseQuery(text);
  } catch (e) {
    if (!(e instanceof QuerySyntaxError)) throw e;
    errors.push({ field, message: `column ${e.column}: ${e.message}`, column: e.column });
    return;
  }
  if (!node) return;
  const rest: QueryNode[] = [];
  for (const c of node.kind === 'and' ? node.items : [node]) {
    const lifted = equalityOf(c);
    if (lifted && !f.eq[lifted.field]) f.eq[lifted.field] = lifted.values;
    else rest.push(c);
  }
  const residual = rest.length === 0 ? undefined : rest.length === 1 ? rest[0] : { kind: 'and' as const, items: rest, column: node.column };
  if (residual) f.query = f.query ? { kind: 'and', items: [f.query, residual], column: 1 } : residual;
}

/** `field:v` or `field:(a OR b)` on an exact field: the values it allows. */
function equalityOf(n: QueryNode): { field: FilterField; values: string[] } | undefined {
  if (n.kind === 'match' && n.field.kind === 'column' && isFilterField(n.field.name) && !isWildcard(n.pattern)) {
    return { field: n.field.name, values: [literal(n.pattern)] };
  }
  if (n.kind === 'or') {
    const parts = n.items.map(equalityOf);
    const field = parts[0]?.field;
    if (field && parts.length <= MAX_VALUES_PER_FIELD && parts.every((p) => p?.field === field)) {
      return { field, values: [...new Set(parts.flatMap((p) => p!.values))] };
    }
  }
  return undefined;
}
