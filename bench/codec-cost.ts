// bench/codec-cost: what the storage codecs cost at insert, and what they save, measured head to head.
// The same bench/ingest events (fingerprinted as the engine does, so the error rollup is filled) are
// inserted straight into chDB, into the engine's current schema and into the previous one (ZSTD(3)
// where the current has ZSTD(9)), alternating round by round so both see the same load on a shared
// machine; then each store is merged and its parts measured. Prints the median insert rate and CPU per
// layout, then the CPU of each codec alone (one column written again at ZSTD(3) and ZSTD(9)).
//   node dist/bench/codec-cost.js      (EVENTS=200000 ROUNDS=5 BATCH=10000)
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { EVENT_COLUMNS, normalize, type EventRow } from '../src/event.js';
import { newEventId } from '../src/ids.js';
import { fingerprintRow } from '../src/aggregator/processor.js';
import { ChdbTransport } from '../src/storage/chdb-transport.js';
import { ALL_FEATURES, schemaStatements } from '../src/storage/schema.js';
import { machine, makeEvent, rng } from './common.js';

const TOTAL = Number(process.env.EVENTS ?? 200_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const BATCH = Number(process.env.BATCH ?? 10_000);

/** The layout before the second storage pass (ZSTD(3) on message and the rollup's states), then each change alone. */
const previous = schemaStatements(ALL_FEATURES).map((s) => s.replaceAll('ZSTD(9)', 'ZSTD(3)'));
function changed(from: string[], f: (s: string) => string): string[] {
  const out = from.map(f);
  if (out.join() === from.join()) throw new Error('a layout change matched nothing');
  return out;
}
const rollup9 = changed(previous, (s) => (s.startsWith('CREATE TABLE IF NOT EXISTS error_rollup ') ? s.replaceAll('ZSTD(3)', 'ZSTD(9)') : s));
const LAYOUTS: Record<string, string[]> = {
  previous,
  'rollup ZSTD(9)': rollup9,
  'rollup + message ZSTD(9)': changed(rollup9, (s) => s.replace('message String CODEC(ZSTD(3))', 'message String CODEC(ZSTD(9))')),
};
const current = Object.entries(LAYOUTS).find(([, l]) => l.join() === schemaStatements(ALL_FEATURES).join())?.[0] ?? 'none of these';

const r = rng(42);
const now = Date.now();
const payloads: Buffer[] = [];
for (let i = 0; i < TOTAL; i += BATCH) {
  const lines: string[] = [];
  for (let j = i; j < Math.min(TOTAL, i + BATCH); j++) {
    const e = makeEvent(r, j);
    e.id = newEventId(e.timestamp as number);
    const n = normalize(e, now);
    if (!n.ok) throw new Error('bad bench event');
    const row = n.row as EventRow;
    fingerprintRow(row);
    lines.push(JSON.stringify(EVENT_COLUMNS.map((c) => (row as unknown as Record<string, unknown>)[c])));
  }
  payloads.push(Buffer.from(lines.join('\n')));
}

/** Inserts every payload into a fresh store of this layout; seconds taken, and B/event per table after merges. */
async function round(layout: string[], measure: boolean): Promise<{ secs: number; cpu: number; bytes: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-codec-'));
  const t = new ChdbTransport(dir);
  try {
    for (const s of layout) await t.exec(s);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (const p of payloads) await t.insertCompact('events', EVENT_COLUMNS, p);
    const secs = (performance.now() - t0) / 1000;
    // CPU of the whole process (chDB's threads included): less swayed than wall time by other work on the cores
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1e6;
    let bytes = '';
    if (measure) {
      for (const table of ['events', 'error_rollup']) await t.exec(`OPTIMIZE TABLE ${table} FINAL`);
      // whole parts (the merged parts are compact at this size: no per-column sizes)
      const parts = await t.query<{ table: string; b: number }>(
        `SELECT table, sum(bytes_on_disk) AS b FROM system.parts WHERE database = currentDatabase() AND active GROUP BY table ORDER BY table`);
      bytes = parts.map((p) => `${p.table} ${(Number(p.b) / TOTAL).toFixed(2)}`).join(', ') + ' B/event';
    }
    return { secs, cpu, bytes };
  } finally {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
console.log(`bench/codec-cost — ${machine()} — ${TOTAL.toLocaleString('en-US')} events, batch ${BATCH}, ${ROUNDS} rounds — the engine's schema is "${current}" — load average ${load()}`);
const rates: Record<string, number[]> = Object.fromEntries(Object.keys(LAYOUTS).map((k) => [k, []]));
const cpus: Record<string, number[]> = Object.fromEntries(Object.keys(LAYOUTS).map((k) => [k, []]));
for (let i = 0; i < ROUNDS; i++) {
  // alternate the order, so no layout always runs right after another's background merges
  const order = i % 2 ? Object.keys(LAYOUTS).reverse() : Object.keys(LAYOUTS);
  for (const name of order) {
    const res = await round(LAYOUTS[name], i === 0);
    rates[name].push(TOTAL / res.secs);
    cpus[name].push((res.cpu / TOTAL) * 1e6);
    if (res.bytes) console.log(`${name}: ${res.bytes}`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [name, rs] of Object.entries(rates)) {
  console.log(`${name}: median ${Math.round(median(rs)).toLocaleString('en-US')} events/s (rounds: ${rs.map((x) => Math.round(x)).join(', ')}); `
    + `CPU median ${median(cpus[name]).toFixed(1)} µs/event (rounds: ${cpus[name].map((x) => x.toFixed(1)).join(', ')})`);
}

// The codec alone: the same message column, and the same rollup states, written again at each level
// (10 copies, blocks of 10,000 rows as the loader's), CPU per stored event.
const dir = mkdtempSync(join(tmpdir(), 'bench-codec-'));
const t = new ChdbTransport(dir);
try {
  for (const s of schemaStatements(ALL_FEATURES)) await t.exec(s);
  for (const p of payloads) await t.insertCompact('events', EVENT_COLUMNS, p);
  const states = (await t.query<{ name: string; type: string }>(
    "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'error_rollup'",
  )).map((c, i) => ({ ...c, key: i < 3 }));
  const cost: Record<string, number[]> = {};
  for (let i = 0; i < ROUNDS; i++) {
    for (const level of i % 2 ? [9, 3] : [3, 9]) {
      for (const what of ['message', 'error_rollup states'] as const) {
        const codec = `CODEC(ZSTD(${level}))`;
        const cols = what === 'message' ? `message String ${codec}` : states.map((c) => `${c.name} ${c.type}${c.key ? '' : ' ' + codec}`).join(', ');
        await t.exec(`CREATE TABLE copy (${cols}) ENGINE = MergeTree ORDER BY tuple()`);
        const from = what === 'message' ? 'SELECT e.message FROM events AS e, numbers(10) AS n' : 'SELECT e.* FROM error_rollup AS e, numbers(10) AS n';
        const c0 = process.cpuUsage();
        await t.exec(`INSERT INTO copy ${from} SETTINGS max_insert_block_size = 10000, min_insert_block_size_rows = 10000`);
        const c = process.cpuUsage(c0);
        (cost[`${what} ZSTD(${level})`] ??= []).push((c.user + c.system) / (TOTAL * 10));
        await t.exec('DROP TABLE copy');
      }
    }
  }
  for (const [name, xs] of Object.entries(cost)) console.log(`written alone, ${name}: median ${median(xs).toFixed(3)} µs/event (rounds: ${xs.map((x) => x.toFixed(3)).join(', ')})`);
} finally {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`load average ${load()}`);
