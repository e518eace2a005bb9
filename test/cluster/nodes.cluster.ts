// Two stateless engine nodes on one ClickHouse cluster and one PostgreSQL: what is done on one node is
// in force on the other within a second (key revocation, open tails of a revoked key), a tail on one
// node sees the other's events, the nodes ride out a PostgreSQL restart and a ZooKeeper outage
// without being restarted.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, removeDir } from '../helpers.js';
import { api, clusterDown, clusterUp, openTail, sleep, within, type Cluster } from './cluster.js';

let dir = '';
let c: Cluster;
let A = '';
let B = '';

beforeAll(() => {
  dir = tempDir('pm-cluster-nodes-');
  c = clusterUp(dir);
  [A, B] = c.nodes;
});
afterAll(() => {
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

describe('two engine nodes', () => {
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
    const sentAt = Date.now();
    const ids = ['t-1', 't-2', 't-3'];
    const r = await api(B, 'POST', '/monitoring/logs', { token: c.admin_token, body: ids.map((id) => ({ id, project_id: 'pf_tail', message: `from B ${id}` })) });
    expect(r.status).toBe(200);
    const local = await api(A, 'POST', '/monitoring/logs', { token: c.admin_token, body: { id: 't-a', project_id: 'pf_tail', message: 'from A' } });
    expect(local.status).toBe(200);
    await within(1000, async () => (tail.events.length >= 4 ? true : undefined));
    await sleep(800); // anything sent twice would come now
    tail.close();
    const got = tail.events.map((e) => e.event.id).sort();
    expect(got).toEqual([...ids, 't-a'].sort());
    const latest = Math.max(...tail.events.filter((e) => ids.includes(e.event.id)).map((e) => e.at));
    console.log(`tail on A got B's events ${latest - sentAt} ms after B was sent them`);
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

  it('ZooKeeper stopped: ingest answers 503 with Retry-After, and recovers by itself once it is back', async () => {
    const zk = c.pids.zookeeper;
    process.kill(zk, 'SIGSTOP'); // frozen: sessions expire as they would with the server gone
    try {
      const refused = await within(30_000, async () => {
        const r = await api(A, 'POST', '/monitoring/logs', { token: c.admin_token, body: { project_id: 'pf_zk', message: 'while down' }, timeoutMs: 20_000 });
        if (r.status === 200) return undefined;
        return r;
      }, 500);
      expect(refused.value?.status).toBe(503);
      expect(Number(refused.value?.headers.get('retry-after'))).toBeGreaterThan(0);
      // reads still work: the data is all there, only writes need ZooKeeper
      expect((await api(B, 'GET', '/monitoring/logs?project_id=pf_same', { token: c.admin_token })).status).toBe(200);
    } finally {
      process.kill(zk, 'SIGCONT');
    }
    const back = await within(60_000, async () => {
      const r = await api(A, 'POST', '/monitoring/logs', { token: c.admin_token, body: { id: 'zk-back', project_id: 'pf_zk', message: 'after' }, timeoutMs: 20_000 });
      return r.status === 200 ? r : undefined;
    }, 500);
    expect(back.value?.status).toBe(200);
    console.log(`ingest recovered ${back.tookMs} ms after ZooKeeper came back`);
  });
});
