// Redaction benchmark: times Redactor.redactRow over ~200k realistic events.
//   npx tsc -p tsconfig.json && node dist/bench/redact.js [events]
//   (node --expose-gc … keeps the previous round's garbage out of the timings)
// Scenarios: "clean" (no secrets, the common case), "secrets" (every event carries one) and
// "mixed" (about 5% with a secret). Each scenario runs a few rounds, each on fresh rows parsed
// from the same JSON batch (redactRow mutates them), and reports the best round.
import { performance } from 'node:perf_hooks';
import RE2 from 're2';
import { RE2JS } from 're2js';
import { normalize, type EventRow } from '../src/event.js';
import { Redactor } from '../src/collector/redact.js';
import { alnum, rng, SECRET_MESSAGES } from './common.js';

const TOTAL = Number(process.argv[2] ?? 200_000);
const ROUNDS = 3;


const ENGINES = ['vault', 'execution', 'gateway', 'builder', 'platform', 'validation'];
const ACTIONS = ['send_message', 'create_issue', 'fetch_rows', 'run_flow', 'refresh_credentials', 'upload_file'];
const PLATFORMS = ['slack', 'github', 'notion', 'gsheets', 'stripe', 'http'];
const REGIONS = ['eu-west-1', 'us-east-1', 'ap-south-1'];

const hex = (r: () => number, n: number): string => {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[Math.floor(r() * 16)];
  return s;
};
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const uuid = (r: () => number): string => `${hex(r, 8)}-${hex(r, 4)}-7${hex(r, 3)}-a${hex(r, 3)}-${hex(r, 12)}`;

const CLEAN_MESSAGES: ((r: () => number) => string)[] = [
  (r) => `request completed in ${Math.floor(r() * 900)} ms`,
  (r) => `GET /api/v1/flows/${uuid(r)} returned 200 in ${Math.floor(r() * 90)} ms`,
  (r) => `user ${Math.floor(r() * 1e6)} logged in from 10.0.${Math.floor(r() * 255)}.${Math.floor(r() * 255)}`,
  (r) => `flow ${uuid(r)} step ${Math.floor(r() * 12)} finished at 2025-07-25T14:01:${String(Math.floor(r() * 60)).padStart(2, '0')}.123Z`,
  (r) => `${pick(r, PLATFORMS)} rate limited, retrying in ${Math.floor(r() * 30)}s (attempt ${Math.floor(r() * 5)})`,
  () => 'connection to postgres://db.internal:5432/app refused',
  (r) => `failed to refresh token: connection reset by peer (trace ${hex(r, 32)})`,
  (r) => `tokenizer produced token_count=${Math.floor(r() * 4000)} for prompt`,
  () => 'validation failed: field "email" must be a string',
  (r) => `job ${Math.floor(r() * 1e9)} queued at ${1721916060000 + Math.floor(r() * 1e6)}`,
];


const STACK = 'Error: upstream failed\n    at request (/app/dist/src/http/client.js:88:13)\n    at async runStep (/app/dist/src/flows/run.js:41:7)';

/** One event as an engine would send it. */
function makeInput(r: () => number, i: number, withSecret: boolean): Record<string, unknown> {
  const error = withSecret || r() < 0.15;
  const attributes: Record<string, unknown> = {
    'http.method': pick(r, ['GET', 'POST', 'PUT']),
    'http.status_code': pick(r, [200, 201, 400, 401, 500]),
    region: pick(r, REGIONS),
    'flow.step': Math.floor(r() * 12),
    'llm.token_count': Math.floor(r() * 4000),
  };
  if (r() < 0.3) attributes['http.url'] = `https://api.example.com/v1/items/${Math.floor(r() * 1e6)}?page=${Math.floor(r() * 10)}`;
  if (withSecret && r() < 0.3) attributes.slack_token = `xoxb-${alnum(r, 30)}`;
  const input: Record<string, unknown> = {
    id: `evt-${i}`,
    timestamp: 1721916060000 + i,
    project_id: `proj_${i % 20}`,
    event_type: error ? 'error' : 'log',
    engine: pick(r, ENGINES),
    flow_id: uuid(r),
    user_id: String(Math.floor(r() * 1e5)),
    trace_id: hex(r, 32),
    span_id: hex(r, 16),
    platform: pick(r, PLATFORMS),
    action: pick(r, ACTIONS),
    status: error ? 'failed' : 'success',
    severity: error ? 'error' : 'info',
    message: withSecret ? pick(r, SECRET_MESSAGES)(r) : pick(r, CLEAN_MESSAGES)(r),
    duration_ms: Math.floor(r() * 1000),
    attributes,
  };
  if (error) {
    input.error_type = pick(r, ['UpstreamError', 'TimeoutError', 'AuthError']);
    input.stack = STACK;
  }
  return input;
}

