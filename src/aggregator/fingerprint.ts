// Error grouping: which events are "the same problem". Pure functions, no I/O; this runs on the
// ingest hot path for every error-like event, so every regex is compiled once at module load.
//
//   fingerprintOf(e) =
//     e.fingerprint                                   when the client sent a non-empty one, else
//     sha1(error_type + normalizeStack(stack))        when the stack has recognizable frames, else
//     sha1(error_type + engine + platform + parameterize(message))
//   (sha1 hex, first 16 characters)
import { createHash } from 'node:crypto';
import type { EventRow } from '../event.js';

// ---------------------------------------------------------------------------------------------
// parameterize(): variable parts of a message -> typed placeholders
// ---------------------------------------------------------------------------------------------

const H4 = '[0-9a-fA-F]{1,4}';
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = `${OCTET}(?:\\.${OCTET}){3}`;
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const CLOCK = '\\d{2}:\\d{2}(?::\\d{2}(?:[.,]\\d{1,9})?)?';
const TZ = '(?:Z|[+-]\\d{2}(?::?\\d{2})?)';

/**
 * One alternative per placeholder, in priority order: where two could start at the same position
 * the earlier (more specific) one wins, and a match is never re-scanned, so a URL containing a
 * UUID stays one URL placeholder. Every alternative starts with a boundary look-behind, so inside
 * a long run of letters and digits only the run's start is tried: the scan stays linear.
 * Only the 14 top-level groups capture; everything inside is (?:...).
 */
const ALTERNATIVES: readonly string[] = [
  // 1 URL: scheme://..., not ending in sentence punctuation
  `(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,15}:\\/\\/(?:[^\\s"'\`<>]*[^\\s"'\`<>.,;:!?)\\]}])?`,
  // 2 e-mail (the domain's labels cannot contain '.', so there is no ambiguous backtracking)
  `(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}(?![A-Za-z0-9-])`,
  // 3 quoted string; a single quote must not be an apostrophe (can't, users'), an escaped quote
  //   (\") opens nothing. Each opener scans only up to the next quote: linear overall.
  `(?<![A-Za-z0-9\\\\])'[^'\\n]{0,1000}'(?![A-Za-z0-9])|(?<!\\\\)"(?:[^"\\\\\\n]|\\\\.){0,1000}"` +
    `|(?<!\\\\)\`[^\`\\n]{0,1000}\``,
  // 4 UUID
  `(?<![0-9a-fA-F])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9a-fA-F])`,
  // 5 date: ISO 8601 (optionally with time and zone), yyyy/mm/dd, HTTP date, Date#toString()
  `(?<![A-Za-z0-9])(?:\\d{4}-\\d{2}-\\d{2}(?:[T ]${CLOCK}(?: ?${TZ})?)?` +
    `|\\d{4}\\/\\d{2}\\/\\d{2}(?:[T ]${CLOCK})?` +
    `|${DAY}, \\d{1,2} ${MONTH} \\d{4} \\d{2}:\\d{2}:\\d{2} (?:GMT|UTC|[+-]\\d{4})` +
    `|${DAY} ${MONTH} \\d{1,2} \\d{4} \\d{2}:\\d{2}:\\d{2}(?: GMT[+-]\\d{4})?(?: \\([^()\\n]{1,64}\\))?)(?![0-9])`,
  // 6 time of day: 14:01:00, 9:05:59.123, 02:15:00 PM
  `(?<![\\d:.])\\d{1,2}:\\d{2}:\\d{2}(?:[.,]\\d{1,9})?(?: ?[AaPp][Mm](?![A-Za-z]))?(?![\\d:])`,
  // 7 IPv6: full, compressed (::), or IPv4-mapped; must contain a digit (so "Abc::Def" stays)
  `(?<![\\w:.])(?=[0-9a-fA-F:.]*\\d)(?:(?:${H4}:){7}${H4}` +
    `|(?:${H4}(?::${H4}){0,6})?::(?:(?:${H4}:){0,5}${IPV4}|${H4}(?::${H4}){0,6})?)(?![\\w:]|\\.\\d)`,
  // 8 IPv4, with an optional port
  `(?<![\\d.])${IPV4}(?::\\d{1,5})?(?![\\d]|\\.\\d)`,
  // 9 long token: >= 20 of [A-Za-z0-9_-] mixing letters and digits (all-hex becomes <hex>)
  `(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*\\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])`,
  // 10 duration: 4232ms, 3.5s, 10 min, 2 hours
  `(?<![A-Za-z0-9.])\\d+(?:\\.\\d+)? ?(?:ms|msecs?|milliseconds?|µs|us|microseconds?|ns|nanoseconds?` +
    `|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)(?![A-Za-z0-9])`,
  // 11 size: 5MB, 1.5 GiB, 512 bytes
  `(?<![A-Za-z0-9.])\\d+(?:\\.\\d+)? ?(?:[KMGTP]i?B|kB|bytes?)(?![A-Za-z0-9])`,
  // 12 hex: 0x..., or >= 8 hex chars with a digit and a letter (all digits stays an <int>)
  `(?<![A-Za-z0-9])(?:0[xX][0-9a-fA-F]+|(?=[0-9a-fA-F]*\\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,})(?![A-Za-z0-9])`,
  // 13 float: 0.87, 1.5e-3, 1e-5
  `(?<![A-Za-z0-9.])\\d+(?:\\.\\d+(?:[eE][-+]?\\d+)?|[eE][-+]?\\d+)(?![A-Za-z0-9]|\\.\\d)`,
  // 14 integer (not glued to letters: utf8, v2, base64 stay as they are)
  `(?<![A-Za-z0-9])\\d+(?![A-Za-z0-9])`,
];

