// The control store on both databases: versioned migrations (once, even with two nodes starting at
// once), transactions no other caller's statement can enter, and outbox claims that two nodes never
// share. SQLite in a temp dir; PostgreSQL at 127.0.0.1:5432 in a fresh database per run.
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { createTestDatabase, dropTestDatabases } from '../../test/control-db.js';
import { removeDir, tempDir } from '../../test/helpers.js';
import { AlertStore, type Delivery } from '../alerts/store.js';
import { CONTROL_MIGRATIONS, migrateControl } from './control-migrations.js';
import { openControlStore } from './control-store.js';
import { toPgPlaceholders, PgDb } from './pg-db.js';
import { NestedStatementError, SqliteDb, type SqlDb } from './sql-db.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) removeDir(d);
  await dropTestDatabases();
});

interface Backend {
  name: 'sqlite' | 'postgres';
  /** A fresh, empty store location. */
  fresh(): Promise<string>;
  /** Another connection (another engine node) to the same store. */
  connect(where: string): SqlDb;
}

const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    async fresh() {
      const d = tempDir('pm-control-');
      dirs.push(d);
      return d;
    },
    connect: (dir) => new SqliteDb(join(dir, 'control.sqlite')),
  },
  { name: 'postgres', fresh: createTestDatabase, connect: (url) => new PgDb(url) },
];

const DIST = join(import.meta.dirname, '..', '..', 'dist', 'src', 'storage');

