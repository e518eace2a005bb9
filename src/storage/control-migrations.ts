// The control store's schema as versioned migrations, the same SQL for SQLite and PostgreSQL. Applied
// at start (and by the keys CLI) in one transaction that first takes a lock, so two nodes starting at
// once apply each migration once: PostgreSQL's advisory lock, SQLite's write lock (BEGIN IMMEDIATE).
// Applied versions are rows of `schema_migrations`. A migration is never edited once released: change
// the schema by appending one.
import type { SqlDb } from './sql-db.js';

export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
  /**
   * Only on this database; on the other it is recorded as applied with nothing run (a layout detail
   * one of them has no word for, such as SQLite's WITHOUT ROWID).
   */
  only?: SqlDb['dialect'];
  /** SQLite: VACUUM once the migrations are committed, so the pages a rebuilt table freed leave the file. */
  vacuum?: boolean;
}

/** pg_advisory_xact_lock key: "purai" in ASCII, so other applications on the database do not collide. */
export const MIGRATION_LOCK_KEY = 0x7075726169;

export const CONTROL_MIGRATIONS: readonly Migration[] = [
  {
    // the tables of the releases before versioned migrations (IF NOT EXISTS: their stores are adopted as they are)
    version: 1,
    name: 'initial',
    statements: [
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
      `CREATE TABLE IF NOT EXISTS project_settings (
         project_id TEXT PRIMARY KEY,
         settings TEXT NOT NULL,
         updated_at BIGINT NOT NULL,
         updated_by TEXT
       )`,
      `CREATE TABLE IF NOT EXISTS error_groups (
         project_id TEXT NOT NULL,
         fingerprint TEXT NOT NULL,
         state TEXT NOT NULL,
         first_seen BIGINT NOT NULL,
         resolved_at BIGINT,
         regressed_at BIGINT,
         regressions INTEGER NOT NULL DEFAULT 0,
         updated_by TEXT,
         updated_at BIGINT NOT NULL,
         PRIMARY KEY (project_id, fingerprint)
       )`,
      `CREATE TABLE IF NOT EXISTS alert_channels (
         id TEXT PRIMARY KEY,
         project_id TEXT,
         name TEXT NOT NULL,
         type TEXT NOT NULL,
         config TEXT NOT NULL,
         is_default INTEGER NOT NULL DEFAULT 0,
         created_at BIGINT NOT NULL,
         updated_at BIGINT NOT NULL,
         created_by TEXT
       )`,
      `CREATE TABLE IF NOT EXISTS alert_rules (
         id TEXT PRIMARY KEY,
         project_id TEXT,
         name TEXT NOT NULL,
         kind TEXT NOT NULL,
         enabled INTEGER NOT NULL,
         spec TEXT NOT NULL,
         created_at BIGINT NOT NULL,
         updated_at BIGINT NOT NULL,
         created_by TEXT
       )`,
      `CREATE TABLE IF NOT EXISTS alert_silences (
         id TEXT PRIMARY KEY,
         project_id TEXT,
         matchers TEXT NOT NULL,
         starts_at BIGINT NOT NULL,
         ends_at BIGINT NOT NULL,
         comment TEXT NOT NULL,
         created_by TEXT,
         created_at BIGINT NOT NULL,
         updated_at BIGINT NOT NULL
       )`,
      `CREATE TABLE IF NOT EXISTS alert_groups (
         id TEXT PRIMARY KEY,
         rule_id TEXT NOT NULL,
         project_id TEXT NOT NULL,
         labels TEXT NOT NULL,
         context TEXT NOT NULL,
         state TEXT NOT NULL,
         episode_start BIGINT NOT NULL,
         first_seen BIGINT NOT NULL,
         last_seen BIGINT NOT NULL,
         count BIGINT NOT NULL,
         value DOUBLE PRECISION,
         detail TEXT NOT NULL,
         seq INTEGER NOT NULL,
         last_notified_at BIGINT,
         last_silenced INTEGER NOT NULL,
         episode_sent INTEGER NOT NULL,
         resolved_at BIGINT,
         updated_at BIGINT NOT NULL
       )`,
      'CREATE INDEX IF NOT EXISTS alert_groups_by_rule ON alert_groups (rule_id, state)',
      `CREATE TABLE IF NOT EXISTS alert_notifications (
         id TEXT PRIMARY KEY,
         group_id TEXT NOT NULL,
         rule_id TEXT NOT NULL,
         rule_name TEXT NOT NULL,
         project_id TEXT NOT NULL,
         state TEXT NOT NULL,
         kind TEXT NOT NULL,
         silence_id TEXT,
         count BIGINT NOT NULL,
         payload TEXT NOT NULL,
         created_at BIGINT NOT NULL
       )`,
      'CREATE INDEX IF NOT EXISTS alert_notifications_by_project ON alert_notifications (project_id, created_at)',
      'CREATE INDEX IF NOT EXISTS alert_notifications_by_group ON alert_notifications (group_id, created_at)',
      `CREATE TABLE IF NOT EXISTS alert_deliveries (
         id TEXT PRIMARY KEY,
         notification_id TEXT NOT NULL,
         channel_id TEXT NOT NULL,
         channel_name TEXT NOT NULL,
         channel_type TEXT NOT NULL,
         status TEXT NOT NULL,
         attempts INTEGER NOT NULL,
         next_attempt_at BIGINT NOT NULL,
         lease_until BIGINT,
         last_status INTEGER,
         last_error TEXT,
         created_at BIGINT NOT NULL,
         updated_at BIGINT NOT NULL,
         delivered_at BIGINT
       )`,
      'CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (status, next_attempt_at)',
      'CREATE INDEX IF NOT EXISTS alert_deliveries_by_notification ON alert_deliveries (notification_id)',
      `CREATE TABLE IF NOT EXISTS alert_ui_notifications (
         id TEXT PRIMARY KEY,
         notification_id TEXT NOT NULL,
         channel_id TEXT NOT NULL,
         project_id TEXT NOT NULL,
         payload TEXT NOT NULL,
         created_at BIGINT NOT NULL,
         read_at BIGINT
       )`,
      'CREATE INDEX IF NOT EXISTS alert_ui_by_project ON alert_ui_notifications (project_id, created_at)',
      `CREATE TABLE IF NOT EXISTS alert_leases (
         name TEXT PRIMARY KEY,
         holder TEXT NOT NULL,
         until_ms BIGINT NOT NULL
       )`,
    ],
  },
  {
    // retention prunes history by age across projects
    version: 2,
    name: 'history_by_age',
    statements: [
      'CREATE INDEX IF NOT EXISTS alert_notifications_by_age ON alert_notifications (created_at)',
      'CREATE INDEX IF NOT EXISTS alert_ui_by_age ON alert_ui_notifications (created_at)',
      'CREATE INDEX IF NOT EXISTS alert_deliveries_by_age ON alert_deliveries (created_at)',
    ],
  },
  {
    // a fencing token per lease: it grows whenever another holder takes the lease over
    version: 3,
    name: 'lease_fencing_token',
    statements: ['ALTER TABLE alert_leases ADD COLUMN token BIGINT NOT NULL DEFAULT 0'],
  },
  {
    // forwarding to Sentry / Datadog: each project's targets, and the payloads its outbox rows point at
    version: 4,
    name: 'forwarding',
    statements: [
      `CREATE TABLE IF NOT EXISTS forwarding_configs (
         project_id TEXT PRIMARY KEY,
         config TEXT NOT NULL,
         updated_at BIGINT NOT NULL,
         updated_by TEXT
       )`,
      `CREATE TABLE IF NOT EXISTS forwarding_payloads (
         id TEXT PRIMARY KEY,
         project_id TEXT NOT NULL,
         target TEXT NOT NULL,
         body TEXT NOT NULL,
         events INTEGER NOT NULL,
         created_at BIGINT NOT NULL
       )`,
      'CREATE INDEX IF NOT EXISTS forwarding_payloads_by_project ON forwarding_payloads (project_id, target)',
    ],
  },
  {
    // acknowledged alert groups; DSN-safe aliases of project keys (Sentry SDKs take only \w+ as a DSN's key)
    version: 5,
    name: 'acks_and_dsn_keys',
    statements: [
      `CREATE TABLE IF NOT EXISTS alert_group_acks (
         group_id TEXT PRIMARY KEY,
         episode_start BIGINT NOT NULL,
         acknowledged_at BIGINT NOT NULL,
         acknowledged_by TEXT
       )`,
      `CREATE TABLE IF NOT EXISTS dsn_keys (
         public_key TEXT PRIMARY KEY,
         key_id TEXT NOT NULL,
         project_id TEXT NOT NULL,
         created_at BIGINT NOT NULL
       )`,
      'CREATE UNIQUE INDEX IF NOT EXISTS dsn_keys_key_project ON dsn_keys (key_id, project_id)',
    ],
  },
  {
    // engine-raised alerts already routed, so a resent one (same id) is answered, not routed again
    version: 6,
    name: 'alert_routes',
    statements: [
      `CREATE TABLE IF NOT EXISTS alert_routes (
         project_id TEXT NOT NULL,
         event_id TEXT NOT NULL,
         notified INTEGER NOT NULL,
         channels TEXT NOT NULL,
         created_at BIGINT NOT NULL,
         PRIMARY KEY (project_id, event_id)
       )`,
    ],
  },
  {
    // clusters (PostgreSQL) only, created on both: the id registry (src/storage/id-claims.ts) and the
    // shared rate-limit buckets (src/auth/shared-rate-limit.ts)
    version: 7,
    name: 'cluster_claims_and_buckets',
    statements: [
      `CREATE TABLE IF NOT EXISTS event_claims (
         project_id TEXT NOT NULL,
         id TEXT NOT NULL,
         claimant TEXT NOT NULL,
         claimed_at BIGINT NOT NULL,
         PRIMARY KEY (project_id, id)
       )`,
      'CREATE INDEX IF NOT EXISTS event_claims_by_age ON event_claims (claimed_at)',
      `CREATE TABLE IF NOT EXISTS rate_buckets (
         key TEXT PRIMARY KEY,
         tokens DOUBLE PRECISION NOT NULL,
         per_minute DOUBLE PRECISION NOT NULL,
         at_ms BIGINT NOT NULL,
         granted DOUBLE PRECISION NOT NULL
       )`,
    ],
  },
  {
    // SQLite: error_groups keyed by its natural key alone. A rowid table keeps the rows and a
    // separate index of (project_id, fingerprint), half the file each; WITHOUT ROWID stores the rows
    // in that index. Rebuilt (SQLite cannot change it in place), same columns in the same order;
    // the table has no other indexes. PostgreSQL has no rowid: nothing to do there.
    version: 8,
    name: 'error_groups_without_rowid',
    only: 'sqlite',
    vacuum: true,
    statements: [
      `CREATE TABLE error_groups_rebuilt (
         project_id TEXT NOT NULL,
         fingerprint TEXT NOT NULL,
         state TEXT NOT NULL,
         first_seen BIGINT NOT NULL,
         resolved_at BIGINT,
         regressed_at BIGINT,
         regressions INTEGER NOT NULL DEFAULT 0,
         updated_by TEXT,
         updated_at BIGINT NOT NULL,
         PRIMARY KEY (project_id, fingerprint)
       ) WITHOUT ROWID`,
      `INSERT INTO error_groups_rebuilt (project_id, fingerprint, state, first_seen, resolved_at, regressed_at, regressions, updated_by, updated_at)
       SELECT project_id, fingerprint, state, first_seen, resolved_at, regressed_at, regressions, updated_by, updated_at FROM error_groups`,
      'DROP TABLE error_groups',
      'ALTER TABLE error_groups_rebuilt RENAME TO error_groups',
    ],
  },
  {
    // which node holds a delivery's lease: a node restarted after a crash takes back its own at once
    // instead of waiting for them to expire (on PostgreSQL other nodes' leases are left alone)
    version: 9,
    name: 'delivery_lease_owner',
    statements: ['ALTER TABLE alert_deliveries ADD COLUMN lease_owner TEXT'],
  },
];

