// bench/ingest: HTTP ingest events/s at batch sizes 1, 100, 1000 with 1 and 16 clients, next to the
// raw chDB insert rate of the same events measured in the same run.
//   npm run bench:ingest            (EVENTS=200000 to change the volume)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EVENT_COLUMNS, normalize } from '../src/event.js';
import { ChdbTransport } from '../src/storage/chdb-transport.js';
import { EventStore } from '../src/storage/event-store.js';
import { machine, makeEvent, post, rng, spawnEngine } from './common.js';

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

async function rawInsert(batchSize: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-raw-'));
  const transport = new ChdbTransport(dir);
  const store = new EventStore(transport);
  await store.init();
  const payloads: Buffer[] = [];
  for (let i = 0; i < TOTAL; i += batchSize) payloads.push(compactRows(events.slice(i, i + batchSize)));
  const t0 = performance.now();
  for (const p of payloads) await transport.insertCompact('events', EVENT_COLUMNS, p);
  const s = (performance.now() - t0) / 1000;
  await transport.close();
  rmSync(dir, { recursive: true, force: true });
  return TOTAL / s;
}

async function httpIngest(url: string, batchSize: number, clients: number, total: number): Promise<{ rate: number; p50: number; p99: number }> {
  const bodies: string[] = [];
  for (let i = 0; i < total; i += batchSize) {
    const b = events.slice(i, i + batchSize);
    bodies.push(batchSize === 1 ? JSON.stringify(b[0]) : JSON.stringify(b));
  }
  let next = 0;
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < bodies.length) {
      const body = bodies[next++];
      const s = performance.now();
      const status = await post(url, '/monitoring/logs', body);
      lat.push(performance.now() - s);
      if (status !== 200) throw new Error(`ingest answered ${status}`);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { rate: total / secs, p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.floor(lat.length * 0.99)] };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

console.log(`bench/ingest — ${machine()} — ${fmt(TOTAL)} events`);
const raw1000 = await rawInsert(1000);
const raw10000 = await rawInsert(10_000);
console.log(`raw chDB insert (JSONCompactEachRow, pre-serialised): batch 1000 ${fmt(raw1000)} ev/s; batch 10000 ${fmt(raw10000)} ev/s`);

const dir = mkdtempSync(join(tmpdir(), 'bench-http-'));
const engine = await spawnEngine(dir, { MONITORING_LOG_LEVEL: 'warn' });
console.log('| batch | clients | events/s | request p50 ms | request p99 ms | vs raw batch 1000 |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
let ratio = 0;
for (const batch of [1, 100, 1000]) {
  for (const clients of [1, 16]) {
    const total = batch === 1 ? Math.min(TOTAL, clients === 1 ? 3000 : 20_000) : TOTAL;
    const res = await httpIngest(engine.url, batch, clients, total);
    const rel = res.rate / raw1000;
    if (batch === 1000 && clients === 16) ratio = rel;
    console.log(`| ${batch} | ${clients} | ${fmt(res.rate)} | ${res.p50.toFixed(1)} | ${res.p99.toFixed(1)} | ${rel.toFixed(2)} |`);
  }
}
console.log(`ratio HTTP(16 clients, batch 1000) / raw(batch 1000) = ${ratio.toFixed(2)}`);
await engine.stop();
rmSync(dir, { recursive: true, force: true });