/** Runs the migrations in a process of its own (the built engine); resolves with the versions it applied. */
function migrateInChild(backend: Backend['name'], where: string): Promise<number[]> {
  const open = backend === 'sqlite' ? `new s.SqliteDb(${JSON.stringify(join(where, 'control.sqlite'))})` : `new p.PgDb(${JSON.stringify(where)})`;
  const code = `const s = await import(${JSON.stringify(join(DIST, 'sql-db.js'))});
    const p = await import(${JSON.stringify(join(DIST, 'pg-db.js'))});
    const m = await import(${JSON.stringify(join(DIST, 'control-migrations.js'))});
    const db = ${open};
    console.log(JSON.stringify(await m.migrateControl(db)));
    await db.close();`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', code], (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim()) as number[]);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LATEST = Math.max(...CONTROL_MIGRATIONS.map((m) => m.version));

function delivery(id: string, at: number): Delivery {
  return {
    id, notification_id: 'n1', channel_id: 'c1', channel_name: 'hook', channel_type: 'webhook', status: 'pending', attempts: 0,
    next_attempt_at: at, lease_until: null, last_status: null, last_error: null, created_at: at, updated_at: at, delivered_at: null,
  };
}

async function seedDeliveries(db: SqlDb, n: number, at = 1000): Promise<void> {
  const store = new AlertStore(db);
  await db.tx(async (tx) => {
    await store.insertNotification(tx, {
      id: 'n1', group_id: 'g1', rule_id: 'r1', rule_name: 'r', project_id: 'p', state: 'firing', kind: 'firing', silence_id: null,
      count: 1, payload: {} as never, created_at: at,
    }, Array.from({ length: n }, (_, i) => delivery(`d${String(i).padStart(3, '0')}`, at + i)), []);
  });
}

for (const b of BACKENDS) {
  describe(`control store on ${b.name}`, () => {
    /** Two nodes: two connections to one fresh, migrated database holding `deliveries` due deliveries. */
    async function withTwoNodes(deliveries: number, fn: (n: { n1: SqlDb; n2: SqlDb; s1: AlertStore; s2: AlertStore }) => Promise<void>): Promise<void> {
      const where = await b.fresh();
      const [n1, n2] = [b.connect(where), b.connect(where)];
      try {
        await migrateControl(n1);
        if (deliveries > 0) await seedDeliveries(n1, deliveries);
        await fn({ n1, n2, s1: new AlertStore(n1), s2: new AlertStore(n2) });
      } finally {
        await n1.close();
        await n2.close();
      }
    }

    it('applies each migration once, and once only when two nodes start at the same moment', async () => {
      const where = await b.fresh();
      // two processes, as two engine nodes (or the engine and the keys CLI) would be
      const [a1, a2] = await Promise.all([migrateInChild(b.name, where), migrateInChild(b.name, where)]);
      // one node applied everything, the other found it done
      expect([...a1, ...a2].sort((x, y) => x - y)).toEqual(CONTROL_MIGRATIONS.map((m) => m.version));
      const [n1, n2] = [b.connect(where), b.connect(where)];
      try {
        expect(await migrateControl(n1)).toEqual([]);
        const rows = await n2.all<{ version: number; applied_at: number }>('SELECT version, applied_at FROM schema_migrations ORDER BY version');
        expect(rows.map((r) => r.version)).toEqual(CONTROL_MIGRATIONS.map((m) => m.version));
        expect(typeof rows[0].applied_at).toBe('number');
        // every table the stores use is there
        await seedDeliveries(n1, 1);
        expect(await new AlertStore(n2).getDelivery('d000')).toMatchObject({ status: 'pending', next_attempt_at: 1000 });
      } finally {
        await n1.close();
        await n2.close();
      }
    });

    it('a migration added later is applied on the next start, after the ones before it', async () => {
      const where = await b.fresh();
      const db = b.connect(where);
      try {
        await migrateControl(db);
        const next = { version: LATEST + 1, name: 'test_extra', statements: ['CREATE TABLE test_extra (id TEXT PRIMARY KEY)'] };
        expect(await migrateControl(db, [...CONTROL_MIGRATIONS, next])).toEqual([LATEST + 1]);
        expect(await migrateControl(db, [...CONTROL_MIGRATIONS, next])).toEqual([]);
        // a failing migration leaves nothing half-done: no table, no ledger row
        const bad = { version: LATEST + 2, name: 'bad', statements: ['CREATE TABLE half_done (id TEXT)', 'CREATE TABLE broken ('] };
        await expect(migrateControl(db, [...CONTROL_MIGRATIONS, next, bad])).rejects.toThrow();
        expect((await db.all<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => r.version)).not.toContain(LATEST + 2);
        await expect(db.all('SELECT * FROM half_done')).rejects.toThrow();
      } finally {
        await db.close();
      }
    });

    it("a transaction's conflict rollback never undoes another caller's write (a delivery's recorded attempt)", async () => {
      const db = await openControlStore(b.name === 'sqlite' ? { dataDir: await b.fresh() } : { dataDir: '', databaseUrl: await b.fresh() });
      try {
        await seedDeliveries(db, 1);
        const store = new AlertStore(db);
        const conflict = new Error('conflict');
        let recorded = false;
        // a transaction that writes, waits (an await inside it, as the alert service's does), then rolls back…
        const tx = db.tx(async (t) => {
          await t.run("UPDATE alert_deliveries SET last_error = 'inside the tx' WHERE id = ?", ['d000']);
          await sleep(50);
          expect(recorded).toBe(false); // …and the other caller's statement did not run inside it
          throw conflict;
        });
        // …while the dispatcher records an attempt on the same store
        await sleep(5);
        const attempt = store.recordAttempt('d000', { status: 'delivered', attempts: 1, next_attempt_at: 2000, last_status: 200, last_error: null, now: 2000 })
          .then(() => (recorded = true));
        await expect(tx).rejects.toBe(conflict);
        await attempt;
        expect(await store.getDelivery('d000')).toMatchObject({ status: 'delivered', attempts: 1, last_status: 200, last_error: null, delivered_at: 2000 });
      } finally {
        await db.close();
      }
    });

    it('a lease that changes hands gets a new fencing token; the old holder\'s fenced writes are refused', () => withTwoNodes(0, async ({ n1, n2, s1: a, s2: c }) => {
      const fa = await a.acquireFencedLease('evaluator', 'node-a', 1000, 5000);
      expect(fa).toEqual({ name: 'evaluator', holder: 'node-a', token: 1 });
      // renewing keeps the token; another node cannot take it while it lasts
      expect(await a.acquireFencedLease('evaluator', 'node-a', 3000, 5000)).toEqual(fa);
      expect(await c.acquireFencedLease('evaluator', 'node-c', 7000, 5000)).toBeNull();
      // node-a stops renewing (a pause, a partition): node-c takes over with a higher token
      const fc = await c.acquireFencedLease('evaluator', 'node-c', 8001, 5000);
      expect(fc).toEqual({ name: 'evaluator', holder: 'node-c', token: 2 });
      expect(await a.acquireLease('evaluator', 'node-a', 8002, 5000)).toBe(false);
      // node-a wakes up and writes under its old fence: refused; node-c's write goes through
      expect(await n1.tx((tx) => a.holdsFence(tx, fa!))).toBe(false);
      expect(await n2.tx((tx) => c.holdsFence(tx, fc!))).toBe(true);
      // taken back later: the token grows again, so node-c's fence is stale in turn
      const back = await a.acquireFencedLease('evaluator', 'node-a', 20_000, 5000);
      expect(back?.token).toBe(3);
      expect(await n2.tx((tx) => c.holdsFence(tx, fc!))).toBe(false);
    }));

    it('each due delivery is claimed by exactly one of two nodes claiming at once', () => withTwoNodes(60, async ({ s1, s2 }) => {
      const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? s1 : s2).claimDue(10_000, 10, 30_000, i % 2 ? 'node-1' : 'node-2')));
      const all = claims.flat();
      expect(all).toHaveLength(60);
      expect(new Set(all).size).toBe(60);
      // each within its limit, oldest first; claimed ones are leased, nothing is due any more
      for (const c of claims) expect(c.length).toBeLessThanOrEqual(10);
      for (const c of claims) expect([...c].sort()).toEqual(c);
      expect(await s2.claimDue(10_000, 10, 30_000, 'node-2')).toEqual([]);
      expect(await s1.getDelivery('d007')).toMatchObject({ status: 'sending', lease_until: 40_000 });
      // a lease that expires makes the delivery claimable again
      expect(await s1.releaseExpiredLeases(50_000)).toBe(60);
      expect(await s2.claimDue(50_000, 100, 1000, 'node-2')).toHaveLength(60);
    }));

    it('a node takes back its own leases at once (its restart, its stop), never another node\'s nor one it is still sending', () => withTwoNodes(20, async ({ s1, s2 }) => {
      const mine = await s1.claimDue(10_000, 10, 30_000, 'node-1');
      const theirs = await s2.claimDue(10_000, 10, 30_000, 'node-2');
      expect(mine).toHaveLength(10);
      expect(theirs).toHaveLength(10);
      // node-1 stops while still sending its first delivery: the other nine go back, that one stays
      expect(await s1.releaseLeasesOf('node-1', [mine[0]])).toBe(9);
      expect(await s1.getDelivery(mine[0])).toMatchObject({ status: 'sending', lease_until: 40_000 });
      expect(await s1.getDelivery(mine[1])).toMatchObject({ status: 'pending', lease_until: null });
      // node-1 starts again: its last lease goes back long before it would expire; node-2's stay
      expect(await s1.releaseLeasesOf('node-1')).toBe(1);
      for (const id of theirs) expect(await s1.getDelivery(id)).toMatchObject({ status: 'sending' });
      expect(await s1.claimDue(10_001, 100, 30_000, 'node-1')).toHaveLength(10);
    }));

    it('a first attempt made at once claims its deliveries: one another node holds is not handed out twice', () => withTwoNodes(4, async ({ s1, s2 }) => {
      // node-2's loop took two of them first
      expect(await s2.claimDue(10_000, 2, 30_000, 'node-2')).toEqual(['d000', 'd001']);
      expect((await s1.claimIds(['d000', 'd001', 'd002', 'd003'], 10_000, 30_000, 'node-1')).sort()).toEqual(['d002', 'd003']);
      expect(await s1.claimIds(['d000', 'd002'], 10_000, 30_000, 'node-1')).toEqual([]);
      expect(await s2.getDelivery('d002')).toMatchObject({ status: 'sending', lease_until: 40_000 });
      expect(await s2.claimDue(10_000, 10, 30_000, 'node-2')).toEqual([]);
    }));
  });
}

