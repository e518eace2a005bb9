// The write-ahead log under kill -9: at random moments and at exact points (mid-write, between the
// write and its fdatasync, between a storage insert and its checkpoint, between the alert rules and
// theirs). Every acknowledged id is stored exactly once, a torn tail is cut and reported, and the
// engine always starts again.
import { afterAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { call, drained, exited, storedIdCounts, removeDir, spawnEngine, tempDir } from './helpers.js';

const dirs: string[] = [];
const procs: ChildProcess[] = [];
afterAll(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const d of dirs) removeDir(d);
});


/** 20 by default (each start of the engine costs 1.5–3 s here); WAL_CRASH_ITERATIONS=200 for a soak. */
const ITERATIONS = Number(process.env.WAL_CRASH_ITERATIONS ?? 20);
const POINTS = ['wal-torn-write', 'wal-before-fsync', 'wal-after-fsync', 'loader-after-insert', 'observer-after-observe', 'random'] as const;

describe('kill -9 during ingest', () => {
  it(`stores every acknowledged id exactly once over ${ITERATIONS} crashes (random moments, mid-write, mid-fsync, mid-load)`, async () => {
    const dir = tempDir();
    dirs.push(dir);
    const acked = new Set<string>();
    const crashedAt: string[] = [];
    let n = 0;
    for (let iter = 0; iter < ITERATIONS; iter++) {
      const point = POINTS[iter % POINTS.length];
      const env: Record<string, string> = { MONITORING_FLUSH_INTERVAL_MS: '20', MONITORING_LOG_LEVEL: 'warn' };
      if (point !== 'random') env.MONITORING_FAILPOINT = `${point}:${1 + Math.floor(Math.random() * 4)}`;
      const t0 = Date.now();
      const e = await spawnEngine(dir, env);
      const t1 = Date.now();
      procs.push(e.proc);
      let alive = true;
      void exited(e.proc).then(() => (alive = false));
      if (point === 'random') setTimeout(() => e.proc.kill('SIGKILL'), 50 + Math.random() * 400);
      // four clients send batches with their own ids; some batches resend ids acknowledged before
      const old = [...acked];
      await Promise.all(Array.from({ length: 4 }, async (_, c) => {
        while (alive) {
          const events = Array.from({ length: 50 }, () => ({ project_id: 'pf_crash', id: `i${iter}-c${c}-${n++}`, message: 'x' }));
          if (old.length && c === 0) events.push({ project_id: 'pf_crash', id: old[Math.floor(Math.random() * old.length)], message: 'resent' });
          const r = await call(e.url, 'POST', '/monitoring/logs', { body: events }).catch(() => undefined);
          if (r?.status === 200) for (const id of r.body.ids) acked.add(id);
        }
      }));
      // a failpoint that never fired (it should) is a test failure, not a silent pass
      let forced = false;
      const guard = setTimeout(() => {
        forced = true;
        e.proc.kill('SIGKILL');
      }, 5000);
      await exited(e.proc);
      clearTimeout(guard);
      expect(e.proc.signalCode).toBe('SIGKILL');
      expect(forced, `failpoint ${point} did not fire`).toBe(false);
      crashedAt.push(point);
      if (process.env.WAL_TEST_TIMING) console.log(point, 'start', t1 - t0, 'ms; ran', Date.now() - t1, 'ms');
    }
    expect(crashedAt).toHaveLength(ITERATIONS);
    const e = await spawnEngine(dir);
    procs.push(e.proc);
    await drained(e.url);
    const stored = await storedIdCounts(e.url, 'pf_crash');
    const missing = [...acked].filter((id) => !stored.has(id));
    const twice = [...stored].filter(([, c]) => c > 1).map(([id]) => id);
    expect(missing).toEqual([]);
    expect(twice).toEqual([]);
    expect(acked.size).toBeGreaterThan(1000);
    e.proc.kill('SIGTERM');
    await exited(e.proc);
    expect(e.proc.exitCode).toBe(0);
  }, 120_000 + ITERATIONS * 8000);

  it('cuts a torn or corrupted tail, reports it and starts', async () => {
    const dir = tempDir();
    dirs.push(dir);
    // crash in the middle of writing a group: half of it reaches the file
    const a = await spawnEngine(dir, { MONITORING_FAILPOINT: 'wal-torn-write:3' });
    procs.push(a.proc);
    const acked: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(a.url, 'POST', '/monitoring/logs', { body: [{ project_id: 'pf_torn', id: `t${i}`, message: 'x'.repeat(2000) }] }).catch(() => undefined);
      if (r?.status === 200) acked.push(...r.body.ids);
    }
    await exited(a.proc);
    expect(a.proc.signalCode).toBe('SIGKILL');
    expect(acked).toEqual(['t0', 't1']);
    // and a flipped-bit tail on top: garbage after the last good record of another segment
    const wal = join(dir, 'wal');
    const segs = readdirSync(wal).filter((f) => f.endsWith('.wal')).sort();
    appendFileSync(join(wal, segs[0]), Buffer.from('\x20\x00\x00\x00garbage that is not a record'));
    const b = await spawnEngine(dir);
    procs.push(b.proc);
    expect(b.output()).toMatch(/torn or corrupted tail was cut/);
    const m = await call(b.url, 'GET', '/metrics');
    expect(m.body).toMatch(/^puraify_monitoring_wal_repairs_total [12]$/m);
    await drained(b.url);
    const stored = await storedIdCounts(b.url, 'pf_torn');
    expect([...stored.keys()].sort()).toEqual(['t0', 't1']);
    // it takes new events at once
    const r = await call(b.url, 'POST', '/monitoring/logs', { body: { project_id: 'pf_torn', id: 't-after' } });
    expect(r.status).toBe(200);
    expect((await storedIdCounts(b.url, 'pf_torn')).get('t-after')).toBe(1);
    b.proc.kill('SIGKILL');
  }, 60_000);
});
