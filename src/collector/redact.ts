// Secret redaction. Runs on every ingested event before anything is stored: secrets in the text
// fields and attribute values become `[REDACTED:kind]`, and everything around them stays as it
// was, so the event remains searchable and fingerprints stay stable ("access failed for token
// [REDACTED:slack_token]" groups with every other token's failure).
//
// Pure (no I/O). The hot path is text without secrets: a single pass over the characters (no
// regex, no allocation) decides whether the specific rules run at all, and a string without
// secrets is returned as is. Every pattern is linear: no nested quantifiers over
// overlapping character classes, bounded repetition where a class is followed by a lookahead.
import RE2 from 're2';
import type { EventRow } from '../event.js';

/** Per-project extensions to the built-in rules. */
export interface RedactionRules {
  /** Extra patterns (RE2 syntax, run in linear time); a match becomes `[REDACTED:<name>]`. Flags may use i, m, s, u (g is implied). */
  patterns?: { name: string; regex: string; flags?: string }[];
  /** Extra secret key names (for attributes and `key=value` text), matched like the built-in ones. */
  secretKeys?: string[];
}

/** Strings shorter than this cannot hold a built-in secret ("pwd=x" is the shortest). */
const MIN_LENGTH = 5;
const REDACTED = '[REDACTED:';
const ATTRIBUTE_MARK = '[REDACTED:attribute]';

// Redaction is synchronous, so one module-level counter serves every Redactor: redactRow resets
// it, every replacement increments it.
let hits = 0;

const mark = (kind: string): string => `${REDACTED}${kind}]`;

// ---------------------------------------------------------------------------------------------
// Secret key names: split into segments on _ - . space and camelCase, then a key is secret when
// a secret word (or word pair) occurs in it followed only by harmless suffixes. So `x_api_key`,
// `slackToken`, `DB_PASSWORD`, `password_confirmation` and `set-cookie` are secret, while
// `token_count`, `max_tokens`, `tokenizer` and `api_key_id` are not.

const SECRET_WORDS: ReadonlyArray<readonly [string, string]> = [
  ['password', 'password'], ['passwd', 'password'], ['pwd', 'password'], ['passphrase', 'password'],
  ['secret', 'secret'], ['clientsecret', 'secret'], ['secretkey', 'secret'],
  ['token', 'token'], ['accesstoken', 'token'], ['refreshtoken', 'token'], ['idtoken', 'token'],
  ['authtoken', 'token'], ['sessiontoken', 'token'], ['apitoken', 'token'], ['jwt', 'token'],
  ['bearer', 'token'],
  ['authorization', 'authorization'], ['authorisation', 'authorization'],
  ['apikey', 'api_key'], ['accesskey', 'access_key'], ['privatekey', 'private_key'],
  ['cookie', 'cookie'], ['credential', 'credentials'], ['credentials', 'credentials'],
];
const SECRET_PAIRS: ReadonlyArray<readonly [string, string, string]> = [
  ['api', 'key', 'api_key'], ['access', 'key', 'access_key'], ['private', 'key', 'private_key'],
  ['secret', 'key', 'secret'], ['signing', 'key', 'secret'], ['encryption', 'key', 'secret'],
  ['master', 'key', 'secret'],
];
/** Segments that may follow a secret word without making the key harmless. */
const SECRET_SUFFIXES: ReadonlySet<string> = new Set([
  'value', 'val', 'confirmation', 'confirm', 'plain', 'plaintext', 'raw', 'b64', 'base64', 'hex',
  'str', 'string', 'header', 'hash', 'enc', 'encrypted', 'old', 'new', 'current', 'data', 'bytes',
  'secret',
]);
/** Words for the cheap "may contain a secret key" tests (case-insensitive substrings). */
const KEY_HINT_WORDS = [
  'passw(?:or)?d', 'passphrase', 'pwd', 'secret', 'token', 'jwt', 'bearer', 'authori[sz]ation',
  'cookie', 'credentials?', '(?:api|access|private|secret|signing|encryption|master)[_.\\- ]?key',
];

interface KeyMatcher {
  seq: readonly string[];
  kind: string;
}

