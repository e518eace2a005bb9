// Audit: who did what, when, from where, with what outcome; config changes with their diff.
// Filters (user, flow, session, engine, event type) and exports of the same filters (CSV, NDJSON).
import { useEffect, useState } from 'preact/hooks';
import { api, download, type Params } from '../api';
import { baseParams, baseQuery, type ViewProps } from '../common';
import { Badge, Empty, ErrorBox, Loading, Time } from '../components';
import { fmtMs } from '../format';
import { useApi } from '../hooks';
import { update, type Route } from '../router';
import type { TimelineEntry } from '../../../src/audit/timeline';

const FILTERS = [['user_id', 'User'], ['flow_id', 'Flow'], ['session_id', 'Session'], ['engine', 'Engine'], ['event_type', 'Event type']] as const;

function Filters({ route }: { route: Route }) {
  const initial = () => Object.fromEntries(FILTERS.map(([k]) => [k, route.params.get(k) ?? '']));
  const [f, setF] = useState<Record<string, string>>(initial);
  useEffect(() => setF(initial()), [route.params.toString()]);
  return (
    <form class="filters" aria-label="Audit filters" onSubmit={(e) => { e.preventDefault(); update(route, Object.fromEntries(FILTERS.map(([k]) => [k, f[k].trim() || undefined]))); }}>
      {FILTERS.map(([k, l]) => <label>{l}<input value={f[k]} size={12} data-search={k === 'user_id' ? true : undefined} onInput={(e) => setF({ ...f, [k]: e.currentTarget.value })} /></label>)}
      <button type="submit" class="primary">Filter</button>
    </form>
  );
}

export function AuditView({ route, epoch, now }: ViewProps) {
  const params: Params = { ...baseParams(route, now) };
  for (const [k] of FILTERS) params[k] = route.params.get(k) ?? undefined;
  const order = route.params.get('order') === 'asc' ? 'asc' : 'desc';
  // what is asked, the range by its name: a refresh of it keeps the rows until its answer
  const queryKey = JSON.stringify([baseQuery(route), FILTERS.map(([k]) => params[k]), order]);
  const list = useApi((signal) => api<{ timeline: TimelineEntry[]; next_cursor: string | null }>('/monitoring/audit', { ...params, order, limit: '100' }, { signal }), [queryKey], [epoch, now]);
  const [more, setMore] = useState<{ after: unknown; rows: TimelineEntry[]; cursor: string | null }>({ after: undefined, rows: [], cursor: null });
  const [err, setErr] = useState<unknown>(null);
  const [busy, setBusy] = useState('');
  // pages loaded after the first page shown (a refresh's new first page drops them)
  const extra = list.data && more.after === list.data ? more : { after: list.data, rows: [], cursor: null };
  const rows = [...(list.data?.timeline ?? []), ...extra.rows];
  const cursor = extra.rows.length ? extra.cursor : list.data?.next_cursor ?? null;
  const exportAs = async (format: 'csv' | 'ndjson') => {
    setBusy(format);
    setErr(null);
    try {
      await download('/monitoring/audit/export', { ...params, format }, `audit.${format}`);
    } catch (e) {
      setErr(e);
    } finally {
      setBusy('');
    }
  };
  return (
    <section class="view audit-view" aria-labelledby="audit-h">
      <div class="toolbar">
        <h1 id="audit-h" class="view-title">Audit trail</h1>
        <span class="spacer" />
        <label class="inline">Order
          <select value={order} onChange={(e) => update(route, { order: e.currentTarget.value === 'desc' ? undefined : 'asc' })}>
            <option value="desc">Newest first</option><option value="asc">Oldest first</option>
          </select>
        </label>
        <button type="button" disabled={!!busy} onClick={() => exportAs('csv')}>{busy === 'csv' ? 'Exporting…' : 'Export CSV'}</button>
        <button type="button" disabled={!!busy} onClick={() => exportAs('ndjson')}>{busy === 'ndjson' ? 'Exporting…' : 'Export NDJSON'}</button>
      </div>
      <Filters route={route} />
      <Loading show={list.loading} />
      <ErrorBox error={list.error} />
      <ErrorBox error={err} />
      {list.data && rows.length === 0 && <Empty>No audit entries match in this range.</Empty>}
      {rows.length > 0 && (
        <ol class="audit-timeline" aria-label="Audit timeline">
          {rows.map((r) => (
            <li class="row" data-row tabIndex={0}>
              <div class="n-head">
                <Time iso={r.when} /> <Badge value={r.outcome.status || r.outcome.severity || r.what.event_type} />
                <strong>{r.who.user_id || r.from.triggered_by || r.from.engine || 'unknown'}</strong>
                <span>{[r.what.event_type, r.what.action, r.what.platform].filter(Boolean).join(' · ')}</span>
                <span class="spacer" />
                <span class="muted small">{[r.project_id, r.from.engine, r.from.address].filter(Boolean).join(' · ')}{r.outcome.duration_ms !== null ? ` · ${fmtMs(r.outcome.duration_ms)}` : ''}</span>
              </div>
              {r.what.message && <div>{r.what.message}</div>}
              {r.outcome.error && <div class="bad-text small">{r.outcome.error.error_type} {r.outcome.error.message}</div>}
              {r.change && (
                <div class="small">
                  <Badge value={r.change.kind} /> {r.change.summary}
                  {r.change.diff && r.change.diff.length > 0 && (
                    <ul class="diff">{r.change.diff.slice(0, 10).map((d) => <li><code>{d.path}</code> {d.op}: <code>{JSON.stringify(d.before) ?? '∅'}</code> → <code>{JSON.stringify(d.after) ?? '∅'}</code></li>)}</ul>
                  )}
                </div>
              )}
            </li>
          ))}
        </ol>
      )}
      {cursor && (
        <div class="more"><button type="button" onClick={async () => {
          try {
            const page = await api<{ timeline: TimelineEntry[]; next_cursor: string | null }>('/monitoring/audit', { ...params, order, limit: '100', cursor });
            setMore({ after: extra.after, rows: [...extra.rows, ...page.timeline], cursor: page.next_cursor });
          } catch (e) { setErr(e); }
        }}>Load more</button></div>
      )}
    </section>
  );
}