const LEDGER = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`;

/**
 * Applies the migrations not yet recorded, in order, all in one transaction (DDL is transactional in
 * both databases). Returns the versions it applied (none when another node got there first).
 */
export async function migrateControl(db: SqlDb, migrations: readonly Migration[] = CONTROL_MIGRATIONS): Promise<number[]> {
  const applied = await db.tx(async (tx) => {
    // PostgreSQL: concurrent CREATE TABLE IF NOT EXISTS can still collide; the lock comes first
    if (tx.dialect === 'postgres') await tx.all('SELECT pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY]);
    await tx.run(LEDGER);
    const done = new Set((await tx.all<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      if (!m.only || m.only === tx.dialect) for (const s of m.statements) await tx.run(s);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
      applied.push(m.version);
    }
    return applied;
  });
  // VACUUM cannot run inside a transaction. Skipping it (a crash first, or another process still
  // reading past the busy timeout) only leaves free pages in the file, which later writes reuse.
  if (db.dialect === 'sqlite' && migrations.some((m) => m.vacuum && applied.includes(m.version))) {
    await db.run('VACUUM').catch((e: unknown) => {
      if (!/^SQLITE_(BUSY|LOCKED)/.test(String((e as { code?: string }).code))) throw e;
    });
  }
  return applied;
}
