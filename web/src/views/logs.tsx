// Logs: search with filters, a table with expandable rows, cursor paging and a live tail.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, stream, type LogsPage, type Params, type StoredEvent } from '../api';
import { baseParams, LINK_FILTERS, type ViewProps } from '../common';
import { Empty, ErrorBox, EventDetail, EventLevel, Loading, Time } from '../components';
import { fmtMs } from '../format';
import { update, type Route } from '../router';

const STATUSES = ['success', 'error', 'failure', 'timeout', 'retry'];
const SEVERITIES = ['debug', 'info', 'warning', 'low', 'medium', 'high', 'critical'];
const ENGINES = ['execution', 'validation', 'vault', 'platform_builder', 'feedback_loop', 'engine_control'];
const EVENT_TYPES = ['execution', 'error', 'log', 'validation', 'access', 'flow_run', 'action_error', 'config_change', 'deploy', 'alert', 'audit'];
const FORM_FIELDS = ['status', 'severity', 'engine', 'event_type', 'platform', 'q'] as const;
const PAGE = 100;
const LIVE_CAP = 2000;

/** The search as the API wants it, from the route. */
function searchParams(route: Route, now: number): Params {
  const p: Params = { ...baseParams(route, now) };
  for (const k of [...FORM_FIELDS, ...LINK_FILTERS]) p[k] = route.params.get(k) ?? undefined;
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
        search
        <input name="q" type="search" placeholder="text in message, error type, stack" value={f.q} onInput={set('q')} />
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

function LogRow({ e, open, toggle, route, fresh }: { e: StoredEvent; open: boolean; toggle(): void; route: Route; fresh: boolean }) {
  const isErr = !!e.fingerprint || e.event_type === 'error';
  return (
    <>
      <tr class={`row${open ? ' open' : ''}${isErr ? ' is-error' : ''}${fresh ? ' fresh' : ''}`} tabIndex={0} aria-expanded={open}
        onClick={toggle} onKeyDown={(k) => { if (k.key === 'Enter' || k.key === ' ') { k.preventDefault(); toggle(); } }}>
        <td class="nowrap mono"><Time iso={e.timestamp} /></td>
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
          <td colSpan={7}><EventDetail e={e} route={route} /></td>
        </tr>
      )}
    </>
  );
}

export function LogsView({ route, epoch, now, caps }: ViewProps) {
  const [rows, setRows] = useState<StoredEvent[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [open, setOpen] = useState<Set<string>>(new Set());
  const [live, setLive] = useState(false);
  const [liveState, setLiveState] = useState<{ connected: boolean; received: number; missed: number; error: unknown }>({ connected: false, received: 0, missed: 0, error: null });
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const params = searchParams(route, now);
  const key = JSON.stringify(params);
  const ctlRef = useRef<AbortController | null>(null);

  const load = async (after: string | null) => {
    ctlRef.current?.abort();
    const ctl = new AbortController();
    ctlRef.current = ctl;
    setLoading(true);
    setError(null);
    try {
      const page = await api<LogsPage>('/monitoring/logs', { ...params, limit: String(PAGE), cursor: after ?? undefined }, { signal: ctl.signal });
      if (ctl.signal.aborted) return;
      setRows((prev) => (after ? [...prev, ...page.logs] : page.logs));
      setCursor(page.next_cursor);
    } catch (e) {
      if (!ctl.signal.aborted) setError(e);
    } finally {
      if (!ctl.signal.aborted) setLoading(false);
    }
  };

  useEffect(() => {
    setOpen(new Set());
    setFresh(new Set());
    void load(null);
    return () => ctlRef.current?.abort();
  }, [key, epoch]);

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
      setRows((prev) => {
        const ids = new Set(novel.map((e) => e.id));
        return [...novel, ...prev.filter((e) => !ids.has(e.id))].slice(0, LIVE_CAP);
      });
      setFresh((prev) => new Set([...prev, ...novel.map((e) => e.id)]));
      setLiveState((s) => ({ ...s, received: s.received + novel.length }));
    };
    stream('/monitoring/stream', filters, ctl.signal, (type, data) => {
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

  return (
    <section class="view logs-view">
      <FilterForm route={route} />
      <div class="toolbar">
        <Chips route={route} />
        <span class="spacer" />
        <Loading show={loading} />
        <span class="muted">{rows.length} event{rows.length === 1 ? '' : 's'}{cursor ? '+' : ''}</span>
        {caps.stream && (
          <button type="button" class={live ? 'live on' : 'live'} aria-pressed={live} onClick={() => setLive(!live)}
            title="Tail new events as they arrive (Server-Sent Events)">
            <span class="dot" /> {live ? (liveState.connected ? `Live · ${liveState.received} new` : 'Connecting…') : 'Live'}
          </button>
        )}
      </div>
      <ErrorBox error={error} />
      <ErrorBox error={liveState.error} what="Live" />
      {live && liveState.missed > 0 && (
        <div class="notice">The live tail skipped {liveState.missed} events it could not deliver fast enough; Search shows them all.</div>
      )}
      {rows.length === 0 && !loading && !error ? (
        <Empty>
          No events match in this range. Widen the time range, clear a filter, or check the project.
        </Empty>
      ) : (
        <div class="table-wrap">
          <table class="grid logs">
            <thead>
              <tr><th>Time</th><th>Level</th><th>Type</th><th>Engine</th><th>Platform · action</th><th>Message</th><th class="num">Duration</th></tr>
            </thead>
            <tbody>
              {rows.map((e) => <LogRow key={e.id} e={e} open={open.has(e.id)} toggle={() => toggle(e.id)} route={route} fresh={fresh.has(e.id)} />)}
            </tbody>
          </table>
        </div>
      )}
      {cursor && (
        <div class="more">
          <button type="button" onClick={() => load(cursor)} disabled={loading}>{loading ? 'Loading…' : 'Load more'}</button>
        </div>
      )}
      {!cursor && rows.length > 0 && !loading && <div class="more muted">End of results</div>}
    </section>
  );
}
