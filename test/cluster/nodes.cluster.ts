// Two stateless engine nodes on one ClickHouse cluster and one PostgreSQL: what is done on one node is
// in force on the other within a second (key revocation, open tails of a revoked key), a tail on one
// node sees the other's events, the nodes ride out a PostgreSQL restart and a ZooKeeper outage
// without being restarted.
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, removeDir } from '../helpers.js';
import { EVALUATOR_LEASE, evaluatorLeaseMs } from '../../src/alerts/evaluator-lease.js';
import { api, clusterDown, clusterUp, killNode, openTail, restartNode, sleep, within, type Cluster } from './cluster.js';

let dir = '';
let c: Cluster;
let A = '';
let B = '';

/** A loopback webhook receiver: every notification it was sent. */
const received: { path: string; id: string | undefined; body: any }[] = [];
let receiver: Server;
let receiverUrl = '';
// extra environment given to `cluster.sh up` reaches the nodes: loopback webhooks, a fast evaluator
const NODE_ENV = { MONITORING_ALLOW_PRIVATE_WEBHOOKS: 'true', MONITORING_ALERT_EVAL_INTERVAL_MS: '500' };
/** The evaluator lease with that interval: 2.5 s. */
const LEASE_MS = evaluatorLeaseMs(500);
/** After the takeover, the alert still needs the new holder's pass (the lease is taken in one) and a webhook delivery. */
const EVALUATE_AND_DELIVER_MS = 2000;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ path: req.url ?? '', id: req.headers['x-puraify-notification-id'] as string | undefined, body: JSON.parse(body || '{}') });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  dir = tempDir('pm-cluster-nodes-');
  c = clusterUp(dir, NODE_ENV);
  [A, B] = c.nodes;
});
afterAll(async () => {
  receiver?.close();
  if (!dir) return;
  try {
    clusterDown(dir);
  } finally {
    removeDir(dir);
  }
});

async function newKey(project: string, scopes = ['ingest', 'read']): Promise<{ id: string; token: string }> {
  const r = await api(A, 'POST', '/monitoring/keys', { token: c.admin_token, body: { name: `k-${project}`, scopes, project_id: project } });
  expect(r.status).toBe(201);
  return { id: r.body.id ?? r.body.key?.id, token: r.body.token };
}

/** PostgreSQL is the machine's shared service: restarted by its own tool, and always left running. */
function restartPostgres(): void {
  const version = execFileSync('bash', ['-c', 'ls /etc/postgresql | head -1'], { encoding: 'utf8' }).trim();
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'restart'], { stdio: 'inherit', timeout: 60_000 });
}

/** The pid of the engine node holding the windowed-rule evaluator lease (its holder id names it). */
async function evaluatorPid(): Promise<number | undefined> {
  const db = new pg.Client({ connectionString: c.postgres });
  await db.connect();
  try {
    const r = await db.query('SELECT holder FROM alert_leases WHERE name = $1 AND until_ms > $2', [EVALUATOR_LEASE, Date.now()]);
    const m = /^node-(\d+)-/.exec(r.rows[0]?.holder ?? '');
    return m ? Number(m[1]) : undefined;
  } finally {
    await db.end();
  }
}

