// Logs: a volume histogram stacked by level (drag to zoom), search in the query language with
// filters, a table with a column picker and expandable rows, infinite scroll and a live tail.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, stream, type LogsPage, type Params, type StoredEvent, type Timeseries } from '../api';
import { Chart } from '../chart';
import { baseParams, baseQuery, LINK_FILTERS, type ViewProps } from '../common';
import { Empty, ErrorBox, EventDetail, EventLevel, Loading, Time } from '../components';
import { fmtMs, fmtNum, zoneLabel } from '../format';
import { useApi } from '../hooks';
import { update, zoomTo, type Route } from '../router';
import { withSearch } from '../search';

const STATUSES = ['success', 'error', 'failure', 'timeout', 'retry'];
const SEVERITIES = ['debug', 'info', 'warning', 'low', 'medium', 'high', 'critical'];
const ENGINES = ['execution', 'validation', 'vault', 'platform_builder', 'feedback_loop', 'engine_control'];
const EVENT_TYPES = ['execution', 'error', 'log', 'validation', 'access', 'flow_run', 'action_error', 'config_change', 'deploy', 'alert', 'audit'];
const FORM_FIELDS = ['status', 'severity', 'engine', 'event_type', 'platform', 'query'] as const;
const PAGE = 100;
const LIVE_CAP = 2000;

/** The filters as the API wants them, from the route (the search text apart: see withSearch). */
function searchParams(route: Route, now: number): Params {
  return { ...baseParams(route, now), ...filterParams(route) };
}

/** The filters but the project and range. */
function filterParams(route: Route): Params {
  const p: Params = {};
  for (const k of [...FORM_FIELDS, ...LINK_FILTERS]) if (k !== 'query') p[k] = route.params.get(k) ?? undefined;
  // links from before the query language: q= is plain text
  if (route.params.get('q')) p.q = route.params.get('q')!;
  for (const k of new Set(route.params.keys())) if (k.startsWith('attr.')) p[k] = route.params.getAll(k);
  return p;
}

/** `region=eu west tier=gold` → [["region", "eu west"], ["tier", "gold"]]. */
function parseAttrs(text: string): [string, string][] {
  return text.trim().split(/\s+(?=[^\s=]+=)/).map((part) => {
    const i = part.indexOf('=');
    return (i > 0 ? [part.slice(0, i).trim(), part.slice(i + 1).trim()] : ['', '']) as [string, string];
  }).filter(([k]) => k !== '');
}

function attrsText(route: Route): string {
  const out: string[] = [];
  for (const [k, v] of route.params) if (k.startsWith('attr.')) out.push(`${k.slice(5)}=${v}`);
  return out.join(' ');
}

function FilterForm({ route }: { route: Route }) {
  const initial = () => ({
    ...Object.fromEntries(FORM_FIELDS.map((k) => [k, route.params.get(k) ?? ''])),
    attrs: attrsText(route),
  }) as Record<(typeof FORM_FIELDS)[number] | 'attrs', string>;
  const [f, setF] = useState(initial);
  const key = route.params.toString();
  useEffect(() => setF(initial()), [key]);
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.currentTarget as HTMLInputElement).value });
  const apply = (next = f) => {
    const changes: Record<string, string | undefined> = {};
    for (const k of FORM_FIELDS) changes[k] = next[k].trim() || undefined;
    for (const [k] of route.params) if (k.startsWith('attr.')) changes[k] = undefined;
    const attrs: Record<string, string[]> = {};
    for (const [k, v] of parseAttrs(next.attrs)) (attrs[`attr.${k}`] ??= []).push(v);
    update(route, { ...changes, ...attrs });
  };
  const select = (k: 'status' | 'severity', options: string[]) => (
    <label>
      {k}
      <select name={k} value={f[k]} onChange={(e) => { const n = { ...f, [k]: e.currentTarget.value }; setF(n); apply(n); }}>
        <option value="">any</option>
        {options.map((o) => <option value={o}>{o}</option>)}
      </select>
    </label>
  );
  return (
    <form class="filters" onSubmit={(e) => { e.preventDefault(); apply(); }}>
      <label class="grow">
        Search
        <input name="query" type="search" data-search placeholder='status:error platform:Slack "token expired" — press / to focus' value={f.query} onInput={set('query')} />
      </label>
      {select('status', STATUSES)}
      {select('severity', SEVERITIES)}
      <label>
        engine
        <input name="engine" list="engines" value={f.engine} onInput={set('engine')} size={10} />
      </label>
      <label>
        event type
        <input name="event_type" list="event-types" value={f.event_type} onInput={set('event_type')} size={10} />
      </label>
      <label>
        platform
        <input name="platform" value={f.platform} onInput={set('platform')} size={10} />
      </label>
      <label>
        attributes
        <input name="attrs" placeholder="key=value …" value={f.attrs} onInput={set('attrs')} size={14} />
      </label>
      <button type="submit" class="primary">Search</button>
      <datalist id="engines">{ENGINES.map((o) => <option value={o} />)}</datalist>
      <datalist id="event-types">{EVENT_TYPES.map((o) => <option value={o} />)}</datalist>
    </form>
  );
}

