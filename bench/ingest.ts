// bench/ingest: HTTP ingest events/s at batch sizes 1, 100, 1000 with 1, 16 and 50 clients, next to
// the raw baselines measured in the same run: chDB inserts of the same events (the engine's schema,
// and a plain MergeTree of the same columns without lookup tables) and the raw fdatasync rate of the
// disk the write-ahead log is on. "acked" is when the answers came (the events are in the log);
// "stored" is when the loader had moved all of them into storage.
//   npm run bench:ingest            (EVENTS=200000 to change the volume)
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EVENT_COLUMNS, normalize } from '../src/event.js';
import { ChdbTransport } from '../src/storage/chdb-transport.js';
import { EventStore } from '../src/storage/event-store.js';
import { get, machine, makeEvent, post, rng, spawnEngine } from './common.js';

const TOTAL = Number(process.env.EVENTS ?? 200_000);
const r = rng(42);
const events = Array.from({ length: TOTAL }, (_, i) => makeEvent(r, i));

function compactRows(batch: Record<string, unknown>[]): Buffer {
  const now = Date.now();
  const lines = batch.map((e) => {
    const n = normalize(e, now);
    if (!n.ok) throw new Error('bad bench event');
    const row = n.row as unknown as Record<string, unknown>;
    return JSON.stringify(EVENT_COLUMNS.map((c) => row[c]));
  });
  return Buffer.from(lines.join('\n'));
}

/** Into the engine's schema, or (plain) into a MergeTree of the same columns without lookup tables. */
async function rawInsert(batchSize: number, plain = false): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-raw-'));
  const transport = new ChdbTransport(dir);
  const store = new EventStore(transport);
  await store.init();
  if (plain) await transport.exec('CREATE TABLE plain_events AS events ENGINE = MergeTree ORDER BY (project_id, timestamp)');
  const payloads: Buffer[] = [];
  for (let i = 0; i < TOTAL; i += batchSize) payloads.push(compactRows(events.slice(i, i + batchSize)));
  const t0 = performance.now();
  for (const p of payloads) await transport.insertCompact(plain ? 'plain_events' : 'events', EVENT_COLUMNS, p);
  const s = (performance.now() - t0) / 1000;
  await transport.close();
  rmSync(dir, { recursive: true, force: true });
  return TOTAL / s;
}

/** Sequential 512-byte appends, each followed by fdatasync, for a second: the disk's own floor. */
function rawFdatasync(dir: string): number {
  const fd = openSync(join(dir, 'fdatasync-probe'), 'w');
  const buf = Buffer.alloc(512, 7);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 1000) {
    writeSync(fd, buf);
    fdatasyncSync(fd);
    n++;
  }
  const rate = n / ((performance.now() - t0) / 1000);
  closeSync(fd);
  return rate;
}

/** Waits until the engine's loader has moved everything acknowledged into storage. */
async function stored(url: string): Promise<void> {
  for (;;) {
    const m = await get(url, '/monitoring/load?window=10');
    if (m.body?.ingest?.unloaded_bytes === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

let offset = 0;
let refusals = 0;
async function httpIngest(url: string, batchSize: number, clients: number, total: number): Promise<{ rate: number; storedRate: number; p50: number; p99: number }> {
  const bodies: string[] = [];
  // fresh events each run (ids differ), so no run is answered as a resend of another
  const base = offset;
  offset += total;
  for (let i = 0; i < total; i += batchSize) {
    const b = events.slice(i, i + batchSize).map((e) => ({ ...e, id: `${e.id}-${base}` }));
    bodies.push(batchSize === 1 ? JSON.stringify(b[0]) : JSON.stringify(b));
  }
  let next = 0;
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < bodies.length) {
      const body = bodies[next++];
      const s = performance.now();
      let status = await post(url, '/monitoring/logs', body);
      // refused past capacity: wait as told (Retry-After is 1 s; a client may retry sooner) and resend
      while (status === 503 || status === 429) {
        refusals++;
        await new Promise((r) => setTimeout(r, 100));
        status = await post(url, '/monitoring/logs', body);
      }
      lat.push(performance.now() - s);
      if (status !== 200) throw new Error(`ingest answered ${status}`);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  await stored(url);
  const storedSecs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { rate: total / secs, storedRate: total / storedSecs, p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.floor(lat.length * 0.99)] };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

console.log(`bench/ingest — ${machine()} — ${fmt(TOTAL)} events`);
const raw1000 = await rawInsert(1000);
const raw10000 = await rawInsert(10_000);
const plain1000 = await rawInsert(1000, true);
console.log(`raw chDB insert (JSONCompactEachRow, pre-serialised): engine schema batch 1000 ${fmt(raw1000)} ev/s, batch 10000 ${fmt(raw10000)} ev/s; plain MergeTree batch 1000 ${fmt(plain1000)} ev/s`);

const dir = mkdtempSync(join(tmpdir(), 'bench-http-'));
const fsyncRate = rawFdatasync(dir);
console.log(`raw fdatasync of 512 B on the log's disk: ${fmt(fsyncRate)} /s`);
const engine = await spawnEngine(dir, { MONITORING_LOG_LEVEL: 'warn' });
console.log('| batch | clients | acked events/s | stored events/s | request p50 ms | request p99 ms | acked vs plain MergeTree batch 1000 |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
let ratio = 0;
let single = 0;
let fifty = 0;
for (const [batch, clients] of [[1, 1], [1, 16], [1, 50], [100, 1], [100, 16], [1000, 1], [1000, 16]]) {
  const total = batch === 1 ? Math.min(TOTAL, clients === 1 ? 3000 : 20_000) : TOTAL;
  const res = await httpIngest(engine.url, batch, clients, total);
  const rel = res.rate / plain1000;
  if (batch === 1000 && clients === 16) ratio = rel;
  if (batch === 1 && clients === 1) single = res.rate;
  if (batch === 1 && clients === 50) fifty = res.rate;
  const refused = refusals;
  refusals = 0;
  console.log(`| ${batch} | ${clients} | ${fmt(res.rate)}${refused ? ` (${refused} refused, resent)` : ''} | ${fmt(res.storedRate)} | ${res.p50.toFixed(1)} | ${res.p99.toFixed(1)} | ${rel.toFixed(2)} |`);
}
console.log(`HTTP(16 clients, batch 1000) / plain MergeTree(batch 1000) = ${ratio.toFixed(2)} (goal ≥ 1.0)`);
console.log(`one client, one event per request: ${fmt(single)} ev/s = ${(single / fsyncRate).toFixed(2)} × raw fdatasync (goal ≥ 0.1); 50 such clients: ${fmt(fifty)} ev/s (goal ≥ 5,000)`);
await engine.stop();
rmSync(dir, { recursive: true, force: true });
