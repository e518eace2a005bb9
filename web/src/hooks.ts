// Data loading: one request per dependency change, the previous one aborted. The previous data stays
// on screen while the next loads only when it was asked with the same filters (a refresh); rows of
// another query are never shown under new filters (`data` is undefined until the new answer).
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
}

export function useApi<T>(fn: ((signal: AbortSignal) => Promise<T>) | null, deps: unknown[], sameQuery?: string): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean; key: string | undefined }>({ data: undefined, error: undefined, loading: !!fn, key: undefined });
  const [tick, setTick] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const key = sameQuery ?? JSON.stringify(deps);
  useEffect(() => {
    const f = fnRef.current;
    if (!f) {
      setState({ data: undefined, error: undefined, loading: false, key });
      return;
    }
    const ctl = new AbortController();
    setState((s) => ({ data: s.key === key ? s.data : undefined, error: undefined, loading: true, key }));
    f(ctl.signal).then(
      (data) => { if (!ctl.signal.aborted) setState({ data, error: undefined, loading: false, key }); },
      (error) => { if (!ctl.signal.aborted) setState((s) => ({ data: s.key === key ? s.data : undefined, error, loading: false, key })); },
    );
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  // during the render right after deps changed, before the effect ran: nothing of the old query
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