/** Filters that came from a link (session, fingerprint…): shown as removable chips. */
function Chips({ route }: { route: Route }) {
  const chips = LINK_FILTERS.filter((k) => route.params.get(k));
  if (chips.length === 0) return null;
  return (
    <div class="chips">
      {chips.map((k) => (
        <span class="chip">
          {k} = {route.params.get(k)}
          <button type="button" aria-label={`remove ${k} filter`} onClick={() => update(route, { [k]: undefined })}>×</button>
        </span>
      ))}
    </div>
  );
}

/** Optional columns: the correlation fields, and any attribute as `attr.<key>`. */
const OPTIONAL_COLUMNS = [['project_id', 'Project'], ['user_id', 'User'], ['flow_id', 'Flow'], ['session_id', 'Session'], ['trace_id', 'Trace']] as const;
const COLUMNS_KEY = 'puraify.monitoring.log-columns';

function loadColumns(): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(COLUMNS_KEY) ?? '["project_id"]');
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, 12) : [];
  } catch {
    return ['project_id'];
  }
}

function columnLabel(c: string): string {
  return OPTIONAL_COLUMNS.find(([k]) => k === c)?.[1] ?? c;
}

function cell(e: StoredEvent, c: string): string {
  if (c.startsWith('attr.')) return e.attributes?.[c.slice(5)] ?? '';
  const v = (e as unknown as Record<string, unknown>)[c];
  return v === null || v === undefined ? '' : String(v);
}

function ColumnPicker({ columns, setColumns }: { columns: string[]; setColumns(c: string[]): void }) {
  const [attr, setAttr] = useState('');
  const toggle = (c: string, on: boolean) => setColumns(on ? [...columns, c] : columns.filter((x) => x !== c));
  return (
    <details class="column-picker">
      <summary>Columns</summary>
      <fieldset>
        <legend>Show columns</legend>
        {OPTIONAL_COLUMNS.map(([k, l]) => (
          <label class="check"><input type="checkbox" checked={columns.includes(k)} onChange={(e) => toggle(k, e.currentTarget.checked)} /> {l}</label>
        ))}
        {columns.filter((c) => c.startsWith('attr.')).map((c) => (
          <label class="check"><input type="checkbox" checked onChange={() => toggle(c, false)} /> {c}</label>
        ))}
        <form class="inline" onSubmit={(e) => { e.preventDefault(); const k = attr.trim(); if (k && !columns.includes(`attr.${k}`)) setColumns([...columns, `attr.${k}`]); setAttr(''); }}>
          <label>Attribute column <input value={attr} size={10} placeholder="region" onInput={(e) => setAttr(e.currentTarget.value)} /></label>
          <button type="submit">Add</button>
        </form>
      </fieldset>
    </details>
  );
}