describe('control store on postgres, connections lost', () => {
  it('a connection cut mid-transaction fails that transaction only; the store carries on with new connections', async () => {
    const url = await createTestDatabase();
    const db = new PgDb(url);
    const admin = new PgDb(url);
    try {
      await migrateControl(db);
      const kill = (pid: number) => admin.all('SELECT pg_terminate_backend(?)', [pid]);
      // cut inside a transaction (as a PostgreSQL restart would)
      const cut = db.tx(async (tx) => {
        const [{ pid }] = await tx.all<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await tx.run("INSERT INTO alert_leases (name, holder, until_ms) VALUES ('cut', 'x', 1)");
        await kill(pid);
        await sleep(100);
        await tx.run("INSERT INTO alert_leases (name, holder, until_ms) VALUES ('cut2', 'x', 1)");
      });
      await expect(cut).rejects.toThrow();
      // cut while idle in the pool
      const [{ pid }] = await db.all<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await kill(pid);
      await sleep(100);
      // nothing of the cut transaction was kept, and the store answers again
      const after = async () => db.all<{ name: string }>('SELECT name FROM alert_leases');
      let rows = await after().catch(() => after());
      expect(rows).toEqual([]);
      await db.tx((tx) => tx.run("INSERT INTO alert_leases (name, holder, until_ms) VALUES ('ok', 'x', 1)"));
      rows = await after();
      expect(rows.map((r) => r.name)).toEqual(['ok']);
    } finally {
      await db.close();
      await admin.close();
    }
  });
});

describe('SQL dialect', () => {
  it('rewrites ? placeholders for PostgreSQL outside literals', () => {
    expect(toPgPlaceholders("SELECT * FROM t WHERE a = ? AND b = '?' AND \"c?\" IN (?, ?)")).toBe("SELECT * FROM t WHERE a = $1 AND b = '?' AND \"c?\" IN ($2, $3)");
  });

  it('SQLite: the shared handle used inside a transaction is refused at once, not a deadlock', async () => {
    const dir = tempDir('pm-control-');
    dirs.push(dir);
    const db = await openControlStore({ dataDir: dir });
    try {
      await expect(db.tx(async () => db.all('SELECT 1'))).rejects.toBeInstanceOf(NestedStatementError);
      // and the store is usable afterwards
      expect(await db.all<{ x: number }>('SELECT 1 AS x')).toEqual([{ x: 1 }]);
      // the guard is switched on per transaction: the next one is guarded as well, after an await
      await db.tx(async (t) => t.run('CREATE TABLE IF NOT EXISTS guard_probe (x INTEGER)'));
      await expect(db.tx(async () => {
        await new Promise((r) => setTimeout(r, 1));
        return db.run('INSERT INTO guard_probe VALUES (1)');
      })).rejects.toBeInstanceOf(NestedStatementError);
      expect(await db.all('SELECT x FROM guard_probe')).toEqual([]);
    } finally {
      await db.close();
    }
  });
});
