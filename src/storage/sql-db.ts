// The control store's SQL connection: SQLite embedded (better-sqlite3), or PostgreSQL (pg-db.ts) when
// MONITORING_DATABASE_URL is set. Store code is written once in the SQL both understand: `?`
// placeholders (PgDb rewrites them to $n), TEXT/INTEGER/BIGINT columns, ON CONFLICT upserts, ids
// made by the engine.
import { AsyncLocalStorage } from 'node:async_hooks';
import Database from 'better-sqlite3';

export type SqlValue = string | number | null;

export interface SqlDb {
  readonly dialect: 'sqlite' | 'postgres';
  all<T>(sql: string, params?: SqlValue[]): Promise<T[]>;
  run(sql: string, params?: SqlValue[]): Promise<{ changes: number }>;
  /**
   * Runs fn in one transaction; the db handed to fn must be used for every statement in it. No
   * statement of another caller runs inside it, and it sees none of theirs half-done.
   */
  tx<T>(fn: (db: SqlDb) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Thrown when code inside a transaction uses the shared handle instead of the tx handle (it would wait for itself). */
export class NestedStatementError extends Error {
  constructor() {
    super('a statement on the shared control-store handle inside a transaction: use the handle tx() passed in');
  }
}

/** A FIFO mutex: the one SQLite connection is held by one transaction, or one statement, at a time. */
class Mutex {
  private held = false;
  private readonly waiters: (() => void)[] = [];

  get free(): boolean {
    return !this.held;
  }

  async acquire(): Promise<void> {
    if (!this.held) {
      this.held = true;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next(); // stays held, handed over
    else this.held = false;
  }
}

/**
 * Switching to WAL needs an exclusive lock, and SQLite answers SQLITE_BUSY at once (no busy handler,
 * to avoid a deadlock) when another process opens the same new file at the same moment, e.g. two
 * nodes or the keys CLI starting together. Retry for up to 5 s, sleeping the thread: this runs once,
 * at open.
 */
function withBusyRetry<T>(fn: () => T): T {
  const deadline = Date.now() + 5000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      return fn();
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw err;
      Atomics.wait(pause, 0, 0, 20);
    }
  }
}

export class SqliteDb implements SqlDb {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly cache = new Map<string, Database.Statement>();
  private readonly lock = new Mutex();
  /**
   * Set inside a transaction's callback (and what it awaits): the shared handle must not be used
   * there. Enabled only while a transaction is open: an enabled AsyncLocalStorage turns on promise
   * hooks for the whole process, a cost on every request's promises.
   */
  private readonly inTx = new AsyncLocalStorage<true>();
  private txOpen = false;

  constructor(file: string) {
    this.db = new Database(file, { timeout: 5000 });
    withBusyRetry(() => this.db.pragma('journal_mode = WAL'));
    // FULL: a committed row (an alert in the outbox, a key) survives power loss, not just kill -9
    this.db.pragma('synchronous = FULL');
  }

  private stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  /**
   * better-sqlite3 runs a statement synchronously, so a statement alone cannot interleave with
   * anything; but a transaction spans awaits. Statements run at once when no transaction holds the
   * connection, and wait for it otherwise, so a rollback never takes another caller's write along.
   */
  private async exclusive<T>(fn: () => T): Promise<T> {
    if (this.txOpen && this.inTx.getStore()) throw new NestedStatementError();
    if (this.lock.free) return fn();
    await this.lock.acquire();
    try {
      return fn();
    } finally {
      this.lock.release();
    }
  }

  all<T>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return this.exclusive(() => this.stmt(sql).all(...params) as T[]);
  }

  run(sql: string, params: SqlValue[] = []): Promise<{ changes: number }> {
    return this.exclusive(() => ({ changes: this.stmt(sql).run(...params).changes }));
  }

  /** BEGIN IMMEDIATE also takes SQLite's write lock, so another process (the keys CLI) waits too. */
  async tx<T>(fn: (db: SqlDb) => Promise<T>): Promise<T> {
    if (this.txOpen && this.inTx.getStore()) throw new NestedStatementError();
    await this.lock.acquire();
    let open = true;
    const check = () => {
      if (!open) throw new Error('the transaction is over: its handle may not be used any more');
    };
    const handle: SqlDb = {
      dialect: 'sqlite',
      all: async <R>(sql: string, params: SqlValue[] = []) => (check(), this.stmt(sql).all(...params) as R[]),
      run: async (sql: string, params: SqlValue[] = []) => (check(), { changes: this.stmt(sql).run(...params).changes }),
      tx: () => Promise.reject(new NestedStatementError()),
      close: () => Promise.reject(new Error('close the store, not a transaction')),
    };
    try {
      this.db.exec('BEGIN IMMEDIATE');
      this.txOpen = true;
      try {
        const out = await this.inTx.run(true, () => fn(handle));
        this.db.exec('COMMIT');
        return out;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    } finally {
      open = false;
      this.txOpen = false;
      // what the callback left running (a timer, a promise) sees no store any more either
      this.inTx.disable();
      this.lock.release();
    }
  }

  async close(): Promise<void> {
    await this.lock.acquire();
    this.db.close();
  }
}
