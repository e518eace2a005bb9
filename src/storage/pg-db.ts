// The control store on PostgreSQL (MONITORING_DATABASE_URL=postgres://…), for several engine nodes
// sharing one control state. The same store SQL as SQLite: `?` placeholders become $1…$n here.
// Statements run on a pool; a transaction holds one pooled connection of its own, so no other
// caller's statement can run inside it.
import pg from 'pg';
import type { SqlDb, SqlValue } from './sql-db.js';

const INT8 = 20;

/** `?` → `$n`, outside string literals and quoted identifiers. Cached: the store's SQL is a fixed set. */
const rewritten = new Map<string, string>();
export function toPgPlaceholders(sql: string): string {
  let out = rewritten.get(sql);
  if (out !== undefined) return out;
  let n = 0;
  let quote: string | null = null;
  out = '';
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else out += ch === '?' ? `$${++n}` : ch;
  }
  if (rewritten.size < 10_000) rewritten.set(sql, out);
  return out;
}

// BIGINT columns hold millisecond timestamps and counts, all far below 2^53: numbers, as SQLite gives them
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

type Queryable = pg.Pool | pg.PoolClient;

async function runOn<T>(q: Queryable, sql: string, params: SqlValue[]): Promise<pg.QueryResult<T & pg.QueryResultRow>> {
  return q.query<T & pg.QueryResultRow>(toPgPlaceholders(sql), params);
}

export class PgDb implements SqlDb {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;

  constructor(url: string, o: { max?: number } = {}) {
    this.pool = new pg.Pool({ connectionString: url, max: o.max ?? 10, types, connectionTimeoutMillis: 10_000 });
    // an idle connection the server dropped (a restart) must not crash the process; the pool replaces it
    this.pool.on('error', () => undefined);
  }

  async all<T>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return (await runOn<T>(this.pool, sql, params)).rows;
  }

  async run(sql: string, params: SqlValue[] = []): Promise<{ changes: number }> {
    return { changes: (await runOn(this.pool, sql, params)).rowCount ?? 0 };
  }

  async tx<T>(fn: (db: SqlDb) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // a connection lost while checked out (the server restarted) fails this transaction's next
    // statement; unheard, its 'error' event would end the process
    let broken: unknown;
    const onError = (err: Error) => (broken = err);
    client.on('error', onError);
    let open = true;
    const check = () => {
      if (!open) throw new Error('the transaction is over: its handle may not be used any more');
    };
    const handle: SqlDb = {
      dialect: 'postgres',
      all: async <R>(sql: string, params: SqlValue[] = []) => (check(), (await runOn<R>(client, sql, params)).rows),
      run: async (sql: string, params: SqlValue[] = []) => (check(), { changes: (await runOn(client, sql, params)).rowCount ?? 0 }),
      tx: () => Promise.reject(new Error('transactions do not nest')),
      close: () => Promise.reject(new Error('close the store, not a transaction')),
    };
    try {
      await client.query('BEGIN').catch((err: unknown) => {
        broken = err;
        throw err;
      });
      try {
        const out = await fn(handle);
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch((err: unknown) => (broken = err));
        throw e;
      }
    } finally {
      open = false;
      client.off('error', onError);
      // a broken connection (its rollback failed, or it was lost) is not given back to the pool
      client.release(broken instanceof Error ? broken : broken === undefined ? undefined : new Error(String(broken)));
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