const SEGMENT_RE = /[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+/g;

/** `x_api_key` → [x, api, key]; `slackToken` → [slack, token]; `APIKey` → [api, key]. */
function keySegments(key: string): string[] {
  const out: string[] = [];
  SEGMENT_RE.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = SEGMENT_RE.exec(key)) !== null) out.push(m[0].toLowerCase());
  return out;
}

function isDigits(s: string): boolean {
  const c = s.charCodeAt(0);
  return c >= 48 && c <= 57;
}

function matchKey(segs: readonly string[], matchers: ReadonlyMap<string, readonly KeyMatcher[]>): string | null {
  for (let i = 0; i < segs.length; i++) {
    const candidates = matchers.get(segs[i]);
    if (candidates === undefined) continue;
    for (const c of candidates) {
      const end = i + c.seq.length;
      if (end > segs.length) continue;
      let ok = true;
      for (let k = 1; k < c.seq.length && ok; k++) ok = segs[i + k] === c.seq[k];
      for (let k = end; k < segs.length && ok; k++) ok = SECRET_SUFFIXES.has(segs[k]) || isDigits(segs[k]);
      if (ok) {
        if (segs.includes('aws') && (c.kind === 'secret' || segs.includes('secret'))) return 'aws_secret_key';
        return c.kind;
      }
    }
  }
  return null;
}

/** ASCII characters the hot-path scan can skip: everything but digits and the few that anchor a check. */
const BORING = new Uint8Array(128).fill(1);
for (const ch of ':=@-_JA.K \t0123456789') BORING[ch.charCodeAt(0)] = 0;

