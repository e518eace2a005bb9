// A cap on concurrent queries and on query time: the engine answers 429 instead of queueing work it
// cannot finish, and 503 when a query runs out of time. Storage enforces the time limit itself
// (max_execution_time); the watchdog here answers the client even when storage does not (a hung
// server connection), a little after storage should have given up.
import { HttpError } from '../http/errors.js';
import { QueryTimeoutError } from '../storage/transport.js';

export type QueryLimiter = (<T>(fn: () => Promise<T>) => Promise<T>) & { readonly running: number; readonly max: number };

/** How long after the storage time limit the watchdog steps in. */
export const WATCHDOG_GRACE_MS = 1000;

function timeoutError(e: QueryTimeoutError, ms: number | undefined): HttpError {
  return new HttpError(503, 'query_timeout', `${ms ? `the query ran longer than ${ms} ms` : e.message}; narrow the time range or the filters`,
    ms ? { timeout_ms: ms } : undefined, { 'Retry-After': '5' });
}

export function queryLimiter(max: number, timeoutMs?: number): QueryLimiter {
  let running = 0;
  const limiter = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (running >= max) {
      throw new HttpError(429, 'too_many_queries', `more than ${max} queries are running; retry shortly`, { max_concurrent_queries: max }, { 'Retry-After': '1' });
    }
    running++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const work = fn();
      if (!timeoutMs) return await work;
      // the slot is given back when the watchdog fires: storage stops the query at about the same time
      work.catch(() => undefined);
      const watchdog = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new QueryTimeoutError(timeoutMs)), timeoutMs + WATCHDOG_GRACE_MS);
      });
      return await Promise.race([work, watchdog]);
    } catch (e) {
      if (e instanceof QueryTimeoutError) throw timeoutError(e, timeoutMs);
      throw e;
    } finally {
      if (timer) clearTimeout(timer);
      running--;
    }
  };
  // defineProperty, not Object.assign: assign would copy the getter's value (0) once
  Object.defineProperty(limiter, 'running', { get: () => running, enumerable: true });
  Object.defineProperty(limiter, 'max', { value: max, enumerable: true });
  return limiter as QueryLimiter;
}
