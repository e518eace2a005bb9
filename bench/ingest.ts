// bench/ingest: HTTP ingest events/s at batch sizes 1, 100, 1000 with 1 and 16 clients (events with
// ids, as the SDK sends them), next to raw chDB insert rates of the same events in the same run:
//  - the baseline of the ingest goal: a plain MergeTree of the same columns (plain types, no codecs,
//    no indexes, no views), batch 1,000;
//  - the engine's own schema (codecs, skip indexes, the rollup view), batch 1,000 and 10,000.
// Then the bytes per event of the whole data directory the 16 × 1,000 run left, after merges.
//   npm run bench:ingest            (EVENTS=200000 to change the volume; BATCHES=100,1000 to skip some)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { EVENT_COLUMNS, normalize } from '../src/event.js';
import { newEventId } from '../src/ids.js';
import { ChdbTransport } from '../src/storage/chdb-transport.js';
import { EventStore } from '../src/storage/event-store.js';
import { EVENTS_PARTITION_BY } from '../src/storage/schema.js';
import { machine, makeEvent, post, rng, spawnEngine } from './common.js';

const TOTAL = Number(process.env.EVENTS ?? 200_000);
const BATCHES = (process.env.BATCHES ?? '1,100,1000').split(',').map(Number);
const r = rng(42);
const events = Array.from({ length: TOTAL }, (_, i) => {
  const e = makeEvent(r, i);
  e.id = newEventId(e.timestamp as number);
  return e;
});

/** The goal's baseline table: the event columns with plain types, nothing else. */
const PLAIN_TABLE = `CREATE TABLE events (id String, timestamp Int64, received_at Int64, project_id String, event_type String,
  engine String, triggered_by String, flow_id String, session_id String, user_id String, trace_id String, span_id String,
  platform String, action String, status String, severity String, error_type String, message String, stack String,
  duration_ms Nullable(Float64), retries Nullable(UInt32), fingerprint String, alert UInt8, sampled UInt8,
  attr_keys Array(String), attr_values Array(String))
  ENGINE = MergeTree() PARTITION BY ${EVENTS_PARTITION_BY} ORDER BY (project_id, timestamp)`;

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

async function rawInsert(batchSize: number, layout: 'plain' | 'engine'): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-raw-'));
  const transport = new ChdbTransport(dir);
  if (layout === 'plain') await transport.exec(PLAIN_TABLE);
  else await new EventStore(transport).init();
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

/**
 * Bytes per stored event of a stopped engine's whole data directory, after every table is merged
 * (OPTIMIZE … FINAL) and the merged-away parts are deleted; and per table, from system.parts.
 */
async function bytesPerEvent(dataDir: string): Promise<{ total: number; events: number; tables: string }> {
  const store = new EventStore(new ChdbTransport(join(dataDir, 'events')));
  const tables = await store.query<{ name: string }>("SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree'");
  for (const t of tables) await store.transport.exec(`OPTIMIZE TABLE ${t.name} FINAL`);
  for (let i = 0; i < 120; i++) {
    const [o] = await store.query<{ n: number }>('SELECT count() AS n FROM system.parts WHERE database = currentDatabase() AND NOT active');
    if (Number(o.n) === 0) break;
    await new Promise((res) => setTimeout(res, 500));
  }
  const [c] = await store.query<{ n: number }>('SELECT count() AS n FROM events');
  const parts = await store.query<{ table: string; b: number }>(
    'SELECT table, sum(bytes_on_disk) AS b FROM system.parts WHERE database = currentDatabase() AND active GROUP BY table ORDER BY b DESC');
  await store.close();
  const n = Number(c.n);
  const du = Number(execFileSync('du', ['-sb', dataDir], { encoding: 'utf8' }).split('\t')[0]);
  return { total: du / n, events: n, tables: parts.map((p) => `${p.table} ${(Number(p.b) / n).toFixed(1)}`).join(', ') };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

console.log(`bench/ingest — ${machine()} — ${fmt(TOTAL)} events — load average ${load()}`);
const plain1000 = await rawInsert(1000, 'plain');
console.log(`raw chDB insert into a plain MergeTree of the same columns (no codecs, indexes or views), batch 1000: ${fmt(plain1000)} ev/s  <- the goal's baseline`);
const engine1000 = await rawInsert(1000, 'engine');
const engine10000 = await rawInsert(10_000, 'engine');
console.log(`raw chDB insert into the engine's schema (JSONCompactEachRow, pre-serialised): batch 1000 ${fmt(engine1000)} ev/s; batch 10000 ${fmt(engine10000)} ev/s`);

// the goal's run first, on an engine of its own, so its data directory can be measured alone
const first = mkdtempSync(join(tmpdir(), 'bench-http-'));
let engine = await spawnEngine(first, { MONITORING_LOG_LEVEL: 'warn' });
const headline = await httpIngest(engine.url, 1000, 16, TOTAL);
await engine.stop();
const size = await bytesPerEvent(first);
rmSync(first, { recursive: true, force: true });

const dir = mkdtempSync(join(tmpdir(), 'bench-http-'));
engine = await spawnEngine(dir, { MONITORING_LOG_LEVEL: 'warn' });
console.log('| batch | clients | events/s | request p50 ms | request p99 ms | vs plain MergeTree batch 1000 |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
for (const batch of BATCHES) {
  for (const clients of [1, 16]) {
    const total = batch === 1 ? Math.min(TOTAL, clients === 1 ? 3000 : 20_000) : TOTAL;
    const res = batch === 1000 && clients === 16 ? headline : await httpIngest(engine.url, batch, clients, total);
    console.log(`| ${batch} | ${clients} | ${fmt(res.rate)} | ${res.p50.toFixed(1)} | ${res.p99.toFixed(1)} | ${(res.rate / plain1000).toFixed(2)} |`);
  }
}
console.log(`ratio HTTP(16 clients, batch 1000) / raw plain MergeTree(batch 1000) = ${(headline.rate / plain1000).toFixed(2)}`);
console.log(`data directory after the 16 × 1000 run, merged: ${size.total.toFixed(1)} bytes/event over ${fmt(size.events)} events (parts: ${size.tables} B/event); load average ${load()}`);
await engine.stop();
rmSync(dir, { recursive: true, force: true });
