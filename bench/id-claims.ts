// bench/id-claims: what a cluster's id registry (src/storage/id-claims.ts, PostgreSQL) adds to an
// ingest answer. Every request with client ids claims them before it is answered, batched across
// concurrent requests (claimBatched: one statement in flight, the next takes all that queued). Timed
// straight on the registry, in shapes of bench/ingest: one caller with one id per call; 16 and 50
// closed-loop callers with one id; 16 callers with 1,000 ids. Set-up: a fresh database on the
// machine's PostgreSQL (BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres), dropped after.
//   node dist/bench/id-claims.js        (SECONDS=5 per shape)
import pg from 'pg';
import { migrateControl } from '../src/storage/control-migrations.js';
import { IdClaims } from '../src/storage/id-claims.js';
import { PgDb } from '../src/storage/pg-db.js';
import { newEventId } from '../src/ids.js';
import { machine, percentile } from './common.js';

const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SECONDS = Number(process.env.SECONDS ?? 5);

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

const name = `bench_claims_${process.pid}`;
await admin(`CREATE DATABASE ${name}`);
const url = new URL(ADMIN_URL);
url.pathname = `/${name}`;
const db = new PgDb(url.toString());
try {
  await migrateControl(db);
  const claims = new IdClaims(db);
  console.log(`bench/id-claims — ${machine()} — ${SECONDS} s per shape, PostgreSQL at ${url.host}`);
  console.log('| callers | ids per call | calls/s | ids/s | statements/s | call p50 ms | call p99 ms |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [callers, ids] of [[1, 1], [16, 1], [50, 1], [16, 1000]]) {
    const lat: number[] = [];
    const statements0 = claims.stats.statements;
    const t0 = performance.now();
    const until = t0 + SECONDS * 1000;
    let k = 0;
    const caller = async (c: number) => {
      while (performance.now() < until) {
        const rows = Array.from({ length: ids }, () => ({ project_id: `pf_${k++ % 50}`, id: newEventId(Date.now()) }));
        const a = performance.now();
        await claims.claimBatched(rows.map((row) => ({ row, claimant: `bench:${c}:${k}` })));
        lat.push(performance.now() - a);
      }
    };
    await Promise.all(Array.from({ length: callers }, (_, c) => caller(c)));
    const s = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    const statements = claims.stats.statements - statements0;
    console.log(`| ${callers} | ${ids} | ${Math.round(lat.length / s).toLocaleString('en-US')} | ${Math.round((lat.length * ids) / s).toLocaleString('en-US')} | ${Math.round(statements / s).toLocaleString('en-US')} | ${percentile(lat, 50).toFixed(2)} | ${percentile(lat, 99).toFixed(2)} |`);
  }
} finally {
  await db.close();
  await admin(`DROP DATABASE ${name}`);
}
