// `puraify-monitoring query` and `tail`: read a running engine over its HTTP API.
// The helpers (query string, token, line format, SSE parsing) are pure; the commands wrap fetch.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { SETTINGS } from '../config.js';

export class OptionError extends Error {}

export interface RemoteOptions {
  url?: string;
  token?: string;
  dataDir?: string;
  project?: string;
  status?: string;
  engine?: string;
  platform?: string;
  q?: string;
  /** The query language (the positional argument of `query` and `tail`). */
  query?: string;
  from?: string;
  to?: string;
  attr?: string[];
  limit?: string;
  all?: boolean;
  json?: boolean;
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';

function time(raw: string | undefined, flag: string): string | undefined {
  if (raw === undefined) return undefined;
  if (/^\d{1,15}$/.test(raw)) return raw;
  if (/^\d{4}-\d{2}-\d{2}/.test(raw) && !Number.isNaN(Date.parse(raw))) return raw;
  throw new OptionError(`--${flag} must be an ISO 8601 time or epoch milliseconds, got "${raw}"`);
}

/** The /monitoring/logs (or /stream) query string for the options; throws OptionError on bad ones. */
export function buildQuery(o: RemoteOptions, opts: { withLimit?: boolean; cursor?: string } = {}): string {
  const p = new URLSearchParams();
  const simple: [keyof RemoteOptions, string][] = [
    ['project', 'project_id'], ['status', 'status'], ['engine', 'engine'], ['platform', 'platform'], ['q', 'q'], ['query', 'query'],
  ];
  for (const [opt, param] of simple) {
    const v = o[opt];
    if (typeof v === 'string') p.append(param, v);
  }
  const from = time(o.from, 'from');
  const to = time(o.to, 'to');
  if (from !== undefined) p.set('from', from);
  if (to !== undefined) p.set('to', to);
  for (const kv of o.attr ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new OptionError(`--attr must be key=value, got "${kv}"`);
    p.append(`attr.${kv.slice(0, i)}`, kv.slice(i + 1));
  }
  if (opts.withLimit !== false && o.limit !== undefined) {
    if (!/^\d{1,4}$/.test(o.limit) || Number(o.limit) < 1 || Number(o.limit) > 1000) throw new OptionError('--limit must be a whole number from 1 to 1000');
    p.set('limit', String(Number(o.limit)));
  }
  if (opts.cursor) p.set('cursor', opts.cursor);
  return p.toString();
}

/** --token, else MONITORING_TOKEN, else <data-dir>/admin-token. */
export function resolveToken(o: RemoteOptions, env: NodeJS.ProcessEnv = process.env, read: (file: string) => string = (f) => readFileSync(f, 'utf8')): string {
  if (o.token) return o.token;
  if (env.MONITORING_TOKEN) return env.MONITORING_TOKEN;
  const dir = resolve(o.dataDir ?? env[SETTINGS.dataDir.env] ?? SETTINGS.dataDir.default);
  const file = join(dir, 'admin-token');
  let token = '';
  try {
    token = read(file).trim();
  } catch {
    // no file
  }
  if (!token) throw new OptionError(`no token: give --token, set MONITORING_TOKEN, or run where ${file} exists`);
  return token;
}

export function baseUrl(raw: string | undefined): string {
  const u = raw ?? DEFAULT_URL;
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    throw new OptionError(`--url must be an http(s) URL, got "${u}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new OptionError(`--url must be an http(s) URL, got "${u}"`);
  return u.replace(/\/+$/, '');
}

type Ev = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** One line per event: `<ts> <project> <type> <status> <platform/action> <error_type>: <message>`, or JSON. */
export function formatEvent(e: Ev, json = false): string {
  if (json) return JSON.stringify(e);
  const parts = [str(e.timestamp), str(e.project_id), str(e.event_type), str(e.status)];
  const platform = str(e.platform);
  const action = str(e.action);
  if (platform || action) parts.push([platform, action].filter(Boolean).join('/'));
  const errorType = str(e.error_type);
  const message = str(e.message)?.replace(/\s*\n\s*/g, ' ');
  if (errorType && message) parts.push(`${errorType}: ${message}`);
  else parts.push(errorType ?? message);
  return parts.filter((p): p is string => p !== undefined).join(' ');
}

/** Incremental Server-Sent Events parser: feed chunks, get complete {event, data} messages. */
export class SseParser {
  private buf = '';
  push(chunk: string): { event: string; data: string }[] {
    this.buf += chunk;
    const out: { event: string; data: string }[] = [];
    for (;;) {
      const m = /\r?\n\r?\n/.exec(this.buf);
      if (!m) break;
      const block = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length) out.push({ event, data: data.join('\n') });
    }
    return out;
  }
}

export class ApiError extends Error {
  /** For a query the engine could not parse: where (1-based), to point at it. */
  column?: number;
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function apiError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let msg = text.trim() || res.statusText;
  let column: number | undefined;
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string; details?: unknown } };
    if (body.error?.message) {
      msg = body.error.message;
      if (Array.isArray(body.error.details) && body.error.details.length) {
        msg += ': ' + body.error.details.map((d: { field?: string; message?: string }) => `${d.field ?? ''} ${d.message ?? ''}`.trim()).join('; ');
      }
      const c = (body.error.details as { column?: unknown } | undefined)?.column;
      if (body.error.code === 'invalid_query' && typeof c === 'number') column = c;
    }
  } catch {
    // not JSON
  }
  const err = new ApiError(res.status, `${res.status} ${msg}`);
  err.column = column;
  return err;
}

/** The query with a caret under the column an error points at. */
export function pointAt(query: string, column: number): string {
  const chars = [...query];
  // tabs keep their width so the caret lines up
  const pad = chars.slice(0, column - 1).map((c) => (c === '\t' ? '\t' : ' ')).join('');
  return `  ${chars.join('').replace(/\n/g, ' ')}\n  ${pad}^`;
}

/** GET /monitoring/logs/count: how many events match. */
export async function runCount(o: RemoteOptions, write: (line: string) => void): Promise<number | null> {
  const base = baseUrl(o.url);
  const token = resolveToken(o);
  const res = await fetch(`${base}/monitoring/logs/count?${buildQuery(o, { withLimit: false })}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw await apiError(res);
  const body = (await res.json()) as { count: number | null; timed_out: boolean };
  write(body.count === null ? 'unknown (counting took longer than the query timeout)' : String(body.count));
  return body.count;
}

/** GET /monitoring/logs, page after page with all; writes one line per event. */
export async function runQuery(o: RemoteOptions, write: (line: string) => void, warn: (line: string) => void = () => {}): Promise<number> {
  const base = baseUrl(o.url);
  const token = resolveToken(o);
  buildQuery(o); // validate before any request
  let cursor: string | undefined;
  let n = 0;
  for (;;) {
    const res = await fetch(`${base}/monitoring/logs?${buildQuery(o, { cursor })}`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw await apiError(res);
    const body = (await res.json()) as { logs: Ev[]; next_cursor: string | null };
    for (const e of body.logs) write(formatEvent(e, o.json));
    n += body.logs.length;
    if (!body.next_cursor) break;
    if (!o.all) {
      warn('(more events: add --all to follow the cursor)');
      break;
    }
    cursor = body.next_cursor;
  }
  return n;
}

/** Opens GET /monitoring/stream and writes events until signal aborts; reconnects with backoff. */
export async function runTail(
  o: RemoteOptions, write: (line: string) => void, warn: (line: string) => void, signal: AbortSignal,
  backoff = { firstMs: 500, maxMs: 30_000 },
): Promise<void> {
  const base = baseUrl(o.url);
  const token = resolveToken(o);
  const url = `${base}/monitoring/stream?${buildQuery(o, { withLimit: false })}`;
  let delay = backoff.firstMs;
  while (!signal.aborted) {
    try {
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal });
      if (!res.ok) {
        const err = await apiError(res);
        // a wrong token or filter will not get better by retrying
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw err;
        warn(`puraify-monitoring tail: ${err.message}`);
      } else if (res.body) {
        warn(`tailing ${base}/monitoring/stream (Ctrl-C to stop)`);
        delay = backoff.firstMs;
        const parser = new SseParser();
        const decoder = new TextDecoder();
        for await (const chunk of res.body) {
          for (const m of parser.push(decoder.decode(chunk as Uint8Array, { stream: true }))) {
            if (m.event === 'log') {
              try {
                write(formatEvent(JSON.parse(m.data) as Ev, o.json));
              } catch {
                warn(`puraify-monitoring tail: unreadable event: ${m.data.slice(0, 200)}`);
              }
            } else if (m.event === 'missed') {
              warn(`puraify-monitoring tail: missed ${(JSON.parse(m.data) as { count?: number }).count ?? '?'} events (too slow to read)`);
            }
          }
        }
        if (!signal.aborted) warn('puraify-monitoring tail: connection closed; reconnecting');
      }
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof ApiError) throw e;
      warn(`puraify-monitoring tail: ${(e as Error).message}; reconnecting in ${Math.round(delay / 100) / 10} s`);
    }
    if (signal.aborted) return;
    await new Promise<void>((r) => {
      const t = setTimeout(r, delay);
      signal.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
    });
    delay = Math.min(delay * 2, backoff.maxMs);
  }
}

