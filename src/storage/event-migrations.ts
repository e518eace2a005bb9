// The event store's schema as versioned migrations, recorded in a `schema_migrations` table in
// ClickHouse itself (the events may outlive or move away from the control store). Run at start,
// idempotent; two nodes starting at once take turns through the control store's migration lock
// (control-migrations.ts), since ClickHouse has no locks of its own.
import type { ClickHouseTransport } from './transport.js';
import type { SqlDb } from './sql-db.js';
import { migrateEventStore } from './migrate.js';
import { MIGRATION_LOCK_KEY, type Migration } from './control-migrations.js';

/**
 * The tables themselves are brought to schema.ts's layout by migrate.ts (idempotent: it looks at
 * what exists and changes only that, for the server's features), at every start under the lock.
 * Versions here are one-off steps on top of it; version 1 marks the layout of this release.
 */
export const EVENT_MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'layout', statements: [] },
];

const LEDGER = `CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at Int64)
  ENGINE = MergeTree() ORDER BY version`;

/** Versions recorded in the event store. */
export async function appliedEventMigrations(t: ClickHouseTransport): Promise<number[]> {
  const rows = await t.query<{ version: number }>('SELECT DISTINCT version FROM schema_migrations ORDER BY version');
  return rows.map((r) => Number(r.version));
}

/**
 * Applies the event migrations not yet recorded, in order, holding the control store's migration
 * lock meanwhile (PostgreSQL: an advisory lock; SQLite: its write lock). Returns what it applied.
 */
export async function migrateEvents(t: ClickHouseTransport, lock: SqlDb, migrations: readonly Migration[] = EVENT_MIGRATIONS): Promise<number[]> {
  return lock.tx(async (tx) => {
    if (tx.dialect === 'postgres') await tx.all('SELECT pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY]);
    await migrateEventStore(t);
    await t.exec(LEDGER);
    const done = new Set(await appliedEventMigrations(t));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      // each statement is idempotent (IF NOT EXISTS / IF EXISTS), so a crash before the ledger row is harmless
      for (const s of m.statements) await t.exec(s);
      await t.insertCompact('schema_migrations', ['version', 'name', 'applied_at'], Buffer.from(JSON.stringify([m.version, m.name, Date.now()])));
      applied.push(m.version);
    }
    return applied;
  });
}