const VARIABLE_RE = new RegExp(ALTERNATIVES.map((a) => `(${a})`).join('|'), 'g');
const PLACEHOLDERS = [
  '', '<url>', '<email>', '<str>', '<uuid>', '<date>', '<time>', '<ip>', '<ip>', '<token>',
  '<duration>', '<size>', '<hex>', '<float>', '<int>',
] as const;
const URL_GROUP = 1;
const TOKEN_GROUP = 9;

const WHITESPACE_RE = /\s+/g;
const ALL_HEX_RE = /^[0-9a-fA-F]+$/;
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const PORT_RE = /:\d*$/;
const IPV4_HOST_RE = new RegExp(`^${IPV4}$`);

/** `https://user@API.Notion.com:443/v1/pages/...` -> `<url:api.notion.com>`; an IP host -> `<url:ip>`. */
function urlPlaceholder(url: string): string {
  const start = url.indexOf('://') + 3;
  let end = url.length;
  for (let i = start; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) {
      end = i;
      break;
    }
  }
  let host = url.slice(start, end);
  const at = host.lastIndexOf('@');
  if (at >= 0) host = host.slice(at + 1);
  if (host.startsWith('[')) return '<url:ip>';
  host = host.replace(PORT_RE, '').toLowerCase();
  if (host === '') return '<url>';
  if (IPV4_HOST_RE.test(host)) return '<url:ip>';
  return `<url:${host}>`;
}

function collapseWhitespace(s: string): string {
  return s.replace(WHITESPACE_RE, ' ').trim();
}

/**
 * Replaces the variable parts of a message with typed placeholders, so that messages that differ
 * only in ids, numbers, addresses, times, ... become equal:
 * `<url:host>`, `<email>`, `<str>`, `<uuid>`, `<date>`, `<time>`, `<ip>`, `<token>`, `<duration>`,
 * `<size>`, `<hex>`, `<float>`, `<int>`. Whitespace runs collapse to one space.
 */
export function parameterize(message: string): string {
  const re = VARIABLE_RE;
  re.lastIndex = 0;
  let out = '';
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(message)) !== null) {
    const text = m[0];
    if (text.length === 0) {
      re.lastIndex++; // cannot happen with the alternatives above; guards against an endless loop
      continue;
    }
    let group = 1;
    while (m[group] === undefined) group++;
    let placeholder: string;
    if (group === URL_GROUP) placeholder = urlPlaceholder(text);
    else if (group === TOKEN_GROUP) {
      placeholder = UUID_RE.test(text) ? '<uuid>' : ALL_HEX_RE.test(text) ? '<hex>' : '<token>';
    } else placeholder = PLACEHOLDERS[group];
    out += message.slice(last, m.index) + placeholder;
    last = m.index + text.length;
  }
  if (last === 0) return collapseWhitespace(message);
  return collapseWhitespace(out + message.slice(last));
}

// ---------------------------------------------------------------------------------------------
// normalizeStack(): a stack trace -> ["function@module", ...], innermost first
// ---------------------------------------------------------------------------------------------

/** Frames kept (after dropping library frames and collapsing direct recursion). */
export const MAX_FRAMES = 30;

interface Frame {
  text: string;
  app: boolean;
}

