// The embedded transport: bound queries run side by side (chDB's own binding ran every bound query
// of the process one at a time), statements longer than ClickHouse's default 256 KiB run, and a
// process out of memory ends instead of hanging in chDB's signal handler.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { removeDir, tempDir } from '../../test/helpers.js';
import { ChdbTransport, readSessions } from './chdb-transport.js';

describe('ChdbTransport', () => {
  let dir: string;
  let t: ChdbTransport;
  beforeAll(() => {
    dir = tempDir('pm-chdb-');
    t = new ChdbTransport(dir);
  });
  afterAll(async () => {
    await t.close();
    removeDir(dir);
  });

  /** Whether a statement tagged `tag` is seen running by a statement on `lane` while it runs. */
  async function runningBeside(tag: string, lane: 'read' | 'write'): Promise<boolean> {
    let done = false;
    const slow = t.query('SELECT sleep({s:Float64}) AS x, {tag:String} AS tag', { s: 2, tag }).finally(() => (done = true));
    // a transport that ran bound statements one at a time would answer each look only after the
    // slow one had finished, and never find it; the first looks may come before it has started
    let seen = false;
    while (!seen && !done) {
      const [r] = await t.query<{ n: number }>(
        "SELECT count() AS n FROM system.processes WHERE query LIKE {p:String} AND query NOT LIKE '%system.processes%'",
        { p: `%${tag}%` }, { lane });
      seen = Number(r.n) === 1;
    }
    await slow;
    return seen;
  }

  it('runs a bound read while another bound read runs', async () => {
    expect(await runningBeside('slow-read-1', 'read')).toBe(true);
  });

  it('runs the write path\'s bound queries while a bound read runs', async () => {
    expect(await runningBeside('slow-read-2', 'write')).toBe(true);
  });

  it('binds hostile values and runs statements past 256 KiB', async () => {
    const ids = Array.from({ length: 5000 }, (_, i) => `id-${i}-${'x'.repeat(100)}'\\`);
    const [r] = await t.query<{ n: number; s: string }>(
      'SELECT length({ids:Array(String)}) AS n, {s:String} AS s', { ids, s: "it's\n{p:String}" });
    expect(Number(r.n)).toBe(5000);
    expect(r.s).toBe("it's\n{p:String}");
  });

  it('leaves a thread of the libuv pool to the log\'s fsyncs', () => {
    expect(readSessions(4)).toBe(2);
    expect(readSessions(8)).toBe(4);
    expect(readSessions(2)).toBe(1);
  });
});

describe('a process with chDB that runs out of memory', () => {
  it('ends at once (V8 aborts; chDB\'s own SIGABRT handler would hold it for minutes)', async () => {
    const dir = tempDir('pm-chdb-oom-');
    // the built transport in a child given a small heap, which then allocates until V8 gives up
    const script = `
      const { ChdbTransport } = await import(${JSON.stringify(join(import.meta.dirname, '..', '..', 'dist', 'src', 'storage', 'chdb-transport.js'))});
      const t = new ChdbTransport(${JSON.stringify(dir)});
      await t.query('SELECT 1');
      const held = [];
      for (;;) held.push(new Array(1e5).fill(Math.random()));`;
    const child = spawn(process.execPath, ['--max-old-space-size=64', '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t0 = performance.now();
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    });
    removeDir(dir);
    expect(err).toMatch(/heap out of memory/);
    expect(exit.signal).toBe('SIGABRT');
    expect(performance.now() - t0).toBeLessThan(30_000);
  }, 70_000);
});
