// Control-state tables (keys, rules, channels, silences, group state, outbox, leases), in SQL that
// SQLite and PostgreSQL both run. Statements are idempotent; they run at every start.
import type { SqlDb } from './sql-db.js';

const STATEMENTS = [
  `CREATE TABLE IF NOT EXISTS api_keys (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,
     prefix TEXT NOT NULL,
     scopes TEXT NOT NULL,
     project_id TEXT,
     created_at BIGINT NOT NULL,
     expires_at BIGINT,
     revoked_at BIGINT,
     last_used_at BIGINT,
     requests_per_minute INTEGER,
     events_per_minute INTEGER
   )`,
  // DSN-safe aliases of project keys (Sentry SDKs accept only \w+ as a DSN's public key): ingest only,
  // for one project, living and dying with the key they belong to
  `CREATE TABLE IF NOT EXISTS dsn_keys (
     public_key TEXT PRIMARY KEY,
     key_id TEXT NOT NULL,
     project_id TEXT NOT NULL,
     created_at BIGINT NOT NULL
   )`,
  'CREATE UNIQUE INDEX IF NOT EXISTS dsn_keys_key_project ON dsn_keys (key_id, project_id)',
];

export async function migrateMeta(db: SqlDb, extra: readonly string[] = []): Promise<void> {
  for (const s of [...STATEMENTS, ...extra]) await db.run(s);
}