/** A batch of `n` events as the JSON an engine would POST. */
function makeBatch(n: number, secretShare: number, seed: number): string {
  const r = rng(seed);
  const inputs: Record<string, unknown>[] = new Array(n);
  for (let i = 0; i < n; i++) inputs[i] = makeInput(r, i, r() < secretShare);
  return JSON.stringify(inputs);
}

/**
 * Rows as ingestion produces them: parsed from JSON (so strings are flat, not the ropes string
 * building leaves, which would be flattened on first access and timed as redaction), then
 * normalize()d.
 */
function parseRows(batch: string, receivedAt: number): EventRow[] {
  return (JSON.parse(batch) as unknown[]).map((input) => {
    const res = normalize(input, receivedAt);
    if (!res.ok) throw new Error(`bench event rejected: ${JSON.stringify(res.errors)}`);
    return res.row;
  });
}

interface Result {
  name: string;
  events: number;
  redactions: number;
  ms: number;
}

function run(name: string, n: number, secretShare: number, redactor = new Redactor()): Result {
  const batch = makeBatch(n, secretShare, 100);
  const receivedAt = 1721916060000 + n;
  // warm-up on a separate set, so the JIT has seen every path
  for (const row of parseRows(makeBatch(Math.min(n, 20_000), secretShare, 7), receivedAt)) redactor.redactRow(row);
  let best: Result | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    const rows = parseRows(batch, receivedAt); // fresh rows: redactRow mutates them
    (globalThis as { gc?: () => void }).gc?.(); // with --expose-gc, start each round with a clean heap
    let redactions = 0;
    const t0 = performance.now();
    for (let i = 0; i < rows.length; i++) redactions += redactor.redactRow(rows[i]);
    const ms = performance.now() - t0;
    if (best === undefined || ms < best.ms) best = { name, events: n, redactions, ms };
  }
  return best!;
}

// A project's own patterns (PUT /monitoring/projects/:id/settings), as tenants write them.
const PROJECT_PATTERNS = [
  { name: 'employee_id', regex: 'EMP-[0-9]{6}', flags: 'i' },
  { name: 'internal_host', regex: '[a-z0-9-]+\\.corp\\.example\\.com' },
  { name: 'order_ref', regex: 'ORD-[A-Z]{2}[0-9]{8}' },
];

const results = [
  run('clean (no secrets)', TOTAL, 0),
  run('mixed (~5% secrets)', TOTAL, 0.05),
  run('secrets (every event)', TOTAL, 1),
  run('mixed + 3 project patterns', TOTAL, 0.05, new Redactor({ patterns: PROJECT_PATTERNS })),
];

console.log(`redactRow, default redactor, best of ${ROUNDS} rounds (node ${process.version})`);
for (const r of results) {
  const perSec = r.events / (r.ms / 1000);
  const ns = (r.ms * 1e6) / r.events;
  console.log(
    `${r.name.padEnd(24)} ${String(r.events).padStart(7)} events  ${r.ms.toFixed(1).padStart(8)} ms  ` +
      `${Math.round(perSec).toLocaleString('en-US').padStart(11)} events/s  ${ns.toFixed(0).padStart(6)} ns/event  ` +
      `${r.redactions} redactions`,
  );
}

// ---- the project patterns alone, per regex engine --------------------------------------------
// Every text field of every row (as redactRow passes them) through the three patterns: JavaScript's
// backtracking RegExp (before), RE2 (native binding, what the engine uses) and re2js (RE2 ported
// to JavaScript, the fallback when the native build is not possible). "per field" runs each pattern
// on each string; "row probe" tests each pattern once on the row's strings joined by newlines and
// runs it per field only on a hit (what the Redactor does).

