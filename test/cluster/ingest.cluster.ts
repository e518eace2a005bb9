// 100,000 events through both engine nodes of a 2 shards × 2 replicas cluster while one engine node is
// SIGKILLed and one ClickHouse replica is stopped: every acknowledged event is found exactly once
// through either node (those the killed node acknowledged into its write-ahead log once it restarts). The client does what the SDK does: a request that fails (connection refused,
// 5xx) goes to the other node, with the same event ids — so an event the killed node may have stored
// before dying is sent again, and must not be stored twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, removeDir } from '../helpers.js';
import { api, clickhouseSql, clusterDown, clusterUp, killNode, restartNode, sleep, startClickHouse, stopClickHouse, within, type Cluster } from './cluster.js';

let dir = '';
let c: Cluster;

beforeAll(() => {
  dir = tempDir('pm-cluster-ingest-');
  c = clusterUp(dir);
});
afterAll(() => {
  if (!dir) return;
  try {
    clusterDown(dir);
  } finally {
    removeDir(dir);
  }
});

const TOTAL = 100_000;
const BATCH = 1000;
const PROJECT = 'pf_scale';

function batch(b: number): unknown[] {
  const out = [];
  for (let i = 0; i < BATCH; i++) {
    const n = b * BATCH + i;
    out.push({
      id: `ev-${n}`, project_id: PROJECT, session_id: `s-${n % 997}`, engine: 'execution', status: n % 10 === 0 ? 'error' : 'ok',
      message: `step ${n} done`, error_type: n % 10 === 0 ? 'api_timeout' : undefined,
    });
  }
  return out;
}

describe('a cluster losing an engine node and a ClickHouse replica mid-ingest', () => {
  it('stores every acknowledged event exactly once', async () => {
    const token = c.admin_token;
    let next = 0;
    let attempts = 0;
    let failovers = 0;
    const acked = new Set<number>();
    const statuses = new Map<number, number>();
    let broken: Promise<void> | undefined;
    const t0 = Date.now();
    const worker = async () => {
      for (;;) {
        const b = next++;
        if (b >= TOTAL / BATCH) return;
        if (b === 30 && !broken) {
          // a third of the way: node 2 dies (SIGKILL, requests in flight) and shard 1 loses a replica
          broken = (async () => {
            killNode(c, 1);
            stopClickHouse(c, 1);
          })();
        }
        const body = batch(b);
        for (let tryNo = 0; ; tryNo++) {
          // even batches start on node 1, odd ones on node 2
          const node = c.nodes[(b + tryNo) % 2];
          attempts++;
          const r = await api(node, 'POST', '/monitoring/logs', { token, body });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (r.status === 200) {
            expect(r.body.accepted).toBe(BATCH);
            acked.add(b);
            break;
          }
          // what the SDK does: another node at once, with a pause when every node refused
          expect([0, 502, 503]).toContain(r.status);
          failovers++;
          if (tryNo % 2 === 1) await sleep(100);
          if (tryNo > 200) throw new Error(`batch ${b} never acknowledged: ${JSON.stringify(r.body)}`);
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(() => worker()));
    await broken;
    const ingestMs = Date.now() - t0;
    expect(acked.size).toBe(TOTAL / BATCH);
    expect(failovers, 'requests met the dead node and went to the other').toBeGreaterThan(0);
    console.log(`cluster ingest: ${TOTAL} events in ${ingestMs} ms (${Math.round(TOTAL / (ingestMs / 1000))} ev/s) with node 2 and replica 1.2 down from batch 30; ${attempts} requests, ${failovers} failed over; statuses ${JSON.stringify([...statuses])}`);

    // acknowledged = in the answering node's write-ahead log. Node 1 loads all it acknowledged while
    // node 2 and the replica are down; what node 2 acknowledged and had not loaded when it was killed
    // waits in node 2's log for its restart
    const drained = (i: number) => within(120_000, async () => {
      const r = await api(c.nodes[i], 'GET', '/monitoring/load', { token });
      return r.status === 200 && r.body.ingest.unloaded_bytes === 0 ? r.body.ingest : undefined;
    }, 250);
    expect((await drained(0)).value, 'node 1 loaded its log').toBeDefined();
    const count1 = await api(c.nodes[0], 'GET', `/monitoring/logs/count?project_id=${PROJECT}`, { token });
    expect(count1.status).toBe(200);
    const whileDown = count1.body.count ?? count1.body.total;
    expect(whileDown).toBeGreaterThan(TOTAL / 2);
    expect(whileDown).toBeLessThanOrEqual(TOTAL);

    // the stopped replica comes back and catches up; node 2 comes back and loads what it acknowledged
    startClickHouse(c, 1);
    restartNode(c, 1);
    expect((await drained(1)).value, 'node 2 loaded its log after the restart').toBeDefined();
    console.log(`${whileDown} events found through node 1 while node 2 was down; ${TOTAL - whileDown} loaded from node 2's log after its restart`);

    // every id once, across both shards
    const [n, uniq] = (await clickhouseSql(c, 0, `SELECT count(), uniqExact(id) FROM events WHERE project_id = '${PROJECT}'`)).split('\t').map(Number);
    expect({ n, uniq }).toEqual({ n: TOTAL, uniq: TOTAL });
    await clickhouseSql(c, 1, 'SYSTEM SYNC REPLICA events_local');
    await clickhouseSql(c, 3, 'SYSTEM SYNC REPLICA events_local');
    const local = async (i: number) => Number(await clickhouseSql(c, i, `SELECT count() FROM events_local WHERE project_id = '${PROJECT}'`));
    const [r11, r12, r21, r22] = [await local(0), await local(1), await local(2), await local(3)];
    expect(r11).toBe(r12);
    expect(r21).toBe(r22);
    expect(r11 + r21).toBe(TOTAL);
    expect(Math.min(r11, r21)).toBeGreaterThan(TOTAL / 5); // sessions spread over both shards
    for (const node of c.nodes) {
      const r = await api(node, 'GET', `/monitoring/logs/count?project_id=${PROJECT}`, { token });
      expect(r.body.count ?? r.body.total).toBe(TOTAL);
    }

    // a session's events are on one shard
    const sessions = async (i: number) => new Set((await clickhouseSql(c, i, `SELECT DISTINCT session_id FROM events_local WHERE project_id = '${PROJECT}'`)).split('\n'));
    const [s1, s2] = [await sessions(0), await sessions(2)];
    expect(s1.size + s2.size).toBe(997);
    expect([...s1].filter((s) => s2.has(s))).toEqual([]);
  });
});