function LogRow({ e, open, toggle, route, fresh, columns }: { e: StoredEvent; open: boolean; toggle(): void; route: Route; fresh: boolean; columns: string[] }) {
  const isErr = !!e.fingerprint || e.event_type === 'error';
  return (
    <>
      <tr class={`row${open ? ' open' : ''}${isErr ? ' is-error' : ''}${fresh ? ' fresh' : ''}`} tabIndex={0} aria-expanded={open} data-row
        onClick={toggle} onKeyDown={(k) => { if (k.key === 'Enter' || k.key === ' ') { k.preventDefault(); toggle(); } }}>
        <td class="nowrap mono"><Time iso={e.timestamp} /></td>
        {columns.map((c) => <td class="nowrap small">{cell(e, c)}</td>)}
        <td><EventLevel e={e} /></td>
        <td class="nowrap">{e.event_type}</td>
        <td class="nowrap">{e.engine}</td>
        <td class="nowrap">{[e.platform, e.action].filter(Boolean).join(' · ')}</td>
        <td class="msg">
          {e.error_type && <strong>{e.error_type} </strong>}
          {e.message}
        </td>
        <td class="num nowrap">{fmtMs(e.duration_ms)}</td>
      </tr>
      {open && (
        <tr class="detail">
          <td colSpan={7 + columns.length}><EventDetail e={e} route={route} /></td>
        </tr>
      )}
    </>
  );
}

/** The level an event counts under in the histogram (mirrors the badge the table shows). */
const LEVELS = [['error', 'errors', '--bad'], ['warning', 'warnings', '--warn'], ['info', 'info', '--info'], ['debug', 'debug', '--muted']] as const;
const ERRORISH = new Set(['critical', 'high', 'error', 'fatal', 'failure', 'failed', 'timeout']);
function levelOf(severity: string, status: string): string {
  const sv = severity.toLowerCase();
  const st = status.toLowerCase();
  if (ERRORISH.has(sv) || ERRORISH.has(st)) return 'error';
  if (sv === 'warning' || sv === 'warn' || sv === 'medium' || st === 'retry') return 'warning';
  if (sv === 'debug') return 'debug';
  return 'info';
}

/** `query` is what the search asks (see baseQuery): a refresh of it keeps the chart until its answer. */
function Histogram({ route, params, search, query, refresh }: { route: Route; params: Params; search: string; query: string; refresh: unknown[] }) {
  const h = useApi(async (signal) => {
    const { data: ts } = await withSearch(params, search, (p) => api<Timeseries>('/monitoring/timeseries', { ...p, metric: 'count', group_by: 'severity,status' }, { signal }));
    const times = ts.series[0]?.points.map((pt) => pt.t) ?? [];
    const levels: Record<string, number[]> = Object.fromEntries(LEVELS.map(([l]) => [l, times.map(() => 0)]));
    for (const s of ts.series) {
      const lv = levelOf(String(s.group.severity ?? ''), String(s.group.status ?? ''));
      s.points.forEach((pt, i) => { levels[lv][i] += pt.value ?? 0; });
    }
    return { times, levels };
  }, [query], refresh);
  const data = h.data;
  return (
    <div class="histogram">
      <ErrorBox error={h.error} what="Volume" />
      {data && data.times.length > 0 && (
        <Chart title="Events by level" height={110} stacked times={data.times}
          series={LEVELS.map(([l, label, color]) => ({ label, values: data.levels[l], color }))}
          onZoom={(from, to) => zoomTo(route, from, to)} />
      )}
      {!data && !h.error && <div class="chart-placeholder" aria-hidden="true" />}
    </div>
  );
}

/** The total for the search, when the engine can count it quickly (else nothing is said). */
const COUNT_TIMEOUT_MS = 1500;
function useTotal(params: Params, search: string, query: string, refresh: unknown[]): number | null {
  const t = useApi((signal) => withSearch(params, search, (p) => api<{ count: number | null }>('/monitoring/logs/count', { ...p, timeout_ms: String(COUNT_TIMEOUT_MS) }, { signal }))
    .then((r) => r.data.count, () => null), [query], refresh);
  return t.data ?? null;
}