describe('two engine nodes', () => {
  it(`a threshold rule and an event rule fire exactly once each, with the evaluating node killed mid-window: the other node holds the evaluator lease within 2× the lease (${2 * LEASE_MS} ms) and delivers the alert within ${EVALUATE_AND_DELIVER_MS} ms of that`, async () => {
    const admin = { token: c.admin_token };
    const ch = await api(A, 'POST', '/monitoring/channels', { ...admin, body: { project_id: 'pf_rules', name: 'hook', type: 'webhook', config: { url: `${receiverUrl}/hook` } } });
    expect(ch.status, JSON.stringify(ch.body)).toBe(201);
    const threshold = await api(A, 'POST', '/monitoring/alert-rules', { ...admin, body: {
      name: 'quota burst', project_id: 'pf_rules', kind: 'threshold', threshold: 6, window_s: 120, filter: { error_type: 'quota' }, group_by: ['platform'], channels: [ch.body.id], severity: 'high',
    } });
    expect(threshold.status, JSON.stringify(threshold.body)).toBe(201);
    const event = await api(B, 'POST', '/monitoring/alert-rules', { ...admin, body: {
      name: 'crash seen', project_id: 'pf_rules', kind: 'event', filter: { error_type: 'crash' }, group_by: ['platform'], channels: [ch.body.id], severity: 'high',
    } });
    expect(event.status, JSON.stringify(event.body)).toBe(201);
    const quota = (n: number) => Array.from({ length: n }, () => ({ project_id: 'pf_rules', platform: 'Stripe', status: 'error', error_type: 'quota' }));
    const crash = { project_id: 'pf_rules', platform: 'Slack', status: 'error', error_type: 'crash' };
    // the rules reached both nodes; half the window's events arrive, and both nodes see a crash at once
    await sleep(300);
    const sent = await Promise.all([
      api(A, 'POST', '/monitoring/logs', { ...admin, body: [...quota(3), crash] }),
      api(B, 'POST', '/monitoring/logs', { ...admin, body: crash }),
    ]);
    expect(sent.map((r) => r.status)).toEqual([200, 200]);
    // acknowledged means in the node's write-ahead log; what a killed node had not yet loaded waits
    // there for its restart. This test is about the evaluator lease, so the first half is in the
    // shared store before the kill (a read on each node waits for that node's own writes)
    for (const n of c.nodes) expect((await api(n, 'GET', '/monitoring/logs/count?project_id=pf_rules', admin)).status).toBe(200);
    // the evaluator dies mid-window
    const pid = (await within(5000, evaluatorPid)).value;
    expect(c.pids.nodes).toContain(pid);
    const dead = c.pids.nodes.indexOf(pid!);
    const alive = c.nodes[1 - dead];
    killNode(c, dead);
    const killedAt = Date.now();
    expect((await api(alive, 'POST', '/monitoring/logs', { ...admin, body: [...quota(3), crash] })).status).toBe(200);
    const title = (r: (typeof received)[number]) => String(r.body.notification?.title ?? '');
    // the bound: another node takes over within 2× the lease of the holder's death
    const alivePid = c.pids.nodes[1 - dead];
    const takenOver = await within(2 * LEASE_MS + 5000, async () => ((await evaluatorPid()) === alivePid ? Date.now() : undefined), 50);
    expect(takenOver.value, 'the other node took the evaluator lease').toBeDefined();
    const fired = await within(15_000, async () => (received.some((r) => title(r).startsWith('quota burst')) ? Date.now() : undefined), 50);
    expect(fired.value, 'the threshold rule fired after the takeover').toBeDefined();
    console.log(`evaluator lease taken over ${takenOver.value! - killedAt} ms after the kill, threshold alert delivered ${fired.value! - killedAt} ms after it (lease ${LEASE_MS} ms)`);
    expect(takenOver.value! - killedAt).toBeLessThan(2 * LEASE_MS);
    expect(fired.value! - takenOver.value!).toBeLessThan(EVALUATE_AND_DELIVER_MS);
    await sleep(3000); // a second firing or delivery would come now
    const byRule = (name: string) => received.filter((r) => title(r).startsWith(name) && r.body.notification?.state === 'firing');
    expect(byRule('quota burst')).toHaveLength(1);
    expect(byRule('crash seen'), JSON.stringify(received.map((r) => [r.path, title(r), r.body.notification?.state]))).toHaveLength(1);
    expect(new Set(received.map((r) => r.id)).size).toBe(received.length);
    restartNode(c, dead, NODE_ENV);
  });

  it('a key revoked on node A is refused on node B within 1 s, and B\'s open tails of that key end', async () => {
    const key = await newKey('pf_revoke');
    // B has seen (and cached) the key
    expect((await api(B, 'POST', '/monitoring/logs', { token: key.token, body: { project_id: 'pf_revoke', message: 'before' } })).status).toBe(200);
    const tail = await openTail(B, '/monitoring/stream?project_id=pf_revoke', key.token);
    let tailEnded = 0;
    void tail.ended.then(() => (tailEnded = Date.now()));
    const revoked = await api(A, 'DELETE', `/monitoring/keys/${key.id}`, { token: c.admin_token });
    expect([200, 204]).toContain(revoked.status);
    const t0 = Date.now();
    const refused = await within(1000, async () => {
      const r = await api(B, 'GET', '/monitoring/logs?project_id=pf_revoke', { token: key.token });
      return r.status === 401 ? r : undefined;
    });
    expect(refused.value?.status).toBe(401);
    console.log(`revocation on A refused on B after ${refused.tookMs} ms`);
    await within(1000, async () => (tailEnded ? true : undefined));
    expect(tailEnded).toBeGreaterThan(0);
    expect(tailEnded - t0).toBeLessThan(1000);
  });

  it('a tail on node A sees events ingested on node B within 1 s, each once', async () => {
    const tail = await openTail(A, '/monitoring/stream?project_id=pf_tail', c.admin_token);
    await sleep(300);
    const ids = ['t-1', 't-2', 't-3'];
    const r = await api(B, 'POST', '/monitoring/logs', { token: c.admin_token, body: ids.map((id) => ({ id, project_id: 'pf_tail', message: `from B ${id}` })) });
    expect(r.status).toBe(200);
    // "ingested on B" = acknowledged by B: the clock starts at B's answer
    const sentAt = Date.now();
    const local = await api(A, 'POST', '/monitoring/logs', { token: c.admin_token, body: { id: 't-a', project_id: 'pf_tail', message: 'from A' } });
    expect(local.status).toBe(200);
    await within(1000, async () => (tail.events.length >= 4 ? true : undefined));
    await sleep(800); // anything sent twice would come now
    tail.close();
    const got = tail.events.map((e) => e.event.id).sort();
    expect(got).toEqual([...ids, 't-a'].sort());
    const latest = Math.max(...tail.events.filter((e) => ids.includes(e.event.id)).map((e) => e.at));
    console.log(`tail on A got B's events ${latest - sentAt} ms after B acknowledged them`);
    expect(latest - sentAt).toBeLessThan(1000);
  });

  it('the same event id sent to node A and then to node B is stored once', async () => {
    const ev = { id: 'same-1', project_id: 'pf_same', message: 'once' };
    expect((await api(A, 'POST', '/monitoring/logs', { token: c.admin_token, body: ev })).status).toBe(200);
    const second = await api(B, 'POST', '/monitoring/logs', { token: c.admin_token, body: ev });
    expect(second.status).toBe(200);
    expect(second.body.duplicates).toBe(1);
    const n = await api(A, 'GET', '/monitoring/logs/count?project_id=pf_same', { token: c.admin_token });
    expect(n.body.count).toBe(1);
  });

  it('an error group spread over both shards: the listing\'s all-time total counts every shard\'s events', async () => {
    // sessions decide the shard: 20 old events on 20 sessions land on both shards; the one event in
    // the range sits on one. A shard-local "active in the range" set would drop the other's old events.
    const now = Date.now();
    const ev = (i: number, timestamp: number) => ({
      project_id: 'pf_spread', event_type: 'action_error', status: 'error', error_type: 'SpreadError', message: 'spread over shards',
      session_id: `spread-${i}`, timestamp,
    });
    const body = [...Array.from({ length: 20 }, (_, i) => ev(i, now - 3 * 86_400_000 + i * 1000)), ev(99, now - 60_000)];
    expect((await api(A, 'POST', '/monitoring/logs', { token: c.admin_token, body })).status).toBe(200);
    // no project named: the totals go through the groups active in the range
    const r = await api(A, 'GET', `/monitoring/errors?from=${now - 3_600_000}&to=${now + 1000}`, { token: c.admin_token });
    expect(r.status).toBe(200);
    const g = r.body.groups.find((x: { project_id: string }) => x.project_id === 'pf_spread');
    expect(g).toMatchObject({ count: 1, total_count: 21, error_type: 'SpreadError' });
  });

  it('a key\'s rate limits hold across both nodes (counted in PostgreSQL), not once per node', async () => {
    // requests: 20 a minute (leased one token at a time); events: 600 a minute (leases of 30)
    const r = await api(A, 'POST', '/monitoring/keys', { token: c.admin_token, body: {
      name: 'k-limited', scopes: ['ingest', 'read'], project_id: 'pf_limits', requests_per_minute: 20, events_per_minute: 600,
    } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const token = r.body.token as string;
    const t0 = Date.now();
    // 30 requests, alternating nodes, 3 at a time: each node alone would let all 30 through (20 + 20)
    const statuses: number[] = [];
    for (let i = 0; i < 30; i += 3) {
      const replies = await Promise.all([0, 1, 2].map((j) => api(c.nodes[(i + j) % 2], 'GET', '/monitoring/logs?project_id=pf_limits&limit=1', { token })));
      statuses.push(...replies.map((x) => x.status));
    }
    const refill = Math.ceil(((Date.now() - t0) / 60_000) * 20); // the bucket refills 20 a minute meanwhile
    const ok = statuses.filter((s) => s === 200).length;
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(ok).toBeGreaterThanOrEqual(20);
    expect(ok).toBeLessThanOrEqual(20 + refill);
    const refused = await api(B, 'GET', '/monitoring/logs?project_id=pf_limits', { token });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    console.log(`rate limit across nodes: ${ok} of 30 requests let through (limit 20/min, refill ${refill} during the test)`);

    // events, with another key (this one's requests are spent): batches of 50 events alternating nodes
    const e = await api(A, 'POST', '/monitoring/keys', { token: c.admin_token, body: {
      name: 'k-events', scopes: ['ingest'], project_id: 'pf_limits', requests_per_minute: 0, events_per_minute: 600,
    } });
    expect(e.status, JSON.stringify(e.body)).toBe(201);
    const t1 = Date.now();
    let events = 0;
    for (let i = 0; i < 20; i++) {
      const body = Array.from({ length: 50 }, (_, j) => ({ project_id: 'pf_limits', message: `b${i} e${j}` }));
      const x = await api(c.nodes[i % 2], 'POST', '/monitoring/logs', { token: e.body.token, body });
      expect([200, 429]).toContain(x.status);
      if (x.status === 200) events += 50;
    }
    // each node holds at most one lease (30 events) it has not spent: never more than the limit
    const eventRefill = Math.ceil(((Date.now() - t1) / 60_000) * 600);
    expect(events).toBeGreaterThanOrEqual(600 - 2 * 30);
    expect(events).toBeLessThanOrEqual(600 + eventRefill);
    console.log(`event limit across nodes: ${events} of 1000 events let through (limit 600/min, refill ${eventRefill})`);
  });

  it('ride out a PostgreSQL restart: control changes still propagate, ingest and reads go on', async () => {
    const key = await newKey('pf_pg');
    expect((await api(B, 'POST', '/monitoring/logs', { token: key.token, body: { project_id: 'pf_pg', message: 'before restart' } })).status).toBe(200);
    try {
      restartPostgres();
    } finally {
      // the machine's PostgreSQL must be up whatever happened
      execFileSync('bash', ['-c', 'for i in $(seq 1 100); do pg_isready -q -h 127.0.0.1 && exit 0; sleep 0.2; done; exit 1'], { timeout: 30_000 });
    }
    // both nodes use PostgreSQL again without a restart (their pools and listeners reconnect)
    const again = await within(15_000, async () => {
      const r = await api(A, 'GET', '/monitoring/keys', { token: c.admin_token });
      return r.status === 200 ? r : undefined;
    });
    expect(again.value?.status).toBe(200);
    await sleep(2500); // the listener's reconnect
    const revoked = await api(A, 'DELETE', `/monitoring/keys/${key.id}`, { token: c.admin_token });
    expect([200, 204]).toContain(revoked.status);
    const refused = await within(1000, async () => {
      const r = await api(B, 'POST', '/monitoring/logs', { token: key.token, body: { project_id: 'pf_pg', message: 'after' } });
      return r.status === 401 ? r : undefined;
    });
    expect(refused.value?.status).toBe(401);
    expect((await api(B, 'POST', '/monitoring/logs', { token: c.admin_token, body: { project_id: 'pf_pg', message: 'after restart' } })).status).toBe(200);
  });

  it('ZooKeeper stopped: ingest is buffered durably in the write-ahead log, and every event is stored once by itself once it is back', async () => {
    const admin = { token: c.admin_token };
    const zk = c.pids.zookeeper;
    const loadA = async () => (await api(A, 'GET', '/monitoring/load', admin)).body?.ingest;
    const failuresBefore = (await loadA()).load_failures as number;
    const ids: string[] = [];
    process.kill(zk, 'SIGSTOP'); // frozen: sessions expire as they would with the server gone
    try {
      // ingest goes on answering from the log (503 + Retry-After only once the log is full), while
      // the loader's inserts into the Replicated tables are refused
      const refusedByStorage = await within(40_000, async () => {
        const id = `zk-${ids.length}`;
        const r = await api(A, 'POST', '/monitoring/logs', { ...admin, body: { id, project_id: 'pf_zk', message: 'while down' }, timeoutMs: 20_000 });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        ids.push(id);
        const ingest = await loadA();
        return ingest.load_failures > failuresBefore ? ingest : undefined;
      }, 500);
      expect(refusedByStorage.value, 'storage refused inserts while ZooKeeper was frozen').toBeDefined();
      expect(refusedByStorage.value.queue_depth).toBeGreaterThan(0);
      // reads still work: the data is all there, only writes need ZooKeeper
      expect((await api(B, 'GET', '/monitoring/logs?project_id=pf_same', admin)).status).toBe(200);
    } finally {
      process.kill(zk, 'SIGCONT');
    }
    // back by itself: the log is loaded, each event once
    const back = await within(60_000, async () => {
      const r = await api(B, 'GET', '/monitoring/logs/count?project_id=pf_zk', admin);
      return r.status === 200 && r.body.count >= ids.length ? r : undefined;
    }, 500);
    expect(back.value?.body.count).toBe(ids.length);
    expect((await api(A, 'POST', '/monitoring/logs', { ...admin, body: { id: 'zk-back', project_id: 'pf_zk', message: 'after' } })).status).toBe(200);
    console.log(`${ids.length} events buffered while ZooKeeper was frozen; all stored ${back.tookMs} ms after it came back`);
  });
});
