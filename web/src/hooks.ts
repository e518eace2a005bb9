// Data loading: one request per change, the previous one aborted. A request is asked with `query`
// (what it asks: the filters, a relative range by its name) and re-asked when `refresh` changes (the
// Refresh button, auto-refresh, the "now" a relative range ends at). A refresh of the same query keeps
// the previous data on screen, with `loading` set, until its answer replaces it; a refresh that fails
// sets `error` beside that data. Data of another query is never shown: `data` is undefined from the
// first render under a new query until its answer.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
}

export function useApi<T>(fn: ((signal: AbortSignal) => Promise<T>) | null, query: unknown[], refresh: unknown[] = []): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean; key: string | undefined }>({ data: undefined, error: undefined, loading: !!fn, key: undefined });
  const [tick, setTick] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const key = JSON.stringify([query, !!fn]);
  useEffect(() => {
    const f = fnRef.current;
    if (!f) {
      setState({ data: undefined, error: undefined, loading: false, key });
      return;
    }
    const ctl = new AbortController();
    // the same query again (a refresh): its data and error stay until the answer
    setState((s) => (s.key === key ? { ...s, loading: true } : { data: undefined, error: undefined, loading: true, key }));
    f(ctl.signal).then(
      (data) => { if (!ctl.signal.aborted) setState({ data, error: undefined, loading: false, key }); },
      (error) => { if (!ctl.signal.aborted) setState((s) => ({ data: s.key === key ? s.data : undefined, error, loading: false, key })); },
    );
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, ...refresh, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  // during the render right after the query changed, before the effect ran: nothing of the old query
  const stale = state.key !== key;
  return { data: stale ? undefined : state.data, error: stale ? undefined : state.error, loading: stale ? !!fn : state.loading, reload };
}

export interface Action {
  busy: boolean;
  error: unknown;
  /** Runs fn (a save, a delete…), then `after` when it succeeded; its error is kept for display. */
  run(fn: () => Promise<unknown>, after?: () => void): Promise<void>;
}

export function useAction(): Action {
  const [state, setState] = useState<{ busy: boolean; error: unknown }>({ busy: false, error: null });
  const run = useCallback(async (fn: () => Promise<unknown>, after?: () => void) => {
    setState({ busy: true, error: null });
    try {
      await fn();
      setState({ busy: false, error: null });
      after?.();
    } catch (e) {
      setState({ busy: false, error: e });
    }
  }, []);
  return { ...state, run };
}
