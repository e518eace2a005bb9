// Acknowledged means durable: an event that got a 200 survives kill -9 and a restart.
import { afterAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { call, drained, exited, removeDir, spawnEngine, tempDir } from './helpers.js';

const dirs: string[] = [];
const procs: ChildProcess[] = [];
afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  for (const d of dirs) removeDir(d);
});


describe('durability', () => {
  it('keeps every acknowledged event after kill -9 right after the 200', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const a = await spawnEngine(dir);
    procs.push(a.proc);
    // several concurrent clients; the process is killed the moment the last 200 arrives
    const acked: string[] = [];
    await Promise.all(Array.from({ length: 8 }, async (_, c) => {
      for (let b = 0; b < 5; b++) {
        const events = Array.from({ length: 200 }, (_, i) => ({ project_id: 'pf_kill', message: `c${c} b${b} e${i}`, id: `c${c}-b${b}-e${i}` }));
        const r = await call(a.url, 'POST', '/monitoring/logs', { body: events });
        expect(r.status).toBe(200);
        acked.push(...r.body.ids);
      }
    }));
    a.proc.kill('SIGKILL');
    await exited(a.proc);
    expect(acked).toHaveLength(8000);

    const b = await spawnEngine(dir);
    procs.push(b.proc);
    // what is asserted is durability, not how soon the replay is loaded (reads wait only 1 s for it)
    await drained(b.url);
    const found = new Set<string>();
    let cursor: string | undefined;
    do {
      const r = await call(b.url, 'GET', `/monitoring/logs?project_id=pf_kill&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      for (const l of r.body.logs) found.add(l.id);
      cursor = r.body.next_cursor ?? undefined;
    } while (cursor);
    const missing = acked.filter((id) => !found.has(id));
    expect(missing).toEqual([]);
    expect(found.size).toBe(8000);
    // and a resend after the crash is not stored a second time (the loader drops it)
    const again = await call(b.url, 'POST', '/monitoring/logs', { body: { project_id: 'pf_kill', id: 'c0-b0-e0', message: 'again' } });
    expect(again.status).toBe(200);
    const same = await call(b.url, 'GET', '/monitoring/logs?project_id=pf_kill&limit=10&q=again');
    expect(same.body.logs).toEqual([]);
    const stored = await call(b.url, 'GET', '/monitoring/logs?project_id=pf_kill&limit=1&q=c0%20b0%20e0');
    expect(stored.body.logs.map((l: any) => l.id)).toEqual(['c0-b0-e0']);
    b.proc.kill('SIGTERM');
    await exited(b.proc);
    expect(b.proc.exitCode).toBe(0);
  });

  it('keeps events across a clean restart and keeps the generated admin token', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const a = await spawnEngine(dir, { MONITORING_ADMIN_TOKEN: '' });
    procs.push(a.proc);
    const { readFileSync } = await import('node:fs');
    const token = readFileSync(`${dir}/admin-token`, 'utf8').trim();
    expect(token).toMatch(/^pm_admin_/);
    const r = await call(a.url, 'POST', '/monitoring/logs', { token, body: { project_id: 'pf_restart', message: 'before restart' } });
    expect(r.status).toBe(200);
    a.proc.kill('SIGTERM');
    await exited(a.proc);
    const b = await spawnEngine(dir, { MONITORING_ADMIN_TOKEN: '' });
    procs.push(b.proc);
    const q = await call(b.url, 'GET', '/monitoring/logs?project_id=pf_restart', { token });
    expect(q.status).toBe(200);
    expect(q.body.logs.map((l: any) => l.message)).toEqual(['before restart']);
    b.proc.kill('SIGKILL');
  });

  it('stops at start with a clear message on a bad setting', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const err = await spawnEngine(dir, { MONITORING_PORT: 'eighty' }).then(() => '', (e: Error) => e.message);
    expect(err).toContain('MONITORING_PORT="eighty": must be a whole number from 0 to 65535');
  });
});
