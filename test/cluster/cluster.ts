// The cluster the scale-out tests drive: scripts/cluster.sh up/down, and the few operations a test
// does to it (kill an engine node and start it again, stop and start a ClickHouse server, ZooKeeper).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const CLUSTER_SH = join(ROOT, 'scripts', 'cluster.sh');
const CH_SH = join(ROOT, 'scripts', 'clickhouse-server.sh');

export interface Cluster {
  dir: string;
  nodes: string[];
  admin_token: string;
  clickhouse: string[];
  postgres: string;
  cluster: string;
  database: string;
  pids: { nodes: number[]; clickhouse: number[]; zookeeper: number };
  clickhouse_dirs: string[];
  clickhouse_tcp_ports: number[];
  node_dirs: string[];
  zookeeper_dir: string;
}

export function clusterUp(dir: string, env: Record<string, string> = {}): Cluster {
  execFileSync('bash', [CLUSTER_SH, 'up', dir], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
  return { dir, ...JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) };
}

export function clusterDown(dir: string): void {
  execFileSync('bash', [CLUSTER_SH, 'down', dir], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 120_000 });
}

/** SIGKILL an engine node (index 0|1). */
export function killNode(c: Cluster, i: number): void {
  process.kill(c.pids.nodes[i], 'SIGKILL');
}

/** Starts engine node i again (same port and settings); its new pid goes to c.pids.nodes[i]. */
export function restartNode(c: Cluster, i: number, env: Record<string, string> = {}): void {
  const out = execFileSync('bash', [CLUSTER_SH, 'node', c.dir, String(i + 1)], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 180_000 });
  c.pids.nodes[i] = Number(out.trim().split('\n').pop());
}

export function stopClickHouse(c: Cluster, i: number): void {
  execFileSync('bash', [CH_SH, 'stop', c.clickhouse_dirs[i]], { timeout: 60_000 });
}

export function startClickHouse(c: Cluster, i: number): void {
  const port = new URL(c.clickhouse[i]).port;
  execFileSync('bash', [CH_SH, 'start', c.clickhouse_dirs[i], port, String(c.clickhouse_tcp_ports[i])], { timeout: 120_000 });
  c.pids.clickhouse[i] = Number(readFileSync(join(c.clickhouse_dirs[i], 'pid'), 'utf8'));
}

/** One SQL statement on ClickHouse server i (for checks the API does not offer: per-replica counts). */
export async function clickhouseSql(c: Cluster, i: number, sql: string): Promise<string> {
  // read as the nodes read: the first live replica of each shard (replication is asynchronous)
  const res = await fetch(`${c.clickhouse[i]}/?database=puraify&load_balancing=in_order`, { method: 'POST', body: sql });
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse ${i + 1}: ${text}`);
  return text.trim();
}

export interface Reply {
  status: number;
  body: any;
  headers: Headers;
}

/** One API call; a network error (node down) is status 0. */
export async function api(base: string, method: string, path: string, opts: { token: string; body?: unknown; timeoutMs?: number }): Promise<Reply> {
  const headers: Record<string, string> = { authorization: `Bearer ${opts.token}` };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await fetch(base + path, {
      method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    return { status: res.status, body, headers: res.headers };
  } catch (e) {
    return { status: 0, body: String(e), headers: new Headers() };
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value (not undefined) or `ms` pass; returns it, with the time taken. */
export async function within<T>(ms: number, check: () => Promise<T | undefined>, stepMs = 25): Promise<{ value: T | undefined; tookMs: number }> {
  const t0 = Date.now();
  for (;;) {
    const v = await check();
    if (v !== undefined) return { value: v, tookMs: Date.now() - t0 };
    if (Date.now() - t0 > ms) return { value: undefined, tookMs: Date.now() - t0 };
    await sleep(stepMs);
  }
}

export interface Tail {
  /** `log` events as they arrive, with when (Date.now()). */
  events: { at: number; event: any }[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens a live tail (SSE) and collects its `log` events until closed or ended by the server. */
export async function openTail(base: string, path: string, token: string): Promise<Tail> {
  const ac = new AbortController();
  const res = await fetch(base + path, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
  if (res.status !== 200) throw new Error(`tail ${path}: ${res.status} ${await res.text()}`);
  const events: Tail['events'] = [];
  const reader = res.body!.getReader();
  const ended = (async () => {
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += new TextDecoder().decode(value);
        let i;
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (block.includes('event: log')) events.push({ at: Date.now(), event: JSON.parse(block.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) });
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  return { events, ended, close: () => ac.abort() };
}