type ApplyRow = (texts: string[]) => void;
const mark = (name: string) => () => `[REDACTED:${name}]`;
const jsRes = () => PROJECT_PATTERNS.map((p) => [new RegExp(p.regex, `${p.flags ?? ''}g`), mark(p.name)] as const);
const re2Res = () => PROJECT_PATTERNS.map((p) => [new RE2(p.regex, `${p.flags ?? ''}g`), new RE2(p.regex, `${p.flags ?? ''}m`), mark(p.name)] as const);
const re2jsRes = () => PROJECT_PATTERNS.map((p) => [RE2JS.compile(p.regex, (p.flags === 'i' ? RE2JS.CASE_INSENSITIVE : 0) | RE2JS.MULTILINE), `[REDACTED:${p.name}]`] as const);
const REGEX_ENGINES: [string, () => ApplyRow][] = [
  ['RegExp per field (before)', () => {
    const res = jsRes();
    return (texts) => {
      for (let i = 0; i < texts.length; i++) for (const [re, f] of res) texts[i] = texts[i].replace(re, f);
    };
  }],
  ['re2 per field', () => {
    const res = re2Res();
    return (texts) => {
      for (let i = 0; i < texts.length; i++) for (const [re, , f] of res) texts[i] = texts[i].replace(re as unknown as RegExp, f);
    };
  }],
  ['re2 row probe (engine)', () => {
    const res = re2Res();
    return (texts) => {
      const joined = texts.join('\n');
      for (const [re, probe, f] of res) {
        if (!probe.test(joined)) continue;
        for (let i = 0; i < texts.length; i++) texts[i] = texts[i].replace(re as unknown as RegExp, f);
      }
    };
  }],
  ['re2js per field', () => {
    const res = re2jsRes();
    return (texts) => {
      for (let i = 0; i < texts.length; i++) for (const [re, m] of res) texts[i] = re.matcher(texts[i]).replaceAll(m);
    };
  }],
  ['re2js row probe', () => {
    const res = re2jsRes();
    return (texts) => {
      const joined = texts.join('\n');
      for (const [re, m] of res) {
        if (!re.matcher(joined).find()) continue;
        for (let i = 0; i < texts.length; i++) texts[i] = re.matcher(texts[i]).replaceAll(m);
      }
    };
  }],
];

function textsOf(r: EventRow): string[] {
  const out: string[] = [];
  for (const f of ['message', 'stack', 'error_type', 'flow_id', 'session_id', 'user_id', 'engine', 'triggered_by', 'platform', 'action', 'status', 'severity', 'event_type'] as const) out.push(r[f]);
  for (let i = 0; i < r.attr_keys.length; i++) out.push(r.attr_keys[i], r.attr_values[i]);
  return out;
}

const N_PATTERN = Math.min(TOTAL, 50_000);
const patternRows = parseRows(makeBatch(N_PATTERN, 0.05, 100), 1721916060000 + N_PATTERN).map(textsOf);
console.log(`\n3 project patterns over every text field of ${N_PATTERN} events, best of ${ROUNDS}`);
for (const [name, make] of REGEX_ENGINES) {
  const apply = make();
  for (const t of patternRows.slice(0, 5000)) apply([...t]); // warm-up
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const rows = patternRows.map((t) => [...t]);
    const t0 = performance.now();
    for (let i = 0; i < rows.length; i++) apply(rows[i]);
    best = Math.min(best, performance.now() - t0);
  }
  console.log(`${name.padEnd(26)} ${best.toFixed(1).padStart(8)} ms  ${((best * 1e6) / N_PATTERN).toFixed(0).padStart(6)} ns/event`);
}

// ---- hostile patterns: time for one string, per engine -----------------------------------------
console.log('\nhostile patterns (one string each; RegExp capped at 26 characters, it doubles per character)');
for (const regex of ['(a|a)+$', '(.*a){12}$']) {
  for (const len of [20, 24, 26, 10_000]) {
    const input = `${'a'.repeat(len)}!`;
    const cols: string[] = [];
    for (const [name, exec] of [
      ['RegExp', () => input.replace(new RegExp(regex, 'g'), 'X')],
      ['re2', () => input.replace(new RE2(regex, 'g') as unknown as RegExp, 'X')],
      ['re2js', () => RE2JS.compile(regex).matcher(input).replaceAll('X')],
    ] as [string, () => string][]) {
      if (name === 'RegExp' && len > 26) {
        cols.push(`${name} (not run)`);
        continue;
      }
      const t0 = performance.now();
      exec();
      cols.push(`${name} ${(performance.now() - t0).toFixed(2)} ms`);
    }
    console.log(`${regex.padEnd(12)} ${String(len).padStart(6)} chars: ${cols.join('  ')}`);
  }
}