export function LogsView({ route, epoch, now }: ViewProps) {
  const [page, setPage] = useState<{ key: string; rows: StoredEvent[]; cursor: string | null; asText: boolean }>({ key: '', rows: [], cursor: null, asText: false });
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<{ key: string; e: unknown } | null>(null);
  const [open, setOpen] = useState<Set<string>>(new Set());
  const [live, setLive] = useState(false);
  const [liveState, setLiveState] = useState<{ connected: boolean; received: number; missed: number; error: unknown }>({ connected: false, received: 0, missed: 0, error: null });
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [columns, setColumnsState] = useState(loadColumns);
  const setColumns = (c: string[]) => {
    setColumnsState(c);
    try { localStorage.setItem(COLUMNS_KEY, JSON.stringify(c)); } catch { /* private mode */ }
  };
  const params = searchParams(route, now);
  const search = route.params.get('query') ?? '';
  // what is asked, the range by its name: a refresh (same key, new epoch and now) keeps the rows on
  // screen until its answer replaces them; rows are never shown under another key
  const key = JSON.stringify([baseQuery(route), filterParams(route), search]);
  const refresh = [epoch, now];
  const ctlRef = useRef<AbortController | null>(null);
  /** Whether the first page is being (re)loaded: "load more" waits for it. */
  const firstRef = useRef(false);
  const total = useTotal(params, search, key, refresh);
  const sentinel = useRef<HTMLDivElement>(null);
  // rows are shown only under the filters that fetched them
  const rows = page.key === key ? page.rows : [];
  const cursor = page.key === key ? page.cursor : null;

  const load = async (after: string | null) => {
    // a next page of the rows being replaced would be appended to the new ones
    if (after && firstRef.current) return;
    ctlRef.current?.abort();
    firstRef.current = !after;
    const ctl = new AbortController();
    ctlRef.current = ctl;
    setLoading(true);
    setError(null);
    try {
      const r = await withSearch(params, search, (p) => api<LogsPage>('/monitoring/logs', { ...p, limit: String(PAGE), cursor: after ?? undefined }, { signal: ctl.signal }));
      if (ctl.signal.aborted) return;
      setPage((prev) => ({ key, rows: after && prev.key === key ? [...prev.rows, ...r.data.logs] : r.data.logs, cursor: r.data.next_cursor, asText: r.asText }));
    } catch (e) {
      if (!ctl.signal.aborted) setError({ key, e });
    } finally {
      if (!ctl.signal.aborted) {
        setLoading(false);
        firstRef.current = false;
      }
    }
  };

  useEffect(() => setOpen(new Set()), [key]);
  useEffect(() => {
    setFresh(new Set());
    void load(null);
    return () => {
      ctlRef.current?.abort();
      firstRef.current = false;
    };
  }, [key, ...refresh]);

  // infinite scroll: the next page loads when the end of the table comes into view
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    const el = sentinel.current;
    if (!el || !cursor || live) return;
    const io = new IntersectionObserver((entries) => { if (entries.some((x) => x.isIntersecting)) void loadRef.current(cursor); });
    io.observe(el);
    return () => io.disconnect();
  }, [cursor, live]);

  // the live tail: same filters, no range (it starts now), newest on top
  useEffect(() => {
    if (!live) return;
    const ctl = new AbortController();
    const { from: _from, to: _to, ...filters } = params;
    setLiveState({ connected: false, received: 0, missed: 0, error: null });
    const seen = new Set<string>();
    const add = (events: StoredEvent[]) => {
      const novel = events.filter((e) => e && typeof e.id === 'string' && typeof e.timestamp === 'string' && !seen.has(e.id));
      if (novel.length === 0) return;
      for (const e of novel) seen.add(e.id);
      novel.sort((a, b) => b.timestamp.localeCompare(a.timestamp));
      setPage((prev) => {
        const ids = new Set(novel.map((e) => e.id));
        return { ...prev, rows: [...novel, ...(prev.key === key ? prev.rows : []).filter((e) => !ids.has(e.id))].slice(0, LIVE_CAP), key };
      });
      setFresh((prev) => new Set([...prev, ...novel.map((e) => e.id)]));
      setLiveState((s) => ({ ...s, received: s.received + novel.length }));
    };
    stream('/monitoring/stream', search ? { ...filters, query: search } : filters, ctl.signal, (type, data) => {
      if (type === 'missed') {
        const n = Number((data as { count?: number })?.count ?? 0);
        setLiveState((s) => ({ ...s, missed: s.missed + n }));
      } else if (Array.isArray(data)) add(data as StoredEvent[]);
      else if (data && typeof data === 'object') {
        const d = data as { logs?: StoredEvent[]; events?: StoredEvent[] };
        add(d.logs ?? d.events ?? [data as StoredEvent]);
      }
    }, () => setLiveState((s) => ({ ...s, connected: true })))
      .then(() => { if (!ctl.signal.aborted) setLiveState((s) => ({ ...s, connected: false, error: new Error('the live stream ended; turn Live off and on to reconnect') })); })
      .catch((e) => { if (!ctl.signal.aborted) setLiveState((s) => ({ ...s, connected: false, error: e })); });
    return () => ctl.abort();
  }, [live, key, epoch]);

  const toggle = (id: string) => setOpen((s) => {
    const n = new Set(s);
    if (n.has(id)) n.delete(id);
    else n.add(id);
    return n;
  });
  const err = error?.key === key ? error.e : null;
  const settled = page.key === key && !loading;

  return (
    <section class="view logs-view" aria-labelledby="logs-h">
      <h1 id="logs-h" class="view-title">Logs</h1>
      <Histogram route={route} params={params} search={search} query={key} refresh={refresh} />
      <FilterForm route={route} />
      <div class="toolbar">
        <Chips route={route} />
        <span class="spacer" />
        <Loading show={loading} />
        <span class="muted" aria-live="polite">
          {total !== null && <output class="total" aria-label="Total events">{fmtNum(total)} event{total === 1 ? '' : 's'}</output>}
          {settled ? ` · ${fmtNum(rows.length)} shown${cursor ? ', more below' : ''}` : ''}
        </span>
        <ColumnPicker columns={columns} setColumns={setColumns} />
        <button type="button" class={live ? 'live on' : 'live'} aria-pressed={live} onClick={() => setLive(!live)}
          title="Tail new events as they arrive (Server-Sent Events)">
          <span class="dot" /> {live ? (liveState.connected ? `Live · ${liveState.received} new` : 'Connecting…') : 'Live'}
        </button>
      </div>
      {page.key === key && page.asText && <div class="notice">This engine does not know the query language yet: "{search}" was searched as plain text.</div>}
      <ErrorBox error={err} />
      <ErrorBox error={liveState.error} what="Live" />
      {live && liveState.missed > 0 && (
        <div class="notice">The live tail skipped {liveState.missed} events it could not deliver fast enough; Search shows them all.</div>
      )}
      {rows.length === 0 && settled && !err ? (
        <Empty>
          No events match in this range. Widen the time range, clear a filter, or check the project.
        </Empty>
      ) : rows.length > 0 ? (
        <div class={`table-wrap${loading ? ' refreshing' : ''}`} aria-busy={loading}>
          <table class="grid logs">
            <caption class="sr-only">Events, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time <span class="muted small">({zoneLabel()})</span></th>
                {columns.map((c) => <th scope="col">{columnLabel(c)}</th>)}
                <th scope="col">Level</th><th scope="col">Type</th><th scope="col">Engine</th><th scope="col">Platform · action</th><th scope="col">Message</th><th scope="col" class="num">Duration</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((e) => <LogRow key={e.id} e={e} open={open.has(e.id)} toggle={() => toggle(e.id)} route={route} fresh={fresh.has(e.id)} columns={columns} />)}
            </tbody>
          </table>
        </div>
      ) : null}
      <div ref={sentinel} class="sentinel" />
      {cursor && !live && (
        <div class="more">
          <button type="button" onClick={() => load(cursor)} disabled={loading}>{loading ? 'Loading…' : 'Load more'}</button>
        </div>
      )}
      {!cursor && rows.length > 0 && settled && <div class="more muted">End of results</div>}
    </section>
  );
}
