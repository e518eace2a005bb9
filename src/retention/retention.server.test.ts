// Retention and usage on Debian's clickhouse-server 18.16 (ALTER TABLE … DELETE is there since
// 1.1.54388; no mutations_sync: the job waits on system.mutations), on one server and on the
// Distributed schema over the script's one-shard cluster (the ALTERs go to the local tables).
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../../test/helpers.js';
import type { EventRow } from '../event.js';
import { EventStore } from '../storage/event-store.js';
import { HttpTransport } from '../storage/http-transport.js';
import { EVENT_TABLES } from '../storage/schema.js';
import { enforceEventRetention } from './event-retention.js';
import { DAY_MS, type RetentionPolicy } from './policy.js';
import { projectUsage } from './usage.js';

const SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'clickhouse-server.sh');
const NOW = Date.now();
let dir = '';
let url = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

let n = 0;
function row(project: string, daysAgo: number): EventRow {
  n++;
  const t = NOW - daysAgo * DAY_MS;
  return {
    id: `ev-${n}`, timestamp: t, received_at: t, project_id: project, event_type: 'error', engine: 'execution', triggered_by: '',
    flow_id: '', session_id: `s-${n}`, user_id: `u-${n}`, trace_id: '', span_id: '', platform: 'Slack', action: 'send', status: 'error',
    severity: 'high', error_type: 'E', message: `it's failure ${n}`, stack: '', duration_ms: 12.5, retries: 1, fingerprint: `fp-${project}`,
    alert: 0, sampled: 0, attr_keys: ['k'], attr_values: ['v'],
  };
}

// [project, days ago, kept]
const PLAN: [string, number, boolean][] = [
  ["p'a", 100, false], ["p'a", 45, false], ['p_long', 45, true], ['p_long', 120, false], ["p'a", 31, false], ["p'a", 29, true], ["p'a", 0, true],
];
const policy: RetentionPolicy = { defaultDays: 30, overrides: new Map([['p_long', 90]]) };

beforeAll(async () => {
  dir = tempDir('pm-ret-chs-');
  const httpPort = await freePort();
  let tcpPort = await freePort();
  while (tcpPort === httpPort) tcpPort = await freePort();
  url = execFileSync('bash', [SCRIPT, 'start', join(dir, 'server'), String(httpPort), String(tcpPort)], { encoding: 'utf8' }).trim();
});
afterAll(() => {
  if (!dir) return;
  try {
    execFileSync('bash', [SCRIPT, 'stop', join(dir, 'server')]);
  } finally {
    removeDir(dir);
  }
});

async function count(store: EventStore, table: string, project: string): Promise<number> {
  const [r] = await store.query<{ n: number }>(`SELECT count() AS n FROM ${table} WHERE project_id = {p:String}`, { p: project });
  return Number(r.n);
}

for (const mode of ['one server', 'Distributed over a cluster'] as const) {
  describe(`retention on clickhouse-server (${mode})`, () => {
    it('removes what is past each project\'s retention from every table, keeps the rest, and reports usage in bytes', async () => {
      const transport = await HttpTransport.connect(mode === 'one server'
        ? { url, database: 'pm_ret_single' }
        : { url, database: 'pm_ret_cluster', cluster: 'puraify_single', onCluster: false });
      const store = new EventStore(transport, 10_000);
      try {
        expect(transport.version).toMatch(/^\d+\./);
        await store.init();
        const rows = PLAN.flatMap(([p, d]) => [row(p, d), row(p, d)]);
        await store.insert(rows);
        expect(await count(store, 'events', "p'a")).toBe(10);
        for (const t of EVENT_TABLES) expect(await count(store, t.table, "p'a"), t.table).toBeGreaterThan(0);

        const usage = await projectUsage(store, "p'a", NOW - 200 * DAY_MS, NOW + DAY_MS);
        expect(usage.reduce((s, d) => s + d.events, 0)).toBe(10);
        for (const d of usage) {
          expect(d.bytes).toBeGreaterThan(0);
          expect(d.raw_bytes).toBeGreaterThan(d.events * 40);
        }

        const report = await enforceEventRetention(transport, policy, NOW, { mutationDeadlineMs: 60_000 });
        const events = report.find((r) => r.table === 'events')!;
        expect(events.dropped_partitions).toHaveLength(3);
        expect(events.deleted_for).toEqual(["p'a"]);
        for (const [p, days] of [["p'a", 30], ['p_long', 90]] as const) {
          const keep = PLAN.filter(([q, , k]) => q === p && k).length * 2;
          expect(await count(store, 'events', p), p).toBe(keep);
          for (const t of EVENT_TABLES) {
            const [r] = await store.query<{ m: number }>(`SELECT min(${t.time}) AS m FROM ${t.table} WHERE project_id = {p:String}`, { p });
            expect(Number(r.m), `${p} ${t.table}`).toBeGreaterThanOrEqual(NOW - days * DAY_MS - 3_600_000);
          }
        }
        // nothing left to do the second time
        const again = await enforceEventRetention(transport, policy, NOW, { mutationDeadlineMs: 60_000 });
        expect(again.every((r) => r.dropped_partitions.length === 0 && r.deleted_for.length === 0)).toBe(true);
      } finally {
        await store.close();
      }
    });
  });
}
