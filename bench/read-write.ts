// bench/read-write: does a heavy query hold up the loader's inserts? One embedded chDB store of
// 300,000 bench events; inserts of 5,000 rows timed alone, then while heavy queries run — two
// queries on all threads, then one on a single thread (a core left free: what remains is waiting,
// not CPU). The duplicate check the loader runs before each insert is timed the same way.
//   node dist/bench/read-write.js
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { normalize, type EventRow } from '../src/event.js';
import { newEventId } from '../src/ids.js';
import { ChdbTransport } from '../src/storage/chdb-transport.js';
import { EventStore } from '../src/storage/event-store.js';
import { machine, makeEvent, rng } from './common.js';

const r = rng(7);
const now = Date.now();
let k = 0;
function batch(n: number): EventRow[] {
  return Array.from({ length: n }, () => {
    const e = makeEvent(r, k++);
    e.id = newEventId(e.timestamp as number);
    const x = normalize(e, now);
    if (!x.ok) throw new Error('bad bench event');
    return x.row;
  });
}
const load = () => loadavg()[0].toFixed(1);
const dir = mkdtempSync(join(tmpdir(), 'bench-rw-'));
const store = new EventStore(new ChdbTransport(dir));
await store.init();
for (let i = 0; i < 30; i++) await store.insert(batch(10_000));
console.log(`bench/read-write — ${machine()} — 300,000 events — load average ${load()}`);

async function timeInserts(n: number): Promise<{ inserts: number[]; checks: number[] }> {
  const inserts: number[] = [];
  const checks: number[] = [];
  for (let i = 0; i < n; i++) {
    const b = batch(5000);
    let s = performance.now();
    await store.existingIds(b);
    checks.push(performance.now() - s);
    s = performance.now();
    await store.insert(b);
    inserts.push(performance.now() - s);
    await new Promise((res) => setTimeout(res, 100));
  }
  return { inserts: inserts.sort((a, b) => a - b), checks: checks.sort((a, b) => a - b) };
}
const fmt = (xs: number[]) => `median ${xs[Math.floor(xs.length / 2)].toFixed(0)} / max ${xs[xs.length - 1].toFixed(0)} ms`;

for (const [readers, threads] of [[2, 0], [1, 1]] as const) {
  const heavy = `SELECT count() AS n FROM (SELECT uniqExact(id) AS u FROM events AS e, numbers(6) AS n GROUP BY n.number % 3)${threads ? ` SETTINGS max_threads = ${threads}` : ''}`;
  let t = performance.now();
  await store.query(heavy);
  const alone = performance.now() - t;
  const quiet = await timeInserts(10);
  let stop = false;
  let q = 0;
  const running = Array.from({ length: readers }, async () => {
    while (!stop) {
      await store.query(heavy);
      q++;
    }
  });
  await new Promise((res) => setTimeout(res, 300));
  const busy = await timeInserts(10);
  stop = true;
  await Promise.all(running);
  console.log(`${readers} heavy quer${readers > 1 ? 'ies' : 'y'} (${threads ? `max_threads ${threads}` : 'all threads'}, ${alone.toFixed(0)} ms alone): insert of 5,000 rows alone ${fmt(quiet.inserts)}; while they run ${fmt(busy.inserts)}; duplicate check of 5,000 ids alone ${fmt(quiet.checks)}; while they run ${fmt(busy.checks)} (${q} queries); load average ${load()}`);
}
await store.close();
rmSync(dir, { recursive: true, force: true });
