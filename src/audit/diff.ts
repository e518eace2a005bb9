// Config-change diffs. Pure: two configuration values in (any JSON), the paths that differ out.
// Nested objects are flattened to dotted paths ("limits.retries"); arrays and scalars are compared
// as whole values, so a reordered list is one change, not one per index.

export interface DiffEntry {
  /** Dotted path of the changed value; keys that contain '.', '[' or ']' (or are empty) are written ["k"]. */
  path: string;
  op: 'added' | 'removed' | 'changed';
  /** Absent when the path was added. */
  before?: unknown;
  /** Absent when the path was removed. */
  after?: unknown;
}

export interface DiffOptions {
  /** The path of the root value, e.g. the config key a change names; '' = none. */
  root?: string;
  /** Deeper objects are compared as whole values. */
  maxDepth?: number;
  /** At most this many entries (the first ones by path). */
  maxEntries?: number;
}

/** The path shown for a scalar root value when no root name is given. */
export const ROOT_PATH = '(value)';

/**
 * Attribute values are strings (objects were JSON-stringified at ingest): turn JSON back into
 * values, leave any other text as it is.
 */
export function parseConfigValue(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  const s = raw.trim();
  if (s === '') return raw;
  const c = s[0];
  if (c === '{' || c === '[' || c === '"' || c === '-' || (c >= '0' && c <= '9') || s === 'true' || s === 'false' || s === 'null') {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      return raw;
    }
  }
  return raw;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function joinPath(prefix: string, key: string): string {
  const plain = key !== '' && !/[.[\]"]/.test(key);
  if (plain) return prefix ? `${prefix}.${key}` : key;
  return `${prefix}[${JSON.stringify(key)}]`;
}

/** Leaves of a value by dotted path. A non-empty object is never a leaf; `{}` is, except at the root. */
export function flattenConfig(value: unknown, root = '', maxDepth = 32): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const walk = (v: unknown, path: string, depth: number): void => {
    if (isPlainObject(v) && depth < maxDepth && (Object.keys(v).length > 0 || depth === 0)) {
      // an empty config at the root has no leaves; an empty object inside one is a value
      for (const k of Object.keys(v)) walk(v[k], joinPath(path, k), depth + 1);
    } else {
      out.set(path === '' ? ROOT_PATH : path, v);
    }
  };
  walk(value, root, 0);
  return out;
}

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isPlainObject(v)) {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  }
  return v === undefined ? 'null' : JSON.stringify(v);
}

/**
 * The differences between two configuration values, sorted by path. `undefined` on either side
 * means "absent": diffing undefined → {a:1} gives one "added" entry per leaf.
 */
export function configDiff(before: unknown, after: unknown, opts: DiffOptions = {}): DiffEntry[] {
  const root = opts.root ?? '';
  const depth = opts.maxDepth ?? 32;
  const b = before === undefined ? new Map<string, unknown>() : flattenConfig(before, root, depth);
  const a = after === undefined ? new Map<string, unknown>() : flattenConfig(after, root, depth);
  const paths = new Set<string>([...b.keys(), ...a.keys()]);
  const out: DiffEntry[] = [];
  for (const path of [...paths].sort()) {
    const inB = b.has(path);
    const inA = a.has(path);
    if (inB && !inA) out.push({ path, op: 'removed', before: b.get(path) });
    else if (!inB && inA) out.push({ path, op: 'added', after: a.get(path) });
    else if (canonicalJson(b.get(path)) !== canonicalJson(a.get(path))) {
      out.push({ path, op: 'changed', before: b.get(path), after: a.get(path) });
    }
  }
  return opts.maxEntries !== undefined && out.length > opts.maxEntries ? out.slice(0, opts.maxEntries) : out;
}
