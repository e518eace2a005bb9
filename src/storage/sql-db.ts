// The control store's SQL connection: SQLite embedded (better-sqlite3) or PostgreSQL (pg).
// MetaStore code is written once in the SQL both understand: `?` placeholders (rewritten to $n for
// PostgreSQL), TEXT/INTEGER/REAL columns, ON CONFLICT upserts, ids made by the engine.
import Database from 'better-sqlite3';

export type SqlValue = string | number | null;

export interface SqlDb {
  readonly dialect: 'sqlite' | 'postgres';
  all<T>(sql: string, params?: SqlValue[]): Promise<T[]>;
  run(sql: string, params?: SqlValue[]): Promise<{ changes: number }>;
  /** Runs fn in one transaction; the db handed to fn must be used for every statement in it. */
  tx<T>(fn: (db: SqlDb) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export class SqliteDb implements SqlDb {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly cache = new Map<string, Database.Statement>();
  private txQueue: Promise<unknown> = Promise.resolve();

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // FULL: a committed row (an alert in the outbox, a key) survives power loss, not just kill -9
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
  }

  private stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  async all<T>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return this.stmt(sql).all(...params) as T[];
  }

  async run(sql: string, params: SqlValue[] = []): Promise<{ changes: number }> {
    return { changes: this.stmt(sql).run(...params).changes };
  }

  /**
   * better-sqlite3 is synchronous, but fn is async: transactions are serialised through a queue so
   * two never interleave on the one connection.
   */
  tx<T>(fn: (db: SqlDb) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const out = await fn(this);
        this.db.exec('COMMIT');
        return out;
      } catch (e) {
        this.db.exec('ROLLBACK');
        throw e;
      }
    };
    const p = this.txQueue.then(run, run);
    this.txQueue = p.catch(() => undefined);
    return p;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
