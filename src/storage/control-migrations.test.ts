// Migration 8: a store with the old error_groups layout (a rowid table plus the index of its primary
// key) is rebuilt WITHOUT ROWID on SQLite, rows kept, file shrunk; PostgreSQL records the version
// and keeps its table as it was.
import { afterAll, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { createTestDatabase, dropTestDatabases } from '../../test/control-db.js';
import { removeDir, tempDir } from '../../test/helpers.js';
import { ErrorGroups } from '../aggregator/groups.js';
import { GroupSignals } from '../aggregator/signals.js';
import { CONTROL_MIGRATIONS, migrateControl } from './control-migrations.js';
import { PgDb } from './pg-db.js';
import { SqliteDb, type SqlDb } from './sql-db.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) removeDir(d);
  await dropTestDatabases();
});

const OLD = CONTROL_MIGRATIONS.filter((m) => m.version < 8);
/** What a store of OLD is given now: migration 8 and any after it. */
const NEWER = CONTROL_MIGRATIONS.filter((m) => m.version >= 8).map((m) => m.version);
const GROUPS = 3000;

/** Old-layout groups: a few resolved, the rest open. */
async function seed(db: SqlDb): Promise<void> {
  await db.tx(async (tx) => {
    for (let i = 0; i < GROUPS; i++) {
      await tx.run(
        `INSERT INTO error_groups (project_id, fingerprint, state, first_seen, resolved_at, regressions, updated_by, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        [`project-${i % 50}`, `fp-${i.toString(16).padStart(40, '0')}`, i % 10 === 0 ? 'resolved' : 'open', 1000 + i, i % 10 === 0 ? 5000 : null, i % 3, i % 10 === 0 ? 'ann' : null, 2000 + i],
      );
    }
  });
}

const dump = (db: SqlDb) => db.all<Record<string, unknown>>('SELECT * FROM error_groups ORDER BY project_id, fingerprint');

function sqliteBytes(dir: string): number {
  let n = 0;
  for (const f of ['control.sqlite', 'control.sqlite-wal']) {
    try {
      n += statSync(join(dir, f)).size;
    } catch {
      // no WAL file once the last connection closed
    }
  }
  return n;
}

describe('control migration 8: error_groups WITHOUT ROWID', () => {
  it('SQLite: the old table is rebuilt without rowid, every row kept, the file smaller, the store works as before', async () => {
    const dir = tempDir('pm-control-');
    dirs.push(dir);
    const file = join(dir, 'control.sqlite');
    let db = new SqliteDb(file);
    await migrateControl(db, OLD);
    await seed(db);
    const before = await dump(db);
    const ddl = async () => (await db.all<{ sql: string }>("SELECT sql FROM sqlite_master WHERE tbl_name = 'error_groups'")).map((r) => r.sql);
    // the old layout: the table, and the automatic index of its primary key (no SQL of its own)
    expect(await ddl()).toHaveLength(2);
    await db.close();
    const oldBytes = sqliteBytes(dir);

    db = new SqliteDb(file);
    expect(await migrateControl(db)).toEqual(NEWER);
    const tables = await ddl();
    expect(tables).toHaveLength(1);
    expect(tables[0]).toMatch(/WITHOUT ROWID\s*$/);
    expect(await dump(db)).toEqual(before);
    // vacuumed: the dropped table's pages left the file
    expect(await db.all('PRAGMA freelist_count')).toEqual([{ freelist_count: 0 }]);
    expect(await migrateControl(db)).toEqual([]);

    // the aggregator's statements on the rebuilt table: upsert, reads, state change
    const groups = new ErrorGroups(db, new GroupSignals());
    await groups.init();
    expect(await groups.get('project-0', before[0].fingerprint as string)).toMatchObject({ state: before[0].state, first_seen: before[0].first_seen });
    await groups.observe([{ project_id: 'project-new', fingerprint: 'fp-new', timestamp: 9000 } as never]);
    expect(await groups.get('project-new', 'fp-new')).toMatchObject({ state: 'open', first_seen: 9000, regressions: 0 });
    expect((await groups.setState('project-new', 'fp-new', 'resolved', 'ann'))?.state).toBe('resolved');
    expect((await groups.notOpen(['project-new'])).map((g) => g.fingerprint)).toEqual(['fp-new']);
    await db.close();
    // the index of the primary key was as large as the rows: a third of the file or more goes
    expect(sqliteBytes(dir)).toBeLessThan(oldBytes * 0.75);
  });

  it('PostgreSQL: the version is recorded, the table and its rows are left as they were', async () => {
    const db = new PgDb(await createTestDatabase());
    try {
      await migrateControl(db, OLD);
      await seed(db);
      const before = await dump(db);
      const columns = () => db.all("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'error_groups' ORDER BY ordinal_position");
      const layout = await columns();
      expect(await migrateControl(db)).toEqual(NEWER);
      expect(await db.all<{ version: number }>('SELECT version FROM schema_migrations WHERE version = 8')).toHaveLength(1);
      expect(await columns()).toEqual(layout);
      expect(await db.all("SELECT 1 FROM information_schema.tables WHERE table_name = 'error_groups_rebuilt'")).toEqual([]);
      expect(await dump(db)).toEqual(before);
    } finally {
      await db.close();
    }
  });
});
