// Which control store the tests run on. `npm test` runs the control-store suites twice: on SQLite (the
// default) and on the machine's PostgreSQL (project "control-pg" in vitest.config.ts sets
// PURAIFY_TEST_CONTROL_DB=postgres). Each data dir gets a fresh database of its own (so a restart on
// the same dir finds its state again), dropped when the test file ends.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrateControl } from '../src/storage/control-migrations.js';
import { PgDb } from '../src/storage/pg-db.js';

/** The server the tests use: local, trust auth. */
export const PG_ADMIN_URL = process.env.PURAIFY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const PG_MODE = process.env.PURAIFY_TEST_CONTROL_DB === 'postgres';

const created: string[] = [];

function urlOf(db: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${db}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A new, empty database; dropped by dropTestDatabases(). */
export async function createTestDatabase(): Promise<string> {
  const name = `pm_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  created.push(name);
  return urlOf(name);
}

export async function dropTestDatabases(): Promise<void> {
  if (created.length === 0) return;
  await admin(async (c) => {
    // FORCE: an engine a test left open still holds connections
    for (const name of created.splice(0)) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
}

/** The environment that puts a data dir's control state where this run wants it ({} = SQLite in the dir). */
export async function controlEnv(dataDir: string): Promise<Record<string, string>> {
  if (!PG_MODE) return {};
  const file = join(dataDir, '.test-database-url');
  if (existsSync(file)) return { MONITORING_DATABASE_URL: readFileSync(file, 'utf8') };
  const url = await createTestDatabase();
  writeFileSync(file, url);
  return { MONITORING_DATABASE_URL: url };
}

/** Everything the control store of a data dir holds, as text: the SQLite files' bytes, or every PostgreSQL row. */
export async function dumpControlStore(dataDir: string): Promise<string> {
  if (!PG_MODE) {
    const files = ['control.sqlite', 'control.sqlite-wal'].map((f) => join(dataDir, f)).filter(existsSync);
    if (files.length === 0) throw new Error(`no control store in ${dataDir}`);
    return files.map((f) => readFileSync(f).toString('latin1')).join('');
  }
  const c = new pg.Client({ connectionString: (await controlEnv(dataDir)).MONITORING_DATABASE_URL });
  await c.connect();
  try {
    const tables = await c.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'");
    if (tables.rows.length === 0) throw new Error('no control tables in PostgreSQL');
    let out = '';
    for (const { t } of tables.rows) out += JSON.stringify((await c.query(`SELECT * FROM "${t}"`)).rows);
    return out;
  } finally {
    await c.end();
  }
}

/**
 * Two connections to one fresh, migrated PostgreSQL database, as two engine nodes hold them; closed
 * (and the databases dropped) by the returned cleanup, for an afterAll.
 */
export function twoPgNodes(): { open(): Promise<[PgDb, PgDb]>; cleanup(): Promise<void> } {
  const dbs: PgDb[] = [];
  return {
    async open() {
      const url = await createTestDatabase();
      const a = new PgDb(url);
      const b = new PgDb(url);
      dbs.push(a, b);
      await migrateControl(a);
      return [a, b];
    },
    async cleanup() {
      for (const d of dbs) await d.close();
      await dropTestDatabases();
    },
  };
}