/** Case-insensitive: does s[end - word.length, end) spell `word` (lowercase ASCII letters)? */
function endsWithWord(s: string, end: number, word: string): boolean {
  const start = end - word.length;
  if (start < 0) return false;
  for (let k = 0; k < word.length; k++) {
    if ((s.charCodeAt(start + k) | 0x20) !== word.charCodeAt(k)) return false;
  }
  return true;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------------
// Built-in text rules, applied in order. Token formats come before the generic key=value rule, so
// `password=ghp_…` says github_token; later rules skip values that are already `[REDACTED:…]`.

type Replacer = (match: string, ...groups: any[]) => string;

interface Rule {
  kind: string;
  re: RegExp;
  /** Case-sensitive substrings of which at least one must occur for the rule to run. */
  hints?: readonly string[];
  replace: Replacer;
}

function whole(kind: string): Replacer {
  const m = mark(kind);
  return () => {
    hits++;
    return m;
  };
}

/** Replaces everything after the first capture group. */
function afterPrefix(kind: string): Replacer {
  const m = mark(kind);
  return (_match: string, prefix: string) => {
    hits++;
    return prefix + m;
  };
}

/** A Bearer token that is more than an English word ("Bearer token expired" is prose). */
function looksLikeToken(tok: string): boolean {
  if (tok.length >= 20) return true;
  if (tok.length < 6) return false;
  if (/[0-9._~+/=-]/.test(tok)) return true;
  return /[a-z]/.test(tok) && /[A-Z]/.test(tok.slice(1));
}

/** `Basic <b64>` is a credential only if it decodes to printable "user:password". */
function isBasicCredential(b64: string): boolean {
  if (b64.length % 4 === 1) return false;
  const decoded = Buffer.from(b64, 'base64').toString('latin1');
  if (decoded.length < 3 || !decoded.includes(':')) return false;
  for (let i = 0; i < decoded.length; i++) {
    const c = decoded.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

const BEARER_MARK = mark('bearer_token');
const BASIC_MARK = mark('basic_auth');
const OPENAI_MARK = mark('openai_key');

const RULES: readonly Rule[] = [
  {
    kind: 'private_key',
    // An unterminated block (a truncated message) is redacted to the end of the string.
    re: /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|$)/g,
    hints: ['-----BEGIN'],
    replace: whole('private_key'),
  },
  {
    kind: 'slack_webhook',
    re: /(\bhttps?:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/)[A-Za-z0-9_/-]+/g,
    hints: ['hooks.slack.com'],
    replace: afterPrefix('slack_webhook'),
  },
  {
    kind: 'url_password',
    // scheme://user:password@host: the user and host stay. The user part cannot contain ':',
    // so the split is unambiguous; the password runs to the last '@' before the path.
    re: /(\b[A-Za-z][A-Za-z0-9+.-]{0,30}:\/\/[^\s:/?#@"'<>[\]]*:)(?!\[REDACTED:)[^\s/?#"'<>]+(?=@)/g,
    hints: ['://'],
    replace: afterPrefix('url_password'),
  },
  {
    kind: 'jwt',
    // not \b: in a run like "eyJ-eyJ-eyJ…" every start would rescan the run (quadratic)
    re: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g,
    hints: ['eyJ'],
    replace: whole('jwt'),
  },
  {
    kind: 'slack_token',
    re: /\b(?:xox[abeprs]|xapp)-(?=[A-Za-z0-9-]{6})[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*/g,
    hints: ['xox', 'xapp-'],
    replace: whole('slack_token'),
  },
  {
    kind: 'github_token',
    re: /\b(?:gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255})\b/g,
    hints: ['gh', 'github_pat_'],
    replace: whole('github_token'),
  },
  {
    kind: 'aws_access_key',
    re: /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g,
    hints: ['AKIA', 'ASIA'],
    replace: whole('aws_access_key'),
  },
  {
    kind: 'stripe_key',
    re: /\b(?:[rs]k_(?:live|test)|pk_live)_[A-Za-z0-9]{10,255}\b/g,
    hints: ['k_live_', 'k_test_'],
    replace: whole('stripe_key'),
  },
  {
    kind: 'google_api_key',
    re: /\bAIza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])/g,
    hints: ['AIza'],
    replace: whole('google_api_key'),
  },
  {
    kind: 'openai_key',
    re: /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,255}/g,
    hints: ['sk-'],
    // "sk-some-long-hyphenated-name" is not a key: real keys always carry digits.
    replace: (m: string) => {
      if (!/[0-9]/.test(m)) return m;
      hits++;
      return OPENAI_MARK;
    },
  },
  {
    kind: 'npm_token',
    re: /\bnpm_[A-Za-z0-9]{36}\b/g,
    hints: ['npm_'],
    replace: whole('npm_token'),
  },
  {
    kind: 'sendgrid_key',
    re: /\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}/g,
    hints: ['SG.'],
    replace: whole('sendgrid_key'),
  },
  {
    kind: 'secret_token',
    // Notion integration secrets, Twilio-style secrets
    re: /\bsecret_[A-Za-z0-9]{32,255}\b/g,
    hints: ['secret_'],
    replace: whole('secret_token'),
  },
  {
    kind: 'twilio_key',
    re: /\bSK[0-9a-fA-F]{32}\b/g,
    hints: ['SK'],
    replace: whole('twilio_key'),
  },
  {
    kind: 'bearer_token',
    // The scheme stays. A token followed by '=' or '"' is an auth-param (`Bearer realm="x"`).
    re: /\b([Bb]earer|BEARER)([ \t]+)(?!\[REDACTED:)([A-Za-z0-9._~+/-]+=*)(?![\w"=~+/.-])/g,
    hints: ['earer', 'EARER'],
    replace: (m: string, scheme: string, sp: string, tok: string) => {
      if (!looksLikeToken(tok)) return m;
      hits++;
      return scheme + sp + BEARER_MARK;
    },
  },
  {
    kind: 'basic_auth',
    re: /\b([Bb]asic|BASIC)([ \t]+)([A-Za-z0-9+/]{4,}={0,2})(?![\w"=+/.-])/g,
    hints: ['asic', 'ASIC'],
    replace: (m: string, scheme: string, sp: string, b64: string) => {
      if (!isBasicCredential(b64)) return m;
      hits++;
      return scheme + sp + BASIC_MARK;
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Credit cards: 13–19 digits (optional single spaces/dashes), a plausible network prefix and
// length, and a valid Luhn check digit. Epoch milliseconds (1…), floats, phone numbers with '+'
// and digits inside identifiers do not qualify.

const CARD_PRECHECK = /[2-6][0-9]{3}[ -]?[0-9]{4}/;
const CARD_RE = /(?<![\w.+-])[2-6](?:[ -]?[0-9]){12,18}(?![\w]|[.-][0-9])/g;
const CARD_MARK = mark('credit_card');

function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Whether the prefix and length fit a card network (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro). */
function plausibleCard(d: string): boolean {
  const n = d.length;
  const p2 = Number(d.slice(0, 2));
  const p4 = Number(d.slice(0, 4));
  switch (d.charCodeAt(0) - 48) {
    case 2:
      return n === 16 && p4 >= 2221 && p4 <= 2720;
    case 3:
      if (p2 === 34 || p2 === 37) return n === 15;
      if ((p4 >= 3000 && p4 <= 3059) || p2 === 36 || p2 === 38 || p2 === 39) return n >= 14 && n <= 19;
      return p4 >= 3528 && p4 <= 3589 && n >= 16;
    case 4:
      return n === 13 || n === 16 || n === 19;
    case 5:
      return p2 >= 51 && p2 <= 55 ? n === 16 : true; // 50, 56–59: Maestro, 12–19 digits
    case 6:
      return true; // Discover, UnionPay, Maestro: 13–19 digits
    default:
      return false;
  }
}

/**
 * Separated digits must be grouped like a printed card: 4-4-4-4 (a shorter or extra last group
 * allowed) or 4-6-4/4-6-5 (Amex, Diners), with one kind of separator. This keeps UUIDs whose first
 * groups happen to be digits ("50668122-8741-7339-…") out.
 */
function cardGrouping(m: string): boolean {
  const sep = m.includes(' ') ? ' ' : '-';
  if (sep === ' ' && m.includes('-')) return false;
  const g = m.split(sep);
  if (g[0].length !== 4) return false;
  if (g.length === 3 && g[1].length === 6) return g[2].length === 4 || g[2].length === 5;
  for (let i = 1; i < g.length - 1; i++) if (g[i].length !== 4) return false;
  return g[g.length - 1].length <= 4;
}

function replaceCard(m: string): string {
  let digits = m;
  if (m.includes(' ') || m.includes('-')) {
    if (!cardGrouping(m)) return m;
    digits = m.replace(/[ -]/g, '');
  }
  if (!plausibleCard(digits) || !luhnValid(digits)) return m;
  hits++;
  return CARD_MARK;
}

// ---------------------------------------------------------------------------------------------
// key=value / key: value / "key": "value" pairs whose key names a secret.

// A key is a maximal run of word characters, dots and dashes; `\"` covers JSON inside strings.
const PAIR_RE = /(?<![\w.-])([\w.-]{1,64})(\\?["'])?[ \t]*(:=|=>|:|=)[ \t]*/g;
const AUTH_SCHEME_RE = /(?:bearer|basic|digest|token|negotiate|ntlm|dpop|apikey|aws4-hmac-sha256|sso-key|key)[ \t]+/iy;
const MULTI_PARAM_SCHEME_RE = /^(?:digest|aws4)/i;
/** Values that are not secrets: flags, placeholders and masks. */
const HARMLESS_VALUES: ReadonlySet<string> = new Set([
  'true', 'false', 'null', 'undefined', 'none', 'nil', 'n/a', '-', 'redacted', 'masked', 'hidden',
  'filtered', 'yes', 'no',
]);

function isHarmlessValue(v: string): boolean {
  if (v.length === 0 || v.startsWith(REDACTED)) return true;
  if (v.length <= 9 && HARMLESS_VALUES.has(v.toLowerCase())) return true;
  return /^(?:[*•]+|x{3,}|X{3,})$/.test(v); // masks: ****, •••, xxxx
}

function isStop(c: number): boolean {
  // whitespace , ; & " ' ) ] } < >
  return (
    c === 32 || c === 9 || c === 10 || c === 13 || c === 44 || c === 59 || c === 38 || c === 34 ||
    c === 39 || c === 41 || c === 93 || c === 125 || c === 60 || c === 62
  );
}

function lineEnd(s: string, from: number): number {
  let i = from;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 10 || c === 13) break;
    i++;
  }
  return i;
}

function closingQuote(s: string, from: number, quote: number): number {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 92) i++; // backslash escapes the next character
    else if (c === quote) return i;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------

interface ExtraPattern {
  name: string;
  re: RE2;
  /** The same pattern, multi-line and not global: one test over all of a row's text joined by newlines. */
  probe: RE2;
  replace: Replacer;
}

/** A per-project rule that cannot be used; `field` names it in the settings body. */
export class RedactionRuleError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const FLAGS_RE = /^[gimsu]*$/;

/**
 * Per-project patterns come from tenants, so they run on RE2 (linear time: no backtracking, so no
 * pattern and no input can stall the event loop). RE2 has no lookaround and no backreferences: a
 * pattern using them does not compile and is refused with the reason.
 */
function compileExtraPattern(p: unknown, index: number): ExtraPattern {
  const o = (typeof p === 'object' && p !== null ? p : {}) as { name?: unknown; regex?: unknown; flags?: unknown };
  const label = typeof o.name === 'string' ? `"${o.name}"` : `#${index}`;
  const field = (f: string) => `redaction.patterns.${index}.${f}`;
  if (typeof o.name !== 'string' || !NAME_RE.test(o.name)) {
    throw new RedactionRuleError(field('name'), `redaction pattern ${label}: name must be 1-64 letters, digits, '_', '.' or '-'`);
  }
  if (typeof o.regex !== 'string' || o.regex.length === 0 || o.regex.length > 2000) {
    throw new RedactionRuleError(field('regex'), `redaction pattern ${label}: regex must be a non-empty string of at most 2000 characters`);
  }
  const flags = o.flags === undefined ? '' : o.flags;
  if (typeof flags !== 'string' || !FLAGS_RE.test(flags) || new Set(flags).size !== flags.length) {
    throw new RedactionRuleError(field('flags'), `redaction pattern ${label}: unsupported flags ${JSON.stringify(flags)} (allowed: i, m, s, u)`);
  }
  let re: RE2;
  try {
    re = new RE2(o.regex, flags.includes('g') ? flags : `${flags}g`);
  } catch (e) {
    throw new RedactionRuleError(field('regex'), `redaction pattern ${label}: /${o.regex}/ does not compile on RE2 (linear-time; no lookaround or backreferences): ${(e as Error).message}`);
  }
  re.lastIndex = 0;
  if (re.test('')) throw new RedactionRuleError(field('regex'), `redaction pattern ${label}: regex /${o.regex}/ matches the empty string`);
  re.lastIndex = 0;
  // 'm': ^ and $ also match where one joined string ends and the next begins, so the probe finds
  // whatever the pattern finds in any one string (and at worst a little more: then it just runs)
  const probe = new RE2(o.regex, flags.includes('m') ? flags : `${flags}m`);
  return { name: o.name, re, probe, replace: whole(o.name) };
}

/** The row's text fields redaction covers (see redactRow for the ones it leaves). */
const REDACTED_FIELDS = [
  'message', 'stack', 'error_type', 'flow_id', 'session_id', 'user_id', 'engine', 'triggered_by', 'platform', 'action',
  'status', 'severity', 'event_type',
] as const satisfies readonly (keyof EventRow)[];

export class Redactor {
  private readonly matchers: Map<string, KeyMatcher[]> = new Map();
  /** Exact (lowercased) extra key names, for names that do not split into segments cleanly. */
  private readonly exactKeys: Map<string, string> = new Map();
  private readonly extraPatterns: ExtraPattern[];
  /** Sticky lookbehind: does the text before lastIndex end like a secret key name? */
  private readonly keyEnd: RegExp;
  /** May this text contain a `secret-key = value` pair? */
  private readonly pairPrecheck: RegExp;
  /** May this key name a secret? (before the allocation of splitting it) */
  private readonly keyHint: RegExp;
  private readonly attrCache: Map<string, boolean> = new Map();

  constructor(extra: RedactionRules = {}) {
    if (typeof extra !== 'object' || extra === null) throw new Error('redaction rules must be an object');
    const add = (seq: readonly string[], kind: string): void => {
      const list = this.matchers.get(seq[0]);
      if (list) list.push({ seq, kind });
      else this.matchers.set(seq[0], [{ seq, kind }]);
    };
    for (const [w, kind] of SECRET_WORDS) add([w], kind);
    for (const [a, b, kind] of SECRET_PAIRS) add([a, b], kind);

    const hintWords = [...KEY_HINT_WORDS];
    const secretKeys: unknown = extra.secretKeys ?? [];
    if (!Array.isArray(secretKeys)) throw new RedactionRuleError('redaction.secret_keys', 'redaction secretKeys must be an array of strings');
    for (const k of secretKeys) {
      if (typeof k !== 'string' || k.trim().length === 0 || k.length > 128) {
        throw new RedactionRuleError('redaction.secret_keys', `redaction secret key ${JSON.stringify(k)} must be a non-empty string of at most 128 characters`);
      }
      const segs = keySegments(k);
      const kind = segs.length > 0 ? segs.join('_') : 'secret';
      if (segs.length > 0) {
        add(segs, kind);
        // also the run-together spelling: "customerPin" matches "customerpin"
        if (segs.length > 1) add([segs.join('')], kind);
        hintWords.push(segs.map(escapeRegex).join('[_.\\- ]?'));
      }
      this.exactKeys.set(k.toLowerCase(), kind);
      hintWords.push(escapeRegex(k));
    }

    const patterns: unknown = extra.patterns ?? [];
    if (!Array.isArray(patterns)) throw new RedactionRuleError('redaction.patterns', 'redaction patterns must be an array');
    this.extraPatterns = patterns.map(compileExtraPattern);

    const keyWords = `(?:${hintWords.join('|')})`;
    this.keyHint = new RegExp(keyWords, 'i');
    this.pairPrecheck = new RegExp(`${keyWords}[\\w.-]{0,64}\\\\?["']?[ \\t]*[:=]`, 'i');
    // A secret word, then only harmless suffixes (as matchKey requires), ending where the scan is.
    // one digit per repetition: `[0-9]+` inside the star could split a digit run exponentially
    const suffixes = [...SECRET_SUFFIXES, '[0-9]'].join('|');
    this.keyEnd = new RegExp(`(?<=${keyWords}(?:[_.\\-]?(?:${suffixes}))*)`, 'iy');
  }

  /** Returns `s` with every secret replaced; the same string instance when there is none. */
  redactText(s: string): string {
    s = this.apply(s);
    for (const p of this.extraPatterns) s = s.replace(p.re as unknown as RegExp, p.replace);
    return s;
  }

  /**
   * Redacts every text field of the row in place: message, stack, error_type, the correlation keys
   * (flow_id, session_id, user_id), engine, triggered_by, platform, action, status, severity,
   * event_type, and attribute keys and values. Attributes whose key names a secret lose their whole
   * value. Left as sent: id (the idempotency key: a redacted one would collide), project_id (its
   * pattern allows no secret), trace_id and span_id (machine ids that must match other systems'),
   * fingerprint (computed after redaction). Returns how many secrets were replaced.
   */
  redactRow(row: EventRow): number {
    hits = 0;
    for (const f of REDACTED_FIELDS) if (row[f].length >= MIN_LENGTH) row[f] = this.apply(row[f]);
    if (this.extraPatterns.length > 0) this.applyExtra(row);
    const keys = row.attr_keys;
    const values = row.attr_values;
    for (let i = 0; i < values.length; i++) {
      const k = keys[i];
      if (k.length >= MIN_LENGTH) {
        const rk = this.apply(k);
        if (rk !== k) keys[i] = rk;
      }
      const v = values[i];
      if (v.length === 0) continue;
      if (this.isSecretAttribute(k)) {
        if (v !== ATTRIBUTE_MARK && !isHarmlessValue(v)) {
          values[i] = ATTRIBUTE_MARK;
          hits++;
        }
      } else {
        const r = this.apply(v);
        if (r !== v) values[i] = r;
      }
    }
    return hits;
  }

  /** Whether an attribute with this key has its whole value redacted. */
  isSecretAttribute(key: string): boolean {
    let secret = this.attrCache.get(key);
    if (secret === undefined) {
      secret = this.secretKeyKind(key) !== null;
      if (this.attrCache.size >= 4096) this.attrCache.clear();
      this.attrCache.set(key, secret);
    }
    return secret;
  }

  private secretKeyKind(key: string): string | null {
    if (!this.keyHint.test(key)) return null;
    const exact = this.exactKeys.get(key.toLowerCase());
    if (exact !== undefined) return exact;
    return matchKey(keySegments(key), this.matchers);
  }

  private apply(s: string): string {
    if (s.length >= MIN_LENGTH && this.mayContainSecret(s)) s = this.applyBuiltins(s);
    return s;
  }

  /**
   * The project's own patterns over every redacted field. A call into RE2 costs far more than a
   * short match, so each pattern first probes all of the row's text at once: a row it does not
   * match (the common case) costs one call per pattern, not one per field.
   */
  private applyExtra(row: EventRow): void {
    const parts: string[] = [];
    for (const f of REDACTED_FIELDS) parts.push(row[f]);
    for (let i = 0; i < row.attr_keys.length; i++) parts.push(row.attr_keys[i], row.attr_values[i]);
    const joined = parts.join('\n');
    for (const p of this.extraPatterns) {
      if (!p.probe.test(joined)) continue;
      const re = p.re as unknown as RegExp;
      for (const f of REDACTED_FIELDS) if (row[f].length > 0) row[f] = row[f].replace(re, p.replace);
      const keys = row.attr_keys;
      const values = row.attr_values;
      for (let i = 0; i < keys.length; i++) {
        keys[i] = keys[i].replace(re, p.replace);
        if (values[i].length > 0) values[i] = values[i].replace(re, p.replace);
      }
    }
  }

  /**
   * The hot-path filter: one pass over the characters, stopping only at the few that can start,
   * end or separate a secret, and checking a literal or two around them. It accepts everything
   * a built-in rule could match (a false positive only costs the slow path) and allocates nothing.
   */
  private mayContainSecret(s: string): boolean {
    const n = s.length;
    let run = 0; // digits in the current card-like run (single spaces/dashes allowed)
    let first = 0; // its first digit
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 127 || BORING[c] === 1) {
        run = 0;
        continue;
      }
      if (c >= 48 && c <= 57) {
        if (run === 0) first = c;
        if (++run >= 13 && first >= 50 && first <= 54) return true; // 13+ digits starting 2-6
        continue;
      }
      if (run > 0 && (c === 32 || c === 45)) {
        const next = s.charCodeAt(i + 1);
        if (next >= 48 && next <= 57) continue;
      }
      run = 0;
      switch (c) {
        case 58: // :
        case 61: // =
          if (this.secretKeyBefore(s, i)) return true;
          break;
        case 64: // @ of scheme://user:password@host
          if (s.includes('://')) return true;
          break;
        case 45: // -
          if (s.charCodeAt(i + 1) === 45 && s.startsWith('-----BEGIN', i)) return true;
          if (s.charCodeAt(i - 1) === 107 && s.charCodeAt(i - 2) === 115) return true; // sk-
          if (s.startsWith('xox', i - 4) || s.startsWith('xapp', i - 4)) return true;
          break;
        case 95: {
          // _ of sk_ rk_ pk_ gh?_ npm_ secret_ github_pat_
          const p1 = s.charCodeAt(i - 1);
          const p2 = s.charCodeAt(i - 2);
          if (p1 === 107 && (p2 === 115 || p2 === 114 || p2 === 112)) return true;
          if (p2 === 104 && s.charCodeAt(i - 3) === 103) return true;
          if (s.startsWith('npm', i - 3) || s.startsWith('secret', i - 6) || s.startsWith('github', i - 6)) return true;
          break;
        }
        case 74: // J of eyJ
          if (s.charCodeAt(i - 1) === 121 && s.charCodeAt(i - 2) === 101) return true;
          break;
        case 65: // A of AKIA, ASIA, AIza
          if (s.startsWith('AKIA', i) || s.startsWith('ASIA', i) || s.startsWith('AIza', i)) return true;
          break;
        case 46: // . of SG. and hooks.slack.com
          if (s.charCodeAt(i - 1) === 71 && s.charCodeAt(i - 2) === 83) return true;
          if (s.startsWith('.slack.com', i)) return true;
          break;
        case 75: // K of SK…
          if (s.charCodeAt(i - 1) === 83) return true;
          break;
        case 32: // space or tab after Bearer / Basic
        case 9: {
          const p1 = s.charCodeAt(i - 1) | 0x20;
          if (p1 === 114 && endsWithWord(s, i, 'bearer')) return true;
          if (p1 === 99 && endsWithWord(s, i, 'basic')) return true;
          break;
        }
      }
    }
    return false;
  }

  /** Whether the text before a ':' or '=' at `sep` ends in a secret key name (quotes allowed). */
  private secretKeyBefore(s: string, sep: number): boolean {
    let j = sep;
    while (j > 0 && (s.charCodeAt(j - 1) === 32 || s.charCodeAt(j - 1) === 9)) j--;
    const q = s.charCodeAt(j - 1);
    if (q === 34 || q === 39) {
      j--;
      if (s.charCodeAt(j - 1) === 92) j--;
    }
    if (j < 3) return false;
    this.keyEnd.lastIndex = j;
    return this.keyEnd.test(s);
  }

  private applyBuiltins(s: string): string {
    for (const rule of RULES) {
      const hints = rule.hints;
      if (hints !== undefined) {
        let found = false;
        for (let i = 0; i < hints.length && !found; i++) found = s.includes(hints[i]);
        if (!found) continue;
      }
      s = s.replace(rule.re, rule.replace);
    }
    if (this.pairPrecheck.test(s)) s = this.redactPairs(s);
    if (CARD_PRECHECK.test(s)) s = s.replace(CARD_RE, replaceCard);
    return s;
  }

  /** Replaces the values of `secret-key = value` pairs (plain, quoted, JSON, escaped JSON, headers). */
  private redactPairs(s: string): string {
    let out = '';
    let last = 0;
    PAIR_RE.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = PAIR_RE.exec(s)) !== null) {
      let kind = this.secretKeyKind(m[1]);
      if (kind === null) continue;
      const quotedKey = m[2] !== undefined;
      let vs = m.index + m[0].length;
      let ve: number;
      if (vs >= s.length) break;
      const c = s.charCodeAt(vs);
      let quoted = true;
      if (c === 34 || c === 39) {
        const close = closingQuote(s, vs + 1, c);
        vs++;
        ve = close === -1 ? lineEnd(s, vs) : close;
      } else if (c === 92 && s.charCodeAt(vs + 1) === 34) {
        // escaped JSON: \"password\":\"value\"
        vs += 2;
        const close = s.indexOf('\\"', vs);
        ve = close === -1 ? lineEnd(s, vs) : close;
      } else if (c === 123 || c === 91) {
        continue; // an object or array (or an earlier marker): its own pairs are scanned
      } else {
        quoted = false;
        ve = -1;
      }
      const limit = quoted ? ve : lineEnd(s, vs);
      if (kind === 'authorization') {
        AUTH_SCHEME_RE.lastIndex = vs;
        const scheme = AUTH_SCHEME_RE.exec(s);
        if (scheme !== null && vs + scheme[0].length <= limit) {
          const name = scheme[0].trimEnd().toLowerCase();
          kind = name === 'basic' ? 'basic_auth' : name === 'bearer' || name === 'token' ? 'bearer_token' : 'authorization';
          if (!quoted && MULTI_PARAM_SCHEME_RE.test(name)) ve = limit; // Digest/AWS4 params run to the line end
          vs += scheme[0].length;
        }
      }
      if (ve === -1) {
        if (kind === 'cookie') ve = limit;
        else {
          ve = vs;
          while (ve < s.length && !isStop(s.charCodeAt(ve))) ve++;
        }
      }
      if (ve <= vs) continue;
      const value = s.slice(vs, ve);
      if (isHarmlessValue(value)) continue;
      // "refresh token: connection reset by peer" is prose, not a pair
      if (!quoted && !quotedKey && m[3] === ':' && /^[a-z]+$/.test(value) && s.charCodeAt(ve) === 32 && /[a-z]/.test(s.charAt(ve + 1))) {
        continue;
      }
      out += s.slice(last, vs) + mark(kind);
      last = ve;
      hits++;
      PAIR_RE.lastIndex = ve;
    }
    return last === 0 ? s : out + s.slice(last);
  }
}

/** Builds a Redactor with per-project extensions; throws an Error naming the first bad pattern or key. */
export function compileRedactor(extra?: RedactionRules): Redactor {
  return new Redactor(extra);
}
