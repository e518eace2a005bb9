// Errors: the groups (count, users, first/last seen, state, trend), searched in the query language,
// sorted, paged, resolved or ignored in bulk; one group in detail with resolve / ignore / reopen,
// every sample paged with previous/next, and the distribution of the fields that vary.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type ErrorDetail, type ErrorList, type LogsPage, type StoredEvent, type TopValue } from '../api';
import { Chart } from '../chart';
import { adminDenied, baseParams, baseQuery, type Me, type ViewProps } from '../common';
import { Badge, Empty, ErrorBox, EventDetail, Loading, Sparkline, Time, TopList } from '../components';
import { fmtAgo, fmtMs, fmtNum } from '../format';
import { useApi } from '../hooks';
import { update, viewHref, zoomTo, type Route } from '../router';
import { withSearch } from '../search';

const PAGE = 50;
const SAMPLE_PAGE = 20;

/** Attribute keys whose values differ across the sample events: at most 10 keys × 5 values, counted
 *  client-side from the samples the detail already carries (no extra query). */
export function varyingAttributes(samples: StoredEvent[]): [string, TopValue[]][] {
  const byKey = new Map<string, Map<string, number>>();
  for (const e of samples) {
    for (const [k, v] of Object.entries((e.attributes ?? {}) as Record<string, unknown>)) {
      const s = typeof v === 'string' ? v : JSON.stringify(v);
      let m = byKey.get(k);
      if (!m) byKey.set(k, (m = new Map()));
      m.set(s, (m.get(s) ?? 0) + 1);
    }
  }
  return [...byKey].filter(([, m]) => m.size > 1).slice(0, 10)
    .map(([k, m]) => [k, [...m].map(([value, count]) => ({ value, count })).sort((a, b) => b.count - a.count).slice(0, 5)]);
}

/** Fields whose values differ across the group's events are charted; the rest are one line. */
function Distributions({ route, top, samples }: { route: Route; top: ErrorDetail['top']; samples: StoredEvent[] }) {
  const attrs = varyingAttributes(samples);
  const fields: [string, TopValue[] | undefined, ((v: string) => string) | undefined][] = [
    ['Platforms', top.platforms, undefined], ['Actions', top.actions, undefined], ['Engines', top.engines, undefined],
    ['Flows', top.flows, (v) => viewHref(route, 'logs', { flow_id: v })], ['Users', top.users, (v) => viewHref(route, 'logs', { user_id: v })],
  ];
  const varying = fields.filter(([, items]) => (items?.length ?? 0) > 1);
  const same = fields.filter(([, items]) => items?.length === 1 && items[0].value);
  return (
    <>
      {same.length > 0 && <p class="muted small">Every event: {same.map(([l, items]) => `${l.toLowerCase().replace(/s$/, '')} ${items![0].value}`).join(' · ')}</p>}
      {varying.length > 0 && <div class="tops">{varying.map(([l, items, href]) => <TopList title={l} items={items} href={href} />)}</div>}
      {attrs.length > 0 && <div class="tops" aria-label="Attributes that vary">{attrs.map(([k, items]) => <TopList title={`attr.${k}`} items={items} />)}</div>}
    </>
  );
}