// Java: "at com.foo.Bar.baz(Bar.java:42)", "at java.base/java.lang.Thread.run(Thread.java:829)",
// logback's "at x.Y.z(Y.java:1) ~[app.jar:1.0]". No space before '(' (V8 always has one).
const JAVA_FRAME_RE = /^([^\s()]+)\(([^()]*)\)(?:\s+~?\[[^\]]*\])?$/;
const JAVA_FILE_RE = /^([^:\s]+\.[A-Za-z]+)(?::\d+)?$/;
const JAVA_HIDDEN_CLASS_ADDR_RE = /\/0x[0-9a-fA-F]+/g;
// Generated classes whose names change from run to run: lambdas, CGLIB proxies, JDK proxies, accessors.
const JAVA_GENERATED_RE =
  /(\$\$Lambda|\$\$[A-Za-z]+\$\$|\$Proxy|Generated(?:Serialization)?(?:Method|Constructor)Accessor)(?:\$?[0-9a-fA-F]+)?/g;
const JAVA_LIBRARY_RE = /^(?:java|javax|sun|jdk|com\.sun)\./;

// Python: 'File "/app/x.py", line 10, in fn'
const PYTHON_FRAME_RE = /^File "([^"]*)", line \d+(?:, in (.+?))?\s*$/;
const PYTHON_LIBRARY_RE = /site-packages|dist-packages|[\\/]lib[\\/]python\d|[\\/]python\d+[\\/]lib[\\/]|^<frozen /i;

// Node/V8
const LINE_COL_RE = /:\d+(?::\d+)?$/;
const HAS_SPACE_RE = /\s/;
const PATHISH_RE = /[/\\.<]/;
const INDEX_LOC_RE = /^index \d+$/;
const EVAL_PATH_RE = /\(([^()]+)\)/;
const ASYNC_PREFIX_RE = /^async\s+/;
const AS_ALIAS_RE = /\s+\[as [^\]]*\]$/;
// Content hashes in bundle file names: main.3f9a1b2c.js, index-D8fJ2kLq.js
const BUNDLE_HASH_RE = /([.-])(?=[A-Za-z0-9_]*\d)(?=[A-Za-z0-9_]*[A-Za-z])[A-Za-z0-9_]{8,}(?=\.[cm]?[jt]sx?$)/;

/** File name of a location, without line/column, query string, directories or bundle hash. */
function moduleOf(location: string): string {
  let s = location.replace(LINE_COL_RE, '');
  const q = s.indexOf('?');
  if (q >= 0) s = s.slice(0, q);
  const slash = Math.max(s.lastIndexOf('/'), s.lastIndexOf('\\'));
  if (slash >= 0) s = s.slice(slash + 1);
  s = s.replace(BUNDLE_HASH_RE, '$1<hash>');
  return s === '' ? '<unknown>' : s;
}

function isNodeLibrary(location: string): boolean {
  return location.startsWith('node:') || location.startsWith('internal/') || location.includes('node_modules');
}

function javaFrame(rawName: string, location: string): Frame | null {
  let name = rawName.replace(JAVA_HIDDEN_CLASS_ADDR_RE, '');
  const slash = name.lastIndexOf('/'); // module / class loader prefix: "java.base/", "app//"
  if (slash >= 0) name = name.slice(slash + 1);
  name = name.replace(JAVA_GENERATED_RE, '$1');
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || dot === name.length - 1) return null;
  const cls = name.slice(0, dot);
  const method = name.slice(dot + 1);
  const simpleClass = cls.slice(cls.lastIndexOf('.') + 1);
  const file = JAVA_FILE_RE.exec(location);
  return { text: `${simpleClass}.${method}@${file ? file[1] : cls}`, app: !JAVA_LIBRARY_RE.test(cls) };
}

/** The part after "at " of a V8 frame line. */
function nodeFrame(rest: string): Frame | null {
  let fn = '';
  let loc = rest;
  if (rest.endsWith(')')) {
    // "fn (location)"; the location itself may hold parentheses (eval frames), so match from the end
    let depth = 0;
    let i = rest.length - 1;
    for (; i >= 0; i--) {
      const c = rest.charCodeAt(i);
      if (c === 41) depth++;
      else if (c === 40 && --depth === 0) break;
    }
    if (i < 0) return null;
    fn = rest.slice(0, i).trim();
    loc = rest.slice(i + 1, -1).trim();
  } else if (HAS_SPACE_RE.test(loc) || !PATHISH_RE.test(loc)) {
    // a bare location ("at /app/x.js:1:2") has no spaces and looks like a path
    if (loc !== '<anonymous>') return null;
  }
  fn = fn.replace(ASYNC_PREFIX_RE, '').replace(AS_ALIAS_RE, '');
  if (fn === '') fn = '<anonymous>';

  let module: string;
  let app: boolean;
  if (loc.startsWith('eval at ')) {
    const p = EVAL_PATH_RE.exec(loc);
    module = p ? moduleOf(p[1]) : '<eval>';
    app = p ? !isNodeLibrary(p[1]) : false;
  } else if (loc === '<anonymous>' || loc === 'native' || loc === 'unknown location') {
    module = loc;
    app = false;
  } else if (INDEX_LOC_RE.test(loc)) {
    module = 'index'; // Promise.all (index 3)
    app = false;
  } else if (LINE_COL_RE.test(loc)) {
    module = moduleOf(loc.startsWith('file://') ? loc.slice(7) : loc);
    app = !isNodeLibrary(loc);
  } else return null;
  return { text: `${fn}@${module}`, app };
}

