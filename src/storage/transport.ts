// How ClickHouse SQL reaches an engine. The event SQL lives in event-store.ts and is the same for
// every transport: chDB in-process (the embedded default) or a ClickHouse server over HTTP.

import type { StorageFeatures } from './schema.js';

export type Params = Record<string, string | number | bigint | boolean | string[] | number[]>;

export interface QueryOptions {
  timeoutMs?: number;
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

/** Server error codes that say the store cannot take writes for now (not that the data is wrong):
 *  ZooKeeper gone (a Replicated table turns read-only), no replica of a shard reachable, timeouts. */
const UNAVAILABLE_CODES = new Set([
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  225, // NO_ZOOKEEPER
  242, // TABLE_IS_READ_ONLY
  279, // ALL_CONNECTION_TRIES_FAILED
  319, // UNKNOWN_STATUS_OF_INSERT
  999, // KEEPER_EXCEPTION
]);
const UNAVAILABLE_SYSCALLS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);

/** True when an error of the event store means "retry later" (the route answers 503 + Retry-After). */
export function isStoreUnavailable(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const code = (e as { clickhouseCode?: unknown }).clickhouseCode;
  if (typeof code === 'number' && UNAVAILABLE_CODES.has(code)) return true;
  const sys = (e as { code?: unknown }).code;
  if (typeof sys === 'string' && UNAVAILABLE_SYSCALLS.has(sys)) return true;
  const cause = (e as { cause?: unknown }).cause;
  return cause !== undefined && cause !== e && isStoreUnavailable(cause);
}
