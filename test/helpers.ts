// Test helpers: a real engine on a free loopback port with its own data dir, and small HTTP calls.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { loadConfig, type Config } from '../src/config.js';
import { createEngine, type Engine } from '../src/engine.js';
import { afterAll, beforeAll, expect } from 'vitest';
import { controlEnv } from './control-db.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

/**
 * Latency-based shedding off: the suite shares two cores with other work, and a test's request
 * refused because the machine is slow is not a defect. test/wal-overload.test.ts turns it on.
 */
const NO_SHEDDING = { MONITORING_OVERLOAD_LAG_MS: '0' };

export interface TestEngine {
  url: string;
  token: string;
  engine: Engine;
  dataDir: string;
  close(): Promise<void>;
}

export function tempDir(prefix = 'pm-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startEngine(env: Record<string, string> = {}, dataDir = tempDir()): Promise<TestEngine> {
  const config: Config = loadConfig({}, {
    MONITORING_DATA_DIR: dataDir,
    MONITORING_PORT: '0',
    MONITORING_ADMIN_TOKEN: ADMIN_TOKEN,
    MONITORING_LOG_LEVEL: 'silent',
    MONITORING_ALLOW_PRIVATE_WEBHOOKS: 'true',
    ...NO_SHEDDING,
    // tests write events at fixed dates long past; retention is tested where it is meant (src/retention)
    MONITORING_RETENTION_DAYS: '36500',
    ...(await controlEnv(dataDir)),
    ...env,
  });
  const engine = await createEngine(config);
  const url = await engine.app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url, token: ADMIN_TOKEN, engine, dataDir,
    async close() {
      // fetch may keep an idle keep-alive socket open; it would hold close() until it times out
      engine.app.server.closeAllConnections();
      await engine.close();
    },
  };
}

export function removeDir(dir: string): void {
  // retried: a storage engine stopping may still finish a file in it (ENOTEMPTY once, in a full run)
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
}

export interface Res<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function call<T = any>(
  base: string, method: string, path: string,
  opts: { token?: string | null; body?: unknown; raw?: string | Buffer; contentType?: string; headers?: Record<string, string> } = {},
): Promise<Res<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? ADMIN_TOKEN}`;
  let body: string | Buffer | undefined;
  if (opts.raw !== undefined) {
    body = opts.raw;
    headers['content-type'] = opts.contentType ?? 'application/json';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = opts.contentType ?? 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.set(k, String(v));
  return u.toString();
}

/** The engine as its own process (for kill -9 and restart tests); runs the built CLI. */
export async function spawnEngine(dataDir: string, env: Record<string, string> = {}): Promise<{ url: string; proc: ChildProcess; output: () => string }> {
  const control = await controlEnv(dataDir);
  const proc = spawn(process.execPath, [join(import.meta.dirname, '..', 'dist', 'src', 'cli.js'), 'serve'], {
    env: {
      ...process.env, MONITORING_DATA_DIR: dataDir, MONITORING_PORT: '0', MONITORING_ADMIN_TOKEN: ADMIN_TOKEN,
      MONITORING_LOG_LEVEL: 'info', MONITORING_RETENTION_DAYS: '36500', ...NO_SHEDDING, ...control, ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`engine did not start:\n${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`engine exited with ${code}:\n${out}`)));
  });
  return { url, proc, output: () => out };
}

/** A TCP port free on loopback right now (for servers a test starts itself). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until fn returns a truthy value, or fails with `what` after the deadline. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(40);
  }
}

/** Reads SSE `log` events from a live tail until `n` arrive or the deadline passes. */
export async function tailEvents(url: string, path: string, n: number, whileOpen: () => Promise<void>, token = ADMIN_TOKEN): Promise<any[]> {
  const ac = new AbortController();
  const res = await fetch(url + path, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const reader = res.body!.getReader();
  const got: any[] = [];
  let buf = '';
  const deadline = setTimeout(() => ac.abort(), 5000);
  const reading = (async () => {
    try {
      while (got.length < n) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += new TextDecoder().decode(value);
        let i;
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (block.includes('event: log')) got.push(JSON.parse(block.split('\n').find((l) => l.startsWith('data: '))!.slice(6)));
        }
      }
    } catch {
      // aborted
    }
  })();
  await whileOpen();
  await reading;
  clearTimeout(deadline);
  ac.abort();
  return got;
}

/** Every stored id of a project with how often it is stored (pages through the query API). */
export async function storedIdCounts(url: string, project: string): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  let cursor: string | undefined;
  do {
    const r = await call(url, 'GET', `/monitoring/logs?project_id=${project}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    if (r.status !== 200) throw new Error(`GET /monitoring/logs answered ${r.status}: ${JSON.stringify(r.body)}`);
    for (const l of r.body.logs) seen.set(l.id, (seen.get(l.id) ?? 0) + 1);
    cursor = r.body.next_cursor ?? undefined;
  } while (cursor);
  return seen;
}

/** One engine for a test file (the protocol route tests): started before its tests, closed after. */
export interface FileEngine {
  readonly url: string;
  readonly token: string;
  readonly engine: Engine;
  /** GET /monitoring/logs with these filters, oldest first, up to 1,000: what was stored. */
  logs(params: Record<string, string | number | undefined>): Promise<any[]>;
  /** POST /monitoring/keys: a key bound to `project` (null: every project) → the created key (token, id, dsn). */
  key(project: string | null, scopes?: string[]): Promise<any>;
}

export function useEngine(env: Record<string, string> = {}): FileEngine {
  let t: TestEngine | undefined;
  beforeAll(async () => {
    t = await startEngine(env);
  });
  afterAll(async () => {
    await t?.close();
  });
  const started = (): TestEngine => {
    if (!t) throw new Error('useEngine: the engine is used outside a test (it starts in beforeAll)');
    return t;
  };
  return {
    get url() { return started().url; },
    get token() { return started().token; },
    get engine() { return started().engine; },
    async logs(params) {
      const r = await call(started().url, 'GET', `/monitoring/logs?${qs({ order: 'asc', limit: 1000, ...params })}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.logs as any[];
    },
    async key(project, scopes = ['ingest']) {
      const r = await call(started().url, 'POST', '/monitoring/keys', { body: { name: `key-${project ?? 'all'}-${scopes.join('-')}`, scopes, project_id: project } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body;
    },
  };
}

/** Resolves once the process has exited (at once if it has). */
export function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

/** Waits until the engine has loaded and observed its whole write-ahead log. */
export async function drained(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const m = await call(url, 'GET', '/metrics');
    if (/^puraify_monitoring_wal_unloaded_bytes 0$/m.test(m.body) && /^puraify_monitoring_wal_unobserved_bytes 0$/m.test(m.body)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the log was not loaded in 10 s');
}
