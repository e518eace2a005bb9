// The HTTP API, as the dashboard uses it: the bearer token from localStorage on every call, errors
// as the API words them ({error: {code, message, details}}), and a 401 that asks for the token again.

const TOKEN_KEY = 'puraify.monitoring.token';

export type Params = Record<string, string | readonly string[] | undefined | null>;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: { errors?: { field: string; message: string }[] } & Record<string, unknown>,
  ) {
    super(message);
  }
  /** The route is not served by this engine (404 from the router, not "no such group"). */
  get noRoute(): boolean {
    return this.status === 404 && this.message.startsWith('no route ');
  }
}

let token: string | null = readStored();
const unauthorizedListeners = new Set<(message: string) => void>();

function readStored(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function getToken(): string | null {
  return token;
}

export function setToken(t: string | null): void {
  token = t;
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // private mode: the token lives for this page only
  }
}

/** Called with the API's message whenever a call answers 401. */
export function onUnauthorized(fn: (message: string) => void): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

export function buildUrl(path: string, params: Params = {}): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (typeof v === 'string') u.append(k, v);
    else for (const x of v) if (x !== '') u.append(k, x);
  }
  const s = u.toString();
  return s ? `${path}?${s}` : path;
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { accept: 'application/json', ...extra };
  if (token) h.authorization = `Bearer ${token}`;
  return h;
}

async function toError(res: Response): Promise<ApiError> {
  let body: unknown;
  try {
    body = await res.json();
  } catch (e) {
    // a request cancelled while its error body was read (the page moved on) is no answer: its
    // 401 must not replace the message of the one that was read whole
    if ((e as Error).name === 'AbortError') throw e;
    body = undefined;
  }
  const e = (body as { error?: { code?: string; message?: string; details?: ApiError['details'] } } | undefined)?.error;
  const err = new ApiError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? (res.statusText || `HTTP ${res.status}`), e?.details);
  if (res.status === 401) for (const fn of unauthorizedListeners) fn(err.message);
  return err;
}

export async function api<T>(path: string, params: Params = {}, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(buildUrl(path, params), {
      method: init.method ?? 'GET',
      headers: headers(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
      signal: init.signal,
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'the engine did not answer (network error)');
  }
  if (!res.ok) throw await toError(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** Fetches a file (an export) with the token and hands it to the browser as a download. */
export async function download(path: string, params: Params, filename: string): Promise<void> {
  const res = await fetch(buildUrl(path, params), { headers: headers({ accept: '*/*' }) });
  if (!res.ok) throw await toError(res);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Server-Sent Events over fetch, so the Authorization header goes along (EventSource cannot send
 * one). Calls onEvent with each parsed `data:` payload; resolves when the stream ends or is aborted.
 */
export async function stream(path: string, params: Params, signal: AbortSignal, onEvent: (type: string, data: unknown) => void, onOpen?: () => void): Promise<void> {
  const res = await fetch(buildUrl(path, params), { headers: headers({ accept: 'text/event-stream' }), signal });
  if (!res.ok) throw await toError(res);
  if (!res.body) throw new ApiError(0, 'no_stream', 'this browser cannot read a streamed response');
  onOpen?.();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let type = 'message';
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let nl: number;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
        if (line === '') {
          if (data.length) {
            const text = data.join('\n');
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // not JSON: passed on as text
            }
            onEvent(type, parsed);
          }
          type = 'message';
          data = [];
        } else if (line.startsWith(':')) {
          // comment / heartbeat
        } else {
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'data') data.push(v);
          else if (field === 'event') type = v;
        }
      }
    }
  } catch (e) {
    if ((e as Error).name !== 'AbortError') throw e;
  } finally {
    reader.releaseLock();
  }
}

// ---- the API's shapes (what the views read) ----------------------------------------------------
// Shapes the server defines are imported from it (types only: nothing of the server is bundled).

export type { StoredEvent } from '../../src/event.js';
export type { PerformanceGroup, Series } from '../../src/performance/queries.js';
export type { SessionListItem as SessionItem, Related } from '../../src/audit/sessions.js';
export type { ReplayStep } from '../../src/audit/replay.js';
import type { Replay as ReplayBody } from '../../src/audit/replay.js';
/** GET /monitoring/sessions/:id: the replay, and whether the session had more events than shown. */
export type Replay = ReplayBody & { truncated: boolean };
import type { StoredEvent } from '../../src/event.js';
import type { Series } from '../../src/performance/queries.js';


export interface LogsPage {
  logs: StoredEvent[];
  next_cursor: string | null;
}

export type { ErrorGroupSummary as ErrorGroup } from '../../src/aggregator/http.js';
import type { ErrorGroupSummary as ErrorGroup } from '../../src/aggregator/http.js';

export interface ErrorList {
  from: string;
  to: string;
  interval_s: number;
  groups: (ErrorGroup & { trend: number[] })[];
}

export interface TopValue {
  value: string;
  count: number;
}

export interface SuspectChange {
  reason: 'started' | 'spike';
  change: StoredEvent;
  diff?: { path: string; op: string; before?: unknown; after?: unknown }[];
  onset: string;
  lag_ms: number;
  before?: number;
  after?: number;
}

export interface ErrorDetail extends ErrorGroup {
  interval_s: number;
  trend: { t: number; count: number }[];
  samples: StoredEvent[];
  stack: string | null;
  top: { platforms: TopValue[]; actions: TopValue[]; flows: TopValue[]; users: TopValue[]; engines?: TopValue[] };
  suspect_changes: SuspectChange[];
}



export interface Timeseries {
  metric: string;
  interval_s: number;
  from: string;
  to: string;
  series: Series[];
}





export interface AlertItem {
  id: string;
  group_id: string | null;
  rule_id: string | null;
  rule_name: string | null;
  project_id: string | null;
  state: string;
  kind: string;
  count: number;
  severity: string;
  title: string;
  summary: string;
  labels: Record<string, string> | null;
  link: string | null;
  first_seen: string | null;
  last_seen: string | null;
  created_at: string;
  deliveries: { channel_id: string; channel_name: string; channel_type: string; status: string; attempts: number; last_error: string | null; delivered_at: string | null }[];
}

export interface UiNotification {
  id: string;
  project_id: string | null;
  state: string;
  severity: string;
  title: string;
  summary: string;
  count: number;
  rule_name: string | null;
  link: string | null;
  created_at: string;
  read: boolean;
}

export type { Preview, PreviewSeries } from '../../src/alerts/preview.js';

import type { Rule } from '../../src/alerts/rules.js';
/** GET /monitoring/alert-rules: a rule as the API shows it (times as ISO strings). */
export type AlertRule = Omit<Rule, 'created_at' | 'updated_at'> & { created_at: string; updated_at: string };

export interface AlertChannel {
  id: string;
  project_id: string | null;
  name: string;
  type: string;
  default: boolean;
  config: Record<string, unknown>;
  created_at: string;
}

export interface AlertSilence {
  id: string;
  project_id: string | null;
  matchers: Record<string, string>;
  starts_at: string;
  ends_at: string;
  comment: string;
  active: boolean;
  created_by: string | null;
  created_at: string;
}

export interface AlertGroupItem {
  id: string;
  rule_id: string;
  rule_name?: string | null;
  project_id: string;
  labels: Record<string, string>;
  state: 'firing' | 'resolved';
  count: number;
  value: number | null;
  detail: string;
  firing_since: string | null;
  first_seen: string | null;
  last_seen: string | null;
  last_notified_at: string | null;
  resolved_at: string | null;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
}