function fail(e: unknown, query?: string): never {
  if (e instanceof OptionError) {
    console.error(`puraify-monitoring: ${e.message}`);
    process.exit(2);
  }
  console.error(`puraify-monitoring: ${e instanceof ApiError ? e.message : (e as Error).message ?? String(e)}`);
  if (e instanceof ApiError && e.column !== undefined && query !== undefined) console.error(pointAt(query, e.column));
  process.exit(1);
}

function withFilters(cmd: Command): Command {
  return cmd
    .option('--url <url>', `the engine's address (default ${DEFAULT_URL})`)
    .option('--token <token>', 'bearer token [MONITORING_TOKEN, else <data-dir>/admin-token]')
    .option('--data-dir <dir>', `where to find admin-token [${SETTINGS.dataDir.env}, default ${SETTINGS.dataDir.default}]`)
    .option('--project <id>', 'project_id')
    .option('--status <s>', 'status')
    .option('--engine <e>', 'engine')
    .option('--platform <p>', 'platform')
    .option('--q <text>', 'text in message, error_type, stack')
    .option('--from <time>', 'from (ISO 8601 or epoch ms, inclusive)')
    .option('--to <time>', 'to (ISO 8601 or epoch ms, exclusive)')
    .option('--attr <key=value>', 'attribute filter (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--json', 'print NDJSON, one event a line');
}

/** Adds `query` and `tail` to the program. */
export function addRemoteCommands(program: Command): void {
  withFilters(program.command('query').description('search events on a running engine (GET /monitoring/logs)'))
    .argument('[expr]', 'a query, e.g. \'status:error platform:(Slack OR Notion) "token expired"\' (see the README\'s "Query language")')
    .option('--limit <n>', 'events a page (1..1000, default 100)')
    .option('--all', 'follow next_cursor through every page')
    .option('--count', 'print how many events match instead (GET /monitoring/logs/count)')
    .action(async (expr: string | undefined, opts: RemoteOptions & { count?: boolean }) => {
      const o = { ...opts, query: expr };
      const run = opts.count ? runCount(o, (l) => console.log(l)) : runQuery(o, (l) => console.log(l), (l) => console.error(l));
      await run.catch((e) => fail(e, expr));
    });

  withFilters(program.command('tail').description('follow events live from a running engine (GET /monitoring/stream)'))
    .argument('[expr]', 'a query: only matching events are shown')
    .action(async (expr: string | undefined, opts: RemoteOptions) => {
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await runTail({ ...opts, query: expr }, (l) => console.log(l), (l) => console.error(l), ac.signal).catch((e) => fail(e, expr));
      process.exit(0);
    });
}
