// How ClickHouse SQL reaches an engine. The event SQL lives in event-store.ts and is the same for
// every transport: chDB in-process (the embedded default) or a ClickHouse server over HTTP.

import type { StorageFeatures } from './schema.js';

export type Params = Record<string, string | number | bigint | boolean | string[] | number[]>;

export interface QueryOptions {
  timeoutMs?: number;
  /**
   * 'write': a query of the write path itself (the loader's duplicate check). Embedded, it runs on the
   * session the inserts use, so it never queues behind a reader; a server runs queries side by side anyway.
   */
  lane?: 'read' | 'write';
}

export interface ClickHouseTransport {
  readonly name: string;
  /** What the engine supports beyond 18.16's baseline (the DDL is chosen by it). */
  readonly features: StorageFeatures;
  /** Set when the tables are shard-local tables under Distributed ones (see http-transport.ts). */
  readonly cluster?: string;
  /** Runs a statement that returns nothing (DDL, ALTER). */
  exec(sql: string): Promise<void>;
  /** Runs a SELECT with `{name:Type}` parameters bound by the engine; rows as objects. */
  query<T = Record<string, unknown>>(sql: string, params?: Params, opts?: QueryOptions): Promise<T[]>;
  /** Inserts rows given as JSONCompactEachRow lines in `columns` order. */
  insertCompact(table: string, columns: readonly string[], payload: Buffer): Promise<void>;
  close(): Promise<void>;
}

export class QueryTimeoutError extends Error {
  constructor(ms: number) {
    super(`the query ran longer than ${ms} ms`);
  }
}

/** A storage call that did not finish within its deadline (storage frozen, overloaded or unreachable). */
export class StorageTimeoutError extends Error {
  constructor(readonly what: string, readonly ms: number) {
    super(`storage did not finish ${what} within ${ms} ms`);
    this.name = 'StorageTimeoutError';
  }
}

/**
 * `work`, or a StorageTimeoutError after `ms`. For calls that cannot be cancelled (chDB runs them on
 * its own threads) the work goes on, but the caller is answered: an insert that finishes later is
 * stored, and a client that retries is deduplicated by its ids.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  if (!(ms > 0)) return work;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StorageTimeoutError(what, ms)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