/** Every sample of the group, newest first, paged from the logs API; previous/next step through them. */
function Samples({ route, fp, project, epoch }: { route: Route; fp: string; project: string; epoch: number }) {
  const [state, setState] = useState<{ rows: StoredEvent[]; cursor: string | null; error?: unknown; loading: boolean }>({ rows: [], cursor: null, loading: true });
  const [cur, setCur] = useState(0);
  const fetchPage = async (cursor: string | null, signal?: AbortSignal) => {
    setState((s) => ({ ...s, loading: true }));
    try {
      const page = await api<LogsPage>('/monitoring/logs', { project_id: project, fingerprint: fp, limit: String(SAMPLE_PAGE), cursor: cursor ?? undefined }, { signal });
      setState((s) => ({ rows: cursor ? [...s.rows, ...page.logs] : page.logs, cursor: page.next_cursor, loading: false }));
      // a refresh's first page replaces the rows: the same step stays open when it still exists
      if (!cursor) setCur((c) => (c < page.logs.length ? c : 0));
    } catch (e) {
      if (!signal?.aborted) setState((s) => ({ ...s, error: e, loading: false }));
    }
  };
  // another group starts empty; a refresh of this one keeps its rows until the new first page
  const group = JSON.stringify([fp, project]);
  const shownGroup = useRef(group);
  useEffect(() => {
    const ctl = new AbortController();
    if (shownGroup.current !== group) {
      shownGroup.current = group;
      setCur(0);
      setState({ rows: [], cursor: null, loading: true });
    }
    void fetchPage(null, ctl.signal);
    return () => ctl.abort();
  }, [group, epoch]);
  const e = state.rows[cur];
  const next = async () => {
    if (cur + 1 < state.rows.length) setCur(cur + 1);
    else if (state.cursor) { await fetchPage(state.cursor); setCur(cur + 1); }
  };
  return (
    <div class="samples">
      <div class="toolbar">
        <h3>Events of this group</h3>
        <span class="spacer" />
        <button type="button" aria-label="Newer event" disabled={cur === 0} onClick={() => setCur(cur - 1)}>← Newer</button>
        <span aria-live="polite">{state.rows.length ? `Event ${cur + 1} of ${fmtNum(state.rows.length)}${state.cursor ? '+' : ''}` : ''}</span>
        <button type="button" aria-label="Older event" disabled={cur + 1 >= state.rows.length && !state.cursor} onClick={next}>Older →</button>
        <Loading show={state.loading} />
      </div>
      <ErrorBox error={state.error} />
      {e && <EventDetail e={e} route={route} />}
      {state.rows.length > 0 && (
        <table class="grid compact">
          <caption class="sr-only">Samples, newest first</caption>
          <thead><tr><th scope="col">Time</th><th scope="col">User</th><th scope="col">Session</th><th scope="col">Message</th></tr></thead>
          <tbody>
            {state.rows.map((x, i) => (
              <tr class={`row${i === cur ? ' selected' : ''}`} data-row tabIndex={0} onClick={() => setCur(i)} onKeyDown={(k) => { if (k.key === 'Enter') setCur(i); }}>
                <td class="nowrap mono"><Time iso={x.timestamp} /></td>
                <td>{x.user_id}</td>
                <td>{x.session_id && <a href={viewHref(route, 'sessions', { sid: x.session_id, sp: x.project_id })} onClick={(ev) => ev.stopPropagation()}>{x.session_id}</a>}</td>
                <td class="msg">{x.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {state.cursor && <div class="more"><button type="button" onClick={() => fetchPage(state.cursor)} disabled={state.loading}>Load more events</button></div>}
    </div>
  );
}

const SORTS = [['count', 'Most events'], ['last_seen', 'Last seen'], ['first_seen', 'Newest'], ['users', 'Most users']] as const;
const STATES = [['open', 'Open'], ['resolved', 'Resolved'], ['ignored', 'Ignored'], ['all', 'All']] as const;

function title(g: { error_type: string; message: string }): string {
  return g.error_type || g.message.split('\n')[0] || '(no message)';
}

function Detail({ route, fp, project, epoch, now, me, onChanged }: { route: Route; fp: string; project: string; epoch: number; now: number; me: Me; onChanged(): void }) {
  const base = baseParams(route, now);
  const detail = useApi((signal) => api<ErrorDetail>(`/monitoring/errors/${encodeURIComponent(fp)}`, { project_id: project || base.project_id, from: base.from, to: base.to, samples: '10' }, { signal }),
    [fp, project, baseQuery(route)], [epoch, now]);
  const [busy, setBusy] = useState(false);
  const [patchError, setPatchError] = useState<unknown>(null);
  const g = detail.data;
  const denied = adminDenied(me);

  const setState = async (state: 'open' | 'resolved' | 'ignored') => {
    setBusy(true);
    setPatchError(null);
    try {
      await api(`/monitoring/errors/${encodeURIComponent(fp)}`, { project_id: g?.project_id ?? project }, { method: 'PATCH', body: { state } });
      detail.reload();
      onChanged();
    } catch (e) {
      setPatchError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <aside class="pane detail-pane" aria-label="error group">
      <div class="pane-head">
        <Loading show={detail.loading} />
        <span class="spacer" />
        <button type="button" class="close" onClick={() => update(route, { fp: undefined, gp: undefined })} aria-label="close">×</button>
      </div>
      <ErrorBox error={detail.error} />
      {g && (
        <>
          <h2 class="group-title" id="group-title">{title(g)}</h2>
          <p class="muted small">{g.project_id} · <code>{g.fingerprint}</code></p>
          {g.error_type && g.message && <p class="message-full">{g.message}</p>}
          <div class="state-row">
            <span class="group-state" role="status" aria-label="Group state">state: <Badge value={g.state} /></span>
            {g.regression && <Badge value="regression" title={`reopened ${g.regression.count}× — last ${g.regression.at}`} />}
            <span class="spacer" />
            {g.state !== 'resolved' && <button type="button" class="primary" disabled={busy || !!denied} title={denied ?? undefined} onClick={() => setState('resolved')}>Resolve</button>}
            {g.state !== 'ignored' && <button type="button" disabled={busy || !!denied} title={denied ?? undefined} onClick={() => setState('ignored')}>Ignore</button>}
            {g.state !== 'open' && <button type="button" disabled={busy || !!denied} title={denied ?? undefined} onClick={() => setState('open')}>Reopen</button>}
          </div>
          {denied && <p class="muted small">{denied}.</p>}
          <ErrorBox error={patchError} what="Could not change the state" />
          <dl class="stats">
            <div><dt>events (range)</dt><dd>{fmtNum(g.count)}</dd></div>
            <div><dt>events (total)</dt><dd>{fmtNum(g.total_count)}</dd></div>
            <div><dt>users</dt><dd>{fmtNum(g.users_affected)}</dd></div>
            <div><dt>sessions</dt><dd>{fmtNum(g.sessions_affected)}</dd></div>
            <div><dt>first seen</dt><dd><Time iso={g.first_seen} ms={false} /></dd></div>
            <div><dt>last seen</dt><dd><Time iso={g.last_seen} ms={false} /></dd></div>
          </dl>
          {g.sampled_out > 0 && <p class="muted">{fmtNum(g.sampled_out)} further events were counted but not stored (flood protection).</p>}
          {g.trend.length > 1 && (
            <Chart title={`Events per ${fmtMs(g.interval_s * 1000)}`} times={g.trend.map((b) => b.t)} series={[{ label: 'events', values: g.trend.map((b) => b.count), color: '--bad', fill: true }]} height={140} onZoom={(f, t) => zoomTo(route, f, t)} />
          )}
          <p>
            <a href={viewHref(route, 'logs', { fingerprint: g.fingerprint, project: g.project_id })}>All events of this group →</a>
          </p>
          <section aria-labelledby="group-stack-h">
            <h3 id="group-stack-h">Stack</h3>
            {g.stack ? <pre class="stack">{g.stack}</pre> : <p class="muted">No stack was sent with these events.</p>}
          </section>
          <h3>Where it happens</h3>
          <Distributions route={route} top={g.top} samples={g.samples ?? []} />
          {g.suspect_changes.length > 0 && (
            <>
              <h3>Suspect changes</h3>
              <ul class="suspects">
                {g.suspect_changes.map((s) => (
                  <li>
                    <Badge value={s.reason === 'started' ? 'started after' : 'spiked after'} />{' '}
                    <strong>{s.change.event_type}</strong> {s.change.message || s.change.action} <span class="muted">by {s.change.user_id || s.change.engine || 'unknown'} at <Time iso={s.change.timestamp} ms={false} />, {fmtMs(s.lag_ms)} before the {s.reason === 'started' ? 'first error' : 'rise'}{s.before !== undefined ? ` (${s.before} → ${s.after} events)` : ''}</span>
                    {s.diff && s.diff.length > 0 && (
                      <ul class="diff">
                        {s.diff.slice(0, 10).map((d) => <li><code>{d.path}</code> {d.op}: <code>{JSON.stringify(d.before) ?? '∅'}</code> → <code>{JSON.stringify(d.after) ?? '∅'}</code></li>)}
                      </ul>
                    )}
                  </li>
                ))}
              </ul>
            </>
          )}
          <Samples route={route} fp={fp} project={g.project_id} epoch={epoch} />
        </>
      )}
    </aside>
  );
}

function SearchBox({ route }: { route: Route }) {
  const [v, setV] = useState(route.params.get('query') ?? '');
  useEffect(() => setV(route.params.get('query') ?? ''), [route.params.get('query')]);
  return (
    <form class="inline search" role="search" onSubmit={(e) => { e.preventDefault(); update(route, { query: v.trim() || undefined, page: undefined }); }}>
      <label class="inline">Search errors
        <input type="search" data-search value={v} size={28} placeholder='platform:Notion "timed out"' onInput={(e) => setV(e.currentTarget.value)} />
      </label>
      <button type="submit">Search</button>
    </form>
  );
}

export function ErrorsView({ route, epoch, now, me }: ViewProps) {
  const base = baseParams(route, now);
  const state = route.params.get('state') ?? 'open';
  const sort = route.params.get('sort') ?? 'count';
  const search = route.params.get('query') ?? '';
  const page = Math.max(0, Number(route.params.get('page') ?? 0) || 0);
  const fp = route.params.get('fp');
  const gp = route.params.get('gp') ?? route.params.get('project') ?? '';
  // one page at a time: the engine pages by offset and says the total
  const list = useApi((signal) => withSearch({ ...base, state: state === 'all' ? undefined : state, sort, limit: String(PAGE), offset: page ? String(page * PAGE) : undefined }, search,
    (p) => api<ErrorList & { total: number; next_offset: number | null }>('/monitoring/errors', p, { signal })),
  [baseQuery(route), state, sort, search, page], [epoch, now]);
  const shown = list.data?.data.groups ?? [];
  const total = list.data?.data.total ?? shown.length;
  const pages = Math.max(1, Math.ceil(total / PAGE));
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [bulkError, setBulkError] = useState<unknown>(null);
  const [bulkBusy, setBulkBusy] = useState(false);
  const denied = adminDenied(me);
  useEffect(() => setPicked(new Set()), [list.data]);
  const keyOf = (g: { project_id: string; fingerprint: string }) => `${g.project_id}\u0000${g.fingerprint}`;
  const bulk = async (to: 'resolved' | 'ignored') => {
    setBulkBusy(true);
    setBulkError(null);
    try {
      for (const k of picked) {
        const [project, fingerprint] = k.split('\u0000');
        await api(`/monitoring/errors/${encodeURIComponent(fingerprint)}`, { project_id: project }, { method: 'PATCH', body: { state: to } });
      }
      list.reload();
    } catch (e) {
      setBulkError(e);
    } finally {
      setBulkBusy(false);
    }
  };
  const allOnPage = shown.length > 0 && shown.every((g) => picked.has(keyOf(g)));

  return (
    <section class={`view errors-view split-view${fp ? ' with-detail' : ''}`} aria-labelledby="errors-h">
      <div class="pane list-pane">
        <h1 id="errors-h" class="view-title">Errors</h1>
        <div class="toolbar">
          <SearchBox route={route} />
          <div class="seg" role="group" aria-label="state">
            {STATES.map(([v, label]) => (
              <button type="button" class={state === v ? 'on' : ''} aria-pressed={state === v} onClick={() => update(route, { state: v === 'open' ? undefined : v, page: undefined })}>{label}</button>
            ))}
          </div>
          <label class="inline">
            Sort
            <select value={sort} onChange={(e) => update(route, { sort: e.currentTarget.value === 'count' ? undefined : e.currentTarget.value, page: undefined })}>
              {SORTS.map(([v, l]) => <option value={v}>{l}</option>)}
            </select>
          </label>
          <span class="spacer" />
          <Loading show={list.loading} />
        </div>
        {list.data?.asText && <div class="notice">This engine does not know the query language yet: "{search}" was searched as plain text.</div>}
        <div class="toolbar bulk" role="group" aria-label="bulk actions">
          <span class="muted">{picked.size} selected</span>
          <button type="button" disabled={!picked.size || bulkBusy || !!denied} title={denied ?? undefined} onClick={() => bulk('resolved')}>Resolve selected</button>
          <button type="button" disabled={!picked.size || bulkBusy || !!denied} title={denied ?? undefined} onClick={() => bulk('ignored')}>Ignore selected</button>
          {denied && <span class="muted small">{denied}</span>}
          <span class="spacer" />
          {list.data && total > 0 && (
            <nav class="pager" aria-label="pages">
              <button type="button" disabled={page === 0} onClick={() => update(route, { page: page > 1 ? String(page - 1) : undefined })} aria-label="Previous page">‹</button>
              <span>{fmtNum(page * PAGE + 1)}–{fmtNum(page * PAGE + shown.length)} of {fmtNum(total)} groups</span>
              <button type="button" disabled={page + 1 >= pages} onClick={() => update(route, { page: String(page + 1) })} aria-label="Next page">›</button>
            </nav>
          )}
        </div>
        <ErrorBox error={list.error} />
        <ErrorBox error={bulkError} what="Not all changed" />
        {list.data && shown.length === 0 ? (
          <Empty>No {state !== 'all' ? `${state} ` : ''}error groups {search ? 'match the search ' : ''}in this range.</Empty>
        ) : shown.length > 0 ? (
          <div class={`table-wrap${list.loading ? ' refreshing' : ''}`} aria-busy={list.loading}>
            <table class="grid groups">
              <caption class="sr-only">Error groups</caption>
              <thead>
                <tr>
                  <th scope="col"><input type="checkbox" aria-label="Select all on this page" checked={allOnPage}
                    onChange={(e) => { const n = new Set(picked); for (const g of shown) { if (e.currentTarget.checked) n.add(keyOf(g)); else n.delete(keyOf(g)); } setPicked(n); }} /></th>
                  <th scope="col">Error</th><th scope="col">Trend</th><th scope="col" class="num">Events</th><th scope="col" class="num">Users</th><th scope="col">First seen</th><th scope="col">Last seen</th><th scope="col">State</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((g) => {
                  const selected = g.fingerprint === fp;
                  const open = () => update(route, { fp: g.fingerprint, gp: g.project_id });
                  return (
                    <tr class={`row${selected ? ' selected' : ''}`} key={keyOf(g)} tabIndex={0} data-row aria-selected={selected}
                      onClick={open} onKeyDown={(k) => { if (k.key === 'Enter') open(); }}>
                      <td onClick={(e) => e.stopPropagation()}>
                        <input type="checkbox" aria-label={`Select ${title(g)}`} checked={picked.has(keyOf(g))}
                          onChange={(e) => { const n = new Set(picked); if (e.currentTarget.checked) n.add(keyOf(g)); else n.delete(keyOf(g)); setPicked(n); }} />
                      </td>
                      <td class="msg">
                        <div class="g-title">{title(g)}</div>
                        <div class="g-sub muted">{[g.error_type ? g.message.split('\n')[0] : '', g.engine, g.platform, base.project_id ? '' : g.project_id].filter(Boolean).join(' · ')}</div>
                      </td>
                      <td><Sparkline values={g.trend} label={`${g.count} events in range`} /></td>
                      <td class="num">{fmtNum(g.count)}{g.total_count !== g.count && <div class="muted small">{fmtNum(g.total_count)} total</div>}</td>
                      <td class="num">{fmtNum(g.users_affected)}</td>
                      <td class="nowrap" title={g.first_seen ?? ''}>{fmtAgo(g.first_seen)}</td>
                      <td class="nowrap" title={g.last_seen ?? ''}>{fmtAgo(g.last_seen)}</td>
                      <td class="nowrap"><Badge value={g.state} />{g.regression && <> <Badge value="regression" /></>}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        ) : null}
      </div>
      {fp && <Detail route={route} fp={fp} project={gp} epoch={epoch} now={now} me={me} onChanged={list.reload} />}
    </section>
  );
}
