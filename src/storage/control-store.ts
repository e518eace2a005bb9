// Opens the control store the settings ask for and brings its schema up to date.
import { join } from 'node:path';
import { SqliteDb, type SqlDb } from './sql-db.js';
import { PgDb } from './pg-db.js';
import { migrateControl } from './control-migrations.js';

export async function openControlStore(o: { dataDir: string; databaseUrl?: string }): Promise<SqlDb> {
  const db: SqlDb = o.databaseUrl ? new PgDb(o.databaseUrl) : new SqliteDb(join(o.dataDir, 'control.sqlite'));
  try {
    await migrateControl(db);
    return db;
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
}
