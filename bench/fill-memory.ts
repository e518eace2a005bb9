// bench/fill-memory: what an engine's memory is made of while it is filled through HTTP (16 senders
// × batches of 1,000 events with ids). Samples the engine's RSS (/proc) and, from /metrics, the
// JavaScript heap, Buffers outside it, chDB's tracked memory and the log's read-ahead every 0.5 s,
// and prints the peak and a sample every 3 s.
//   ROWS=2000000 node dist/bench/fill-memory.js     (the engine as npm start runs it; BENCH_NODE_ARGS="--max-old-space-size=N" to try another heap limit)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN, fillThroughHttp, machine, makeEvent, rng, spawnEngine, startNodeArgs } from './common.js';

const ROWS = Number(process.env.ROWS ?? 2_000_000);
const MB = 1 << 20;

interface Sample { s: number; rss: number; heap: number; buffers: number; chdb: number; readAhead: number; unloaded: number }

const dir = mkdtempSync(join(tmpdir(), 'bench-fill-memory-'));
const engine = await spawnEngine(dir, { MONITORING_LOG_LEVEL: 'warn' });
const pid = engine.proc.pid!;
const samples: Sample[] = [];
const t0 = performance.now();
const gauge = (text: string, name: string): number => {
  const m = new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) / MB : NaN;
};
let sampling = Promise.resolve();
const timer = setInterval(() => {
  sampling = sampling.then(async () => {
    try {
      const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
      const m = await (await fetch(`${engine.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
      samples.push({
        s: (performance.now() - t0) / 1000, rss,
        heap: gauge(m, 'nodejs_heap_used_bytes'), buffers: gauge(m, 'nodejs_external_memory_bytes'),
        chdb: gauge(m, 'puraify_monitoring_storage_memory_bytes'),
        readAhead: gauge(m, 'puraify_monitoring_wal_memory_bytes{consumer="loader"}') + gauge(m, 'puraify_monitoring_wal_memory_bytes{consumer="observer"}'),
        unloaded: gauge(m, 'puraify_monitoring_wal_unloaded_bytes'),
      });
    } catch {
      // a sample missed while the engine is busy
    }
  });
}, 500);

const r = rng(7);
const rate = await fillThroughHttp(engine.url, ROWS, (n) => makeEvent(r, n));
await new Promise((res) => setTimeout(res, 5000));
clearInterval(timer);
await sampling;
const refused = (await (await fetch(`${engine.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text())
  .split('\n').filter((l) => l.startsWith('puraify_monitoring_ingest_refused_total{') && !l.endsWith(' 0'))
  .map((l) => l.replace('puraify_monitoring_ingest_refused_total', '')).join(', ');
await engine.stop();
rmSync(dir, { recursive: true, force: true });

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '–');
const peak = samples.reduce((a, b) => (b.rss > a.rss ? b : a), samples[0]);
console.log(`bench/fill-memory — ${machine()} — ${ROWS.toLocaleString('en-US')} events, engine node flags: ${[...startNodeArgs(), process.env.BENCH_NODE_ARGS ?? ''].join(' ').trim() || '(none)'}`);
console.log(`filled at ${Math.round(rate.acked).toLocaleString('en-US')} events/s acknowledged, ${Math.round(rate.stored).toLocaleString('en-US')} stored; requests refused (resent): ${refused || 'none'}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`peak RSS ${f(peak.rss)} MB at ${peak.s.toFixed(1)} s: JS heap used ${f(peak.heap)}, Buffers ${f(peak.buffers)}, chDB tracked ${f(peak.chdb)}, log read-ahead ${f(peak.readAhead)} MB; chDB tracked max seen ${f(Math.max(...samples.map((x) => x.chdb)))} MB`);
console.log('| s | RSS MB | JS heap MB | Buffers MB | chDB MB | read-ahead MB | unloaded log MB |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const x of samples.filter((_, i) => i % 6 === 0)) {
  console.log(`| ${x.s.toFixed(1)} | ${f(x.rss)} | ${f(x.heap)} | ${f(x.buffers)} | ${f(x.chdb)} | ${f(x.readAhead)} | ${x.unloaded.toFixed(1)} |`);
}
