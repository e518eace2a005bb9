// The search box speaks the query language (`query=` on /monitoring/logs and /monitoring/errors).
// An engine that does not know `query` yet answers 400 naming the field; the search then runs as
// plain text (`q=`) and the view says so. What was learned is kept for the page's life.
import { ApiError, type Params } from './api';

let queryKnown: boolean | undefined;

export interface Searched<T> {
  data: T;
  /** The engine did not know the query language: the text was searched as a substring. */
  asText: boolean;
}

function refusesQuery(e: unknown): boolean {
  return e instanceof ApiError && e.status === 400 && !!e.details?.errors?.some((f) => f.field === 'query' && /not a known parameter/.test(f.message));
}

/** Calls `run` with the search as `query`, or as `q` on an engine without the query language. */
export async function withSearch<T>(params: Params, search: string, run: (p: Params) => Promise<T>): Promise<Searched<T>> {
  if (!search.trim()) return { data: await run(params), asText: false };
  if (queryKnown !== false) {
    try {
      const data = await run({ ...params, query: search });
      queryKnown = true;
      return { data, asText: false };
    } catch (e) {
      if (!refusesQuery(e)) throw e;
      queryKnown = false;
    }
  }
  return { data: await run({ ...params, q: search }), asText: true };
}
