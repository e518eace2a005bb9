// Query parameters as ClickHouse takes them: `{name:Type}` placeholders bound client-side into
// escaped literals (servers without query parameters; chDB, whose bound queries run one at a time
// across the whole process — see chdb-transport.ts), or encoded as `param_<name>` URL values.
import type { Params } from './transport.js';

interface Placeholder {
  start: number;
  end: number;
  name: string;
  type: string;
}

/**
 * The `{name:Type}` placeholders of a statement, outside string literals, quoted identifiers and
 * comments (as the server's own parser sees them).
 */
export function placeholders(sql: string): Placeholder[] {
  const out: Placeholder[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    if (c === "'" || c === '"' || c === '`') {
      i++;
      while (i < n && sql[i] !== c) {
        if (sql[i] === '\\') i++;
        i++;
      }
      i++;
      continue;
    }
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const e = sql.indexOf('*/', i + 2);
      i = e === -1 ? n : e + 2;
      continue;
    }
    if (c === '{') {
      const m = /^\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^{}]+?)\s*\}/.exec(sql.slice(i, i + 300));
      if (m) {
        out.push({ start: i, end: i + m[0].length, name: m[1], type: m[2].replace(/\s+/g, '') });
        i += m[0].length;
        continue;
      }
    }
    i++;
  }
  return out;
}

/** Array elements bound after IN: up to this many as a tuple, more through one array literal. */
const IN_TUPLE_MAX = 200;

/**
 * Binds `{name:Type}` placeholders as SQL literals, for servers without query parameters.
 * Values are validated against the declared type: String (any JS string), Int8…Int64 and
 * UInt8…UInt64 (safe integers or bigints in range), Float32/Float64 (finite numbers), Bool and
 * Array(T) of those; anything else is an error. An array right after IN becomes `(a, b)` (old
 * servers refuse `IN [a, b]`), `(SELECT arrayJoin([…]))` when long (cheaper to parse) and
 * `(NULL)` when empty (matches nothing, like `IN []`).
 */
export function bindLiterals(sql: string, params: Params): string {
  let out = '';
  let pos = 0;
  for (const p of placeholders(sql)) {
    out += sql.slice(pos, p.start);
    pos = p.end;
    if (!Object.prototype.hasOwnProperty.call(params, p.name)) throw new Error(`query parameter ${p.name} is missing`);
    const value = params[p.name];
    const arrayType = /^Array\((.+)\)$/.exec(p.type);
    if (arrayType && /\bIN\s*$/i.test(out) && Array.isArray(value)) {
      const items = (value as unknown[]).map((v) => literal(v, arrayType[1], p.name));
      out += items.length === 0 ? '(NULL)'
        : items.length <= IN_TUPLE_MAX ? `(${items.join(', ')})`
        : `(SELECT arrayJoin([${items.join(', ')}]))`;
    } else {
      out += literal(value, p.type, p.name);
    }
  }
  return out + sql.slice(pos);
}

const INT_RANGE: Record<string, [bigint, bigint]> = {
  Int8: [-(2n ** 7n), 2n ** 7n - 1n], Int16: [-(2n ** 15n), 2n ** 15n - 1n],
  Int32: [-(2n ** 31n), 2n ** 31n - 1n], Int64: [-(2n ** 63n), 2n ** 63n - 1n],
  UInt8: [0n, 2n ** 8n - 1n], UInt16: [0n, 2n ** 16n - 1n], UInt32: [0n, 2n ** 32n - 1n], UInt64: [0n, 2n ** 64n - 1n],
};

function literal(v: unknown, type: string, name: string): string {
  const bad = (why: string) => new Error(`query parameter ${name} (${type}): ${why}`);
  if (type === 'String') {
    if (typeof v !== 'string') throw bad(`expected a string, got ${typeof v}`);
    return quoteString(v);
  }
  if (type in INT_RANGE) {
    const b = toBigInt(v);
    if (b === undefined) throw bad(`expected an integer, got ${describe(v)}`);
    const [lo, hi] = INT_RANGE[type];
    if (b < lo || b > hi) throw bad(`${b} is out of range`);
    return b < 0n ? `(${b})` : String(b);
  }
  if (type === 'Float64' || type === 'Float32') {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`expected a finite number, got ${describe(v)}`);
    const s = String(v);
    const f = /[.e]/.test(s) ? s : `${s}.0`;
    return v < 0 || Object.is(v, -0) ? `(${f.startsWith('-') ? f : '-' + f})` : f;
  }
  if (type === 'Bool') {
    if (typeof v !== 'boolean') throw bad(`expected a boolean, got ${describe(v)}`);
    return v ? '1' : '0';
  }
  const arr = /^Array\((.+)\)$/.exec(type);
  if (arr) {
    if (!Array.isArray(v)) throw bad(`expected an array, got ${describe(v)}`);
    return `[${(v as unknown[]).map((x) => literal(x, arr[1], name)).join(', ')}]`;
  }
  throw bad('this type cannot be bound (String, Int*, UInt*, Float*, Bool and Array of them can)');
}

function toBigInt(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'boolean') return v ? 1n : 0n;
  return undefined;
}

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `a string`;
  return Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v;
}

/** A ClickHouse string literal: quote and backslash escaped, control characters as escapes. */
export function quoteString(s: string): string {
  let out = "'";
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c === 39) esc = "\\'";
    else if (c === 92) esc = '\\\\';
    else if (c < 32 || c === 127) {
      esc = c === 10 ? '\\n' : c === 9 ? '\\t' : c === 13 ? '\\r' : c === 0 ? '\\0' : `\\x${c.toString(16).padStart(2, '0')}`;
    }
    if (esc !== undefined) {
      out += s.slice(from, i) + esc;
      from = i + 1;
    }
  }
  return out + s.slice(from) + "'";
}

/** Values as `param_<name>` URL parameters take them (the server's escaped text form). */
export function encodeNativeParams(sql: string, params: Params): { entries: [string, string][]; size: number } {
  const types = new Map<string, string>();
  for (const p of placeholders(sql)) types.set(p.name, p.type);
  const entries: [string, string][] = [];
  let size = 0;
  for (const [name, type] of types) {
    if (!Object.prototype.hasOwnProperty.call(params, name)) throw new Error(`query parameter ${name} is missing`);
    // validates exactly as the literal path does, so both modes accept the same values
    literal(params[name], type, name);
    const text = nativeText(params[name], true);
    entries.push([name, text]);
    size += encodeURIComponent(text).length + name.length + 8;
  }
  return { entries, size };
}

function nativeText(v: unknown, top: boolean): string {
  if (typeof v === 'string') {
    const esc = v.replace(/[\\'\t\n\r\0\b\f]/g, (c) => NATIVE_ESC[c]);
    return top ? esc : `'${esc}'`;
  }
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => nativeText(x, false)).join(',')}]`;
  throw new Error(`cannot send ${typeof v} as a query parameter`);
}

const NATIVE_ESC: Record<string, string> = {
  '\\': '\\\\', "'": "\\'", '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0', '\b': '\\b', '\f': '\\f',
};
