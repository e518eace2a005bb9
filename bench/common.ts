// Shared pieces of the benchmarks: a realistic event generator, an engine in a child process,
// percentiles and a machine line. Benchmarks print figures; they assert nothing.
import { readFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

export const ADMIN = 'bench-admin-token-0123456789';

export const PLATFORMS = ['Slack', 'Notion', 'Gmail', 'HubSpot', 'Stripe', 'Airtable'];
export const ACTIONS = ['send_message', 'create_page', 'send_email', 'update_contact', 'charge', 'append_row'];
export const ENGINES = ['execution', 'validation', 'vault', 'platform_builder', 'feedback_loop', 'engine_control'];
export const ERRORS = ['api_timeout', 'token_expired', 'rate_limited', 'validation_failed', 'not_found'];

/** A deterministic pseudo-random generator so every run ingests the same events. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeEvent(r: () => number, i: number, opts: { projects?: number; start?: number; spanMs?: number } = {}): Record<string, unknown> {
  const projects = opts.projects ?? 50;
  const start = opts.start ?? Date.now() - 7 * 24 * 3600 * 1000;
  const span = opts.spanMs ?? 7 * 24 * 3600 * 1000;
  const p = Math.floor(r() * PLATFORMS.length);
  const failed = r() < 0.08;
  const e: Record<string, unknown> = {
    project_id: `pf_${Math.floor(r() * projects)}`,
    event_type: failed ? 'action_error' : 'execution',
    engine: ENGINES[Math.floor(r() * ENGINES.length)],
    platform: PLATFORMS[p],
    action: ACTIONS[p],
    status: failed ? 'error' : 'success',
    duration_ms: Math.round(20 + r() * r() * 3000),
    retries: failed ? Math.floor(r() * 4) : 0,
    flow_id: `flow_${Math.floor(r() * 200)}`,
    session_id: `sess_${Math.floor(i / 20)}`,
    user_id: `user_${Math.floor(r() * 5000)}`,
    timestamp: start + Math.floor((i / 1e7) * span + r() * 1000),
    message: failed ? `Failed to call ${PLATFORMS[p]} after ${Math.round(r() * 5000)} ms` : `${ACTIONS[p]} ok`,
  };
  if (failed) e.error_type = ERRORS[Math.floor(r() * ERRORS.length)];
  return e;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

export function machine(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

/** The node flags of package.json's start script. */
export function startNodeArgs(): string[] {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { scripts: { start: string } };
  return pkg.scripts.start.split(/\s+/).filter((a) => a.startsWith('--'));
}

export async function spawnEngine(dataDir: string, env: Record<string, string> = {}): Promise<{ url: string; proc: ChildProcess; stop(): Promise<void> }> {
  // the engine as `npm start` runs it (its node flags: the heap limit); BENCH_NODE_ARGS adds to them,
  // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the engine process
  const nodeArgs = [...startNodeArgs(), ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  const proc = spawn(process.execPath, [...nodeArgs, join(import.meta.dirname, '..', 'src', 'cli.js'), 'serve'], {
    env: { ...process.env, MONITORING_DATA_DIR: dataDir, MONITORING_PORT: '0', MONITORING_ADMIN_TOKEN: ADMIN, MONITORING_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`engine exited with ${code}: ${out}`)));
  });
  return {
    url, proc,
    stop: () => new Promise<void>((r) => {
      proc.once('exit', () => r());
      proc.kill('SIGTERM');
    }),
  };
}

/**
 * The load generators' connections: node:http with keep-alive, as a load tool would. fetch (undici)
 * cost the client about as much CPU per one-event request as the engine spent answering it, and
 * client and engine share this machine's cores.
 */
const clientAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export function post(url: string, path: string, body: string, contentType = 'application/json', token = ADMIN): Promise<number> {
  const u = new URL(url + path);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', agent: clientAgent,
      headers: { authorization: `Bearer ${token}`, 'content-type': contentType, 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function get(url: string, path: string, token = ADMIN): Promise<{ status: number; body: any }> {
  const res = await fetch(url + path, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Waits until the engine's loader has moved everything acknowledged into storage. */
export async function untilStored(url: string, stallMs = 120_000): Promise<void> {
  let least = Infinity;
  let movedAt = Date.now();
  for (;;) {
    const m = await get(url, '/monitoring/load?window=10');
    const left = m.body?.ingest?.unloaded_bytes;
    if (left === 0) return;
    // a loader that stopped moving fails the bench instead of hanging it
    if (typeof left === 'number' && left < least) {
      least = left;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > stallMs) {
      throw new Error(`the loader has not moved for ${stallMs / 1000} s (${least} bytes still unloaded; /monitoring/load answered ${m.status})`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Posts events 0…rows-1 from 16 senders in batches of 1,000 with ids (as the SDK sends), waiting and
 * resending what is refused past capacity (503/429 + Retry-After). Returns events/s acknowledged
 * (the last answer) and stored (the loader's last block in): an answer only means the events are in
 * the log, so a store measured or copied before `stored` lacks the log's backlog.
 */
export async function fillThroughHttp(url: string, rows: number, event: (n: number) => Record<string, unknown>): Promise<{ acked: number; stored: number }> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < rows) {
      const from = next;
      next = Math.min(rows, next + 1000);
      const batch: Record<string, unknown>[] = [];
      for (let n = from; n < next; n++) batch.push(event(n));
      const body = JSON.stringify(batch);
      let status = await post(url, '/monitoring/logs', body);
      for (let tries = 0; (status === 503 || status === 429) && tries < 100; tries++) {
        await new Promise((r) => setTimeout(r, 1000));
        status = await post(url, '/monitoring/logs', body);
      }
      if (status !== 200) throw new Error(`fill: ingest answered ${status}`);
    }
  }));
  const acked = rows / ((performance.now() - t0) / 1000);
  await untilStored(url);
  return { acked, stored: rows / ((performance.now() - t0) / 1000) };
}

/** Creates an API key for every project (such a key needs the admin scope) and returns its token. */
export async function allProjectKey(url: string, name: string): Promise<string> {
  const res = await fetch(url + '/monitoring/keys', {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, scopes: ['admin'], project_id: null }),
  });
  const body = await res.json() as { token?: string };
  if (res.status !== 201 || !body.token) throw new Error(`key not created: HTTP ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

export const alnum = (r: () => number, n: number): string => {
  const cs = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < n; i++) s += cs[Math.floor(r() * cs.length)];
  return s;
};

/** Messages that carry a secret of a common kind (for the redaction benchmarks). */
export const SECRET_MESSAGES: ((r: () => number) => string)[] = [
  (r) => `access failed for token xoxb-${Math.floor(r() * 1e12)}-${Math.floor(r() * 1e12)}-${alnum(r, 24)}`,
  (r) => `upstream 401, Authorization: Bearer ${alnum(r, 32)}`,
  (r) => `login failed for bob password=${alnum(r, 10)} from 10.0.0.1`,
  (r) => `connect postgres://app:${alnum(r, 12)}@db.internal:5432/app failed`,
  (r) => `github clone failed with ghp_${alnum(r, 36)}`,
  (r) => `payload {"user":"bob","api_key":"${alnum(r, 24)}","n":1}`,
  () => 'charge 4111 1111 1111 1111 declined',
  (r) => `session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.${alnum(r, 43)} expired`,
  (r) => `using AKIA${alnum(r, 16).toUpperCase()} for s3 upload`,
];

/** The engine's ingest refusals so far, by reason (from /metrics), e.g. "queueing 12, parse_queue 3". */
export async function refusedByReason(url: string): Promise<string> {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
  const reasons = text.split('\n').filter((l) => l.startsWith('puraify_monitoring_ingest_refused_total{') && !l.endsWith(' 0'))
    .map((l) => l.replace(/^puraify_monitoring_ingest_refused_total\{reason="(\w+)"\} /, '$1 ')).join(', ');
  return reasons || 'none';
}