function parseFrameLine(line: string): { frame: Frame | null; python: boolean } | null {
  const t = line.trim();
  if (t.startsWith('at ')) {
    const rest = t.slice(3).trim();
    const j = JAVA_FRAME_RE.exec(rest);
    if (j) {
      const f = javaFrame(j[1], j[2]);
      if (f) return { frame: f, python: false };
    }
    return { frame: nodeFrame(rest), python: false };
  }
  if (t.startsWith('File "')) {
    const p = PYTHON_FRAME_RE.exec(t);
    if (!p) return null;
    const path = p[1];
    const fn = p[2] === undefined || p[2] === '' ? '<anonymous>' : p[2];
    return { frame: { text: `${fn}@${moduleOf(path)}`, app: !PYTHON_LIBRARY_RE.test(path) }, python: true };
  }
  return null;
}

/**
 * Parses a Node/V8, Python or Java stack trace into frames `function@module`, innermost first
 * (Python tracebacks, which print the innermost frame last, are reversed). The module is the file
 * basename without line/column (Java: the source file, or the class name when there is none).
 * Library frames (node_modules, node:, internal/, site-packages, dist-packages, the Python stdlib,
 * java./javax./sun./jdk./com.sun.) are dropped when at least one application frame remains.
 * Direct recursion collapses to one frame; at most MAX_FRAMES frames are returned.
 * Returns [] when nothing in the input looks like a frame.
 */
export function normalizeStack(stack: string): string[] {
  if (!stack) return [];
  const frames: Frame[] = [];
  let python = false;
  let anyApp = false;
  for (const line of stack.split('\n')) {
    const parsed = parseFrameLine(line);
    if (parsed === null || parsed.frame === null) continue;
    frames.push(parsed.frame);
    if (parsed.python) python = true;
    if (parsed.frame.app) anyApp = true;
  }
  if (frames.length === 0) return [];
  if (python) frames.reverse();
  const out: string[] = [];
  for (const f of frames) {
    if (anyApp && !f.app) continue;
    if (out.length > 0 && out[out.length - 1] === f.text) continue;
    out.push(f.text);
    if (out.length >= MAX_FRAMES) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// fingerprintOf()
// ---------------------------------------------------------------------------------------------

export type FingerprintInput = Pick<EventRow, 'error_type' | 'engine' | 'platform' | 'message' | 'stack'> & {
  fingerprint?: string;
};

export interface FingerprintBasis {
  /** client: the event's own fingerprint; stack: error_type + frames; message: the parameterized message. */
  source: 'client' | 'stack' | 'message';
  /** The string that is hashed (for `client`: the fingerprint itself, which is not hashed). */
  basis: string;
}

/** What an event's fingerprint is computed from; useful to explain a grouping. */
export function fingerprintBasis(e: FingerprintInput): FingerprintBasis {
  if (e.fingerprint !== undefined && e.fingerprint.trim() !== '') return { source: 'client', basis: e.fingerprint };
  const errorType = e.error_type.trim();
  const frames = normalizeStack(e.stack);
  if (frames.length > 0) return { source: 'stack', basis: `stack\n${errorType}\n${frames.join('\n')}` };
  return {
    source: 'message',
    basis: `message\n${errorType}\n${e.engine.trim()}\n${e.platform.trim()}\n${parameterize(e.message)}`,
  };
}

/** sha1 hex of the basis, first 16 characters. */
export function hashBasis(basis: string): string {
  return createHash('sha1').update(basis).digest('hex').slice(0, 16);
}

/** The group key of an error event (see the top of this file). */
export function fingerprintOf(e: FingerprintInput): string {
  const b = fingerprintBasis(e);
  return b.source === 'client' ? b.basis : hashBasis(b.basis);
}
