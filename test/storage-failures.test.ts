// Storage failures answered as what they are: a ClickHouse server frozen (SIGSTOP) or killed →
// queries 503 + Retry-After within the storage deadline, ingest answered at once (200 once durable in
// the write-ahead log, which absorbs the outage, or 503/507 with Retry-After, never a 500 or a
// hang), and /ready says so within 1 s; a full disk → 507
// + Retry-After, and /ready says the engine cannot write. Real parts only: Debian's
// clickhouse-server started by scripts/clickhouse-server.sh, a small tmpfs mounted for the disk.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, removeDir, startEngine, tempDir, type TestEngine } from './helpers.js';

const SCRIPT = join(import.meta.dirname, '..', 'scripts', 'clickhouse-server.sh');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const events = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ project_id: 'pf_fail', message: `${tag} ${i}` }));

/** The call, and how long it took. */
async function timed<T>(fn: () => Promise<T>): Promise<{ r: T; ms: number }> {
  const t0 = Date.now();
  const r = await fn();
  return { r, ms: Date.now() - t0 };
}

function expectRetryAfter(r: { headers: Headers }): void {
  const after = Number(r.headers.get('retry-after'));
  expect(Number.isInteger(after) && after >= 1, `Retry-After ${r.headers.get('retry-after')}`).toBe(true);
}

/** 200 (durable in the write-ahead log) or 503/507 with Retry-After: never a 500, never a hang. */
function expectAnsweredHonestly(r: { status: number; body: any; headers: Headers }): void {
  if (r.status === 200) return;
  expect([503, 507], JSON.stringify(r.body)).toContain(r.status);
  expectRetryAfter(r);
}

async function until(what: string, fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('a ClickHouse server that freezes, then dies', () => {
  let dir = '';
  let pid = 0;
  let t: TestEngine;

  beforeAll(async () => {
    dir = tempDir('pm-chfail-');
    const port = await freePort();
    const url = execFileSync('bash', [SCRIPT, 'start', join(dir, 'ch'), String(port), String(await freePort())], { encoding: 'utf8' }).trim();
    pid = Number(readFileSync(join(dir, 'ch', 'pid'), 'utf8'));
    t = await startEngine({
      MONITORING_CLICKHOUSE_URL: url, MONITORING_STORAGE_TIMEOUT_MS: '1500', MONITORING_QUERY_TIMEOUT_MS: '1500',
    }, join(dir, 'engine'));
  }, 90_000);

  afterAll(async () => {
    if (pid) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
    }
    await t?.close();
    execFileSync('bash', [SCRIPT, 'stop', join(dir, 'ch')]);
    removeDir(dir);
  });

  it('answers 200 while the server answers', async () => {
    expect((await call(t.url, 'POST', '/monitoring/logs', { body: events(3, 'before') })).status).toBe(200);
    expect((await call(t.url, 'GET', '/ready', { token: null })).status).toBe(200);
  });

  it('frozen (SIGSTOP): ingest answered at once (200 from the write-ahead log, or 503/507 + Retry-After); queries 503 + Retry-After within the deadline; /ready says not ready within 1 s', async () => {
    process.kill(pid, 'SIGSTOP');
    try {
      // ingest goes to the write-ahead log, which absorbs a storage outage: answered at once, never hung
      const ingest = await timed(() => call(t.url, 'POST', '/monitoring/logs', { body: events(2, 'frozen') }));
      expectAnsweredHonestly(ingest.r);
      expect(ingest.ms).toBeLessThan(4000);
      const query = await timed(() => call(t.url, 'GET', '/monitoring/logs?project_id=pf_fail'));
      expect(query.r.status).toBe(503);
      expectRetryAfter(query.r);
      expect(query.ms).toBeLessThan(4000);
      for (let i = 0; i < 3; i++) {
        const ready = await timed(() => call(t.url, 'GET', '/ready', { token: null }));
        expect(ready.ms).toBeLessThan(1000);
        expect(ready.r.status).toBe(503);
        expect(ready.r.body.can_write).toBe(false);
        expectRetryAfter(ready.r);
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await until('ready again', async () => (await call(t.url, 'GET', '/ready', { token: null })).status === 200);
    expect((await call(t.url, 'POST', '/monitoring/logs', { body: events(2, 'thawed') })).status).toBe(200);
  });

  it('killed: ingest answered at once (200 from the write-ahead log, or 503/507 + Retry-After); queries 503 + Retry-After; /ready says not ready within 1 s', async () => {
    process.kill(pid, 'SIGKILL');
    await until('the server to be gone', async () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    pid = 0;
    const ingest = await timed(() => call(t.url, 'POST', '/monitoring/logs', { body: events(2, 'dead') }));
    expectAnsweredHonestly(ingest.r);
    expect(ingest.ms).toBeLessThan(2000);
    const query = await call(t.url, 'GET', '/monitoring/logs?project_id=pf_fail');
    expect(query.status).toBe(503);
    expectRetryAfter(query);
    const ready = await timed(() => call(t.url, 'GET', '/ready', { token: null }));
    expect(ready.ms).toBeLessThan(1000);
    expect(ready.r.status).toBe(503);
  });
});

/** chDB's threads may hold files a moment after close: retry, then detach lazily (freed once unused). */
function unmount(dir: string): void {
  for (let i = 0; i < 20; i++) {
    try {
      execFileSync('umount', [dir], { stdio: 'ignore' });
      return;
    } catch {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  execFileSync('umount', ['-l', dir]);
}

describe('a full disk', () => {
  const mnt = tempDir('pm-diskfull-');
  let mounted = false;
  let t: TestEngine;
  const filler = join(mnt, 'filler');

  beforeAll(async () => {
    // a real small filesystem (we run as root); the engine's data dir lives on it
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', mnt]);
    mounted = true;
    mkdirSync(join(mnt, 'data'));
    t = await startEngine({ MONITORING_MIN_FREE_DISK_MB: '2' }, join(mnt, 'data'));
  }, 60_000);

  afterAll(async () => {
    rmSync(filler, { force: true });
    await t?.close();
    if (mounted) unmount(mnt);
    removeDir(mnt);
  });

  it('ingest answers 507 + Retry-After and /ready says it cannot write, then recovers when space returns', async () => {
    expect((await call(t.url, 'POST', '/monitoring/logs', { body: events(5, 'roomy') })).status).toBe(200);
    expect((await call(t.url, 'GET', '/ready', { token: null })).status).toBe(200);
    // fill the disk to the last byte
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=200'], { stdio: 'ignore' });
    } catch {
      // "No space left on device": that is the point
    }
    expect(existsSync(filler)).toBe(true);
    const ingest = await call(t.url, 'POST', '/monitoring/logs', { body: events(200, 'full') });
    expect(ingest.status, JSON.stringify(ingest.body)).toBe(507);
    expect(ingest.body.error.code).toBe('insufficient_storage');
    expectRetryAfter(ingest);
    const ready = await timed(() => call(t.url, 'GET', '/ready', { token: null }));
    expect(ready.ms).toBeLessThan(1000);
    expect(ready.r.status).toBe(503);
    expect(ready.r.body).toMatchObject({ can_write: false, error: { code: 'insufficient_storage' } });
    rmSync(filler);
    writeFileSync(join(mnt, 'small'), 'x');
    expect((await call(t.url, 'GET', '/ready', { token: null })).status).toBe(200);
    const again = await call(t.url, 'POST', '/monitoring/logs', { body: events(5, 'roomy again') });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
  });
});
