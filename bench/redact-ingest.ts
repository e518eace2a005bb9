// bench/redact-ingest: what redaction costs end to end. HTTP ingest events/s into one engine, for
// batches without secrets and for batches where every event carries one (in the message, and in a
// secret-named attribute for a third of them). Rounds alternate, best of each is reported.
//   npx tsc -p tsconfig.json && node dist/bench/redact-ingest.js   (EVENTS=100000 CLIENTS=8 BATCH=1000)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alnum, machine, makeEvent, post, rng, SECRET_MESSAGES, spawnEngine } from './common.js';

const TOTAL = Number(process.env.EVENTS ?? 100_000);
const CLIENTS = Number(process.env.CLIENTS ?? 8);
const BATCH = Number(process.env.BATCH ?? 1000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);



function bodies(withSecrets: boolean, seed: number): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < TOTAL; i += BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(TOTAL, i + BATCH); j++) {
      const e = makeEvent(r, j, { start: Date.now() - 3600_000, spanMs: 3600_000 });
      if (withSecrets) {
        e.message = SECRET_MESSAGES[Math.floor(r() * SECRET_MESSAGES.length)](r);
        if (r() < 0.33) e.attributes = { slack_token: `xoxb-${alnum(r, 30)}` };
      } else if (r() < 0.33) {
        e.attributes = { region: 'eu-west-1' };
      }
      batch.push(e);
    }
    out.push(JSON.stringify(batch));
  }
  return out;
}

async function ingest(url: string, payloads: string[]): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < payloads.length) {
      const status = await post(url, '/monitoring/logs', payloads[next++]);
      if (status !== 200) throw new Error(`ingest answered ${status}`);
    }
  }));
  return TOTAL / ((performance.now() - t0) / 1000);
}

const dir = mkdtempSync(join(tmpdir(), 'bench-redact-ingest-'));
const engine = await spawnEngine(dir, { MONITORING_LOG_LEVEL: 'warn' });
try {
  await ingest(engine.url, bodies(false, 1).slice(0, 20)); // warm-up
  const best = { clean: 0, secrets: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    best.clean = Math.max(best.clean, await ingest(engine.url, bodies(false, 10 + round)));
    best.secrets = Math.max(best.secrets, await ingest(engine.url, bodies(true, 20 + round)));
  }
  console.log(`HTTP ingest, ${TOTAL} events per run, batches of ${BATCH}, ${CLIENTS} clients, best of ${ROUNDS} (${machine()})`);
  console.log(`no secrets            ${Math.round(best.clean).toLocaleString('en-US').padStart(9)} events/s`);
  console.log(`a secret in every one ${Math.round(best.secrets).toLocaleString('en-US').padStart(9)} events/s  (${((1 - best.secrets / best.clean) * 100).toFixed(1)}% slower)`);
} finally {
  await engine.stop();
  rmSync(dir, { recursive: true, force: true });
}
