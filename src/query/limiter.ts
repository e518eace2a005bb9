// A cap on concurrent queries: the engine answers 429 instead of queueing work it cannot finish.
import { HttpError } from '../http/errors.js';
import { QueryTimeoutError } from '../storage/transport.js';

export type QueryLimiter = (<T>(fn: () => Promise<T>) => Promise<T>) & { readonly running: number };

export function queryLimiter(max: number): QueryLimiter {
  let running = 0;
  const limiter = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (running >= max) {
      throw new HttpError(429, 'too_many_queries', `more than ${max} queries are running; retry shortly`, undefined, { 'Retry-After': '1' });
    }
    running++;
    try {
      return await fn();
    } catch (e) {
      if (e instanceof QueryTimeoutError) throw new HttpError(503, 'query_timeout', `${e.message}; narrow the time range or the filters`, undefined, { 'Retry-After': '5' });
      throw e;
    } finally {
      running--;
    }
  };
  return Object.assign(limiter, { get running() { return running; } });
}
