// The shell: token, project and range pickers, the view tabs; the views do the rest.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, getToken, onUnauthorized, routeAnswers, setToken } from './api';
import type { Caps } from './common';
import { toLocalInput } from './format';
import { DEFAULT_RANGE, PRESETS, rangeOf, update, useRoute, viewHref, type Route, type View } from './router';
import { LogsView } from './views/logs';
import { ErrorsView } from './views/errors';
import { PerformanceView } from './views/performance';
import { SessionsView } from './views/sessions';
import { AlertsView } from './views/alerts';

const TABS: { view: View; label: string; cap?: keyof Caps }[] = [
  { view: 'logs', label: 'Logs' },
  { view: 'errors', label: 'Errors' },
  { view: 'performance', label: 'Performance' },
  { view: 'sessions', label: 'Sessions', cap: 'sessions' },
  { view: 'alerts', label: 'Alerts', cap: 'alerts' },
];

const RECENT_KEY = 'puraify.monitoring.projects';

function recentProjects(): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(RECENT_KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, 20) : [];
  } catch {
    return [];
  }
}

function rememberProject(p: string): void {
  try {
    localStorage.setItem(RECENT_KEY, JSON.stringify([p, ...recentProjects().filter((x) => x !== p)].slice(0, 20)));
  } catch {
    // ignore
  }
}

function TokenDialog({ reason, onSaved, onCancel }: { reason: string; onSaved(): void; onCancel?: () => void }) {
  const [value, setValue] = useState('');
  const [checking, setChecking] = useState(false);
  const [error, setError] = useState('');
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const t = value.trim();
    if (!t) return;
    setChecking(true);
    setError('');
    const prev = getToken();
    setToken(t);
    try {
      await api('/monitoring/logs', { limit: '1' });
      onSaved();
    } catch (e) {
      const msg = (e as Error).message;
      // a read-less key (ingest only) is still a token; anything but 401 is accepted
      if ((e as { status?: number }).status === 401) {
        setToken(prev);
        setError(msg);
      } else onSaved();
    } finally {
      setChecking(false);
    }
  };
  return (
    <div class="token-screen">
      <form class="token-card" onSubmit={submit}>
        <h2>Connect to the engine</h2>
        <p>Paste a bearer token: the admin token (in <code>data/admin-token</code> on the engine's machine) or a project key with the <code>read</code> scope. It is kept in this browser's local storage.</p>
        {(error || (reason && reason !== 'change')) && <div class="notice error" role="alert">{error || reason}</div>}
        <label>
          Token
          <input name="token" type="password" autoComplete="off" autoFocus value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        </label>
        <div class="token-actions">
          <button type="submit" class="primary" disabled={checking || !value.trim()}>{checking ? 'Checking…' : 'Connect'}</button>
          {onCancel && <button type="button" onClick={onCancel}>Cancel</button>}
        </div>
      </form>
    </div>
  );
}

function ProjectPicker({ route, epoch }: { route: Route; epoch: number }) {
  const current = route.params.get('project') ?? '';
  const [value, setValue] = useState(current);
  const [known, setKnown] = useState<string[]>(recentProjects);
  useEffect(() => setValue(current), [current]);
  useEffect(() => {
    const ctl = new AbortController();
    // projects that sent events in the last hour, beside the ones picked before
    api<{ by_project: { project_id: string }[] }>('/monitoring/load', { window: '3600' }, { signal: ctl.signal })
      .then((r) => setKnown([...new Set([...recentProjects(), ...r.by_project.map((p) => p.project_id)])]))
      .catch(() => undefined);
    return () => ctl.abort();
  }, [epoch]);
  const apply = () => {
    const p = value.trim();
    if (p) rememberProject(p);
    if (p !== current) update(route, { project: p });
  };
  return (
    <form class="picker" onSubmit={(e) => { e.preventDefault(); apply(); }}>
      <label for="project">Project</label>
      <input id="project" name="project" list="projects" placeholder="all projects" value={value} size={14}
        onInput={(e) => setValue(e.currentTarget.value)} onChange={apply} />
      <datalist id="projects">{known.map((p) => <option value={p} />)}</datalist>
    </form>
  );
}

function RangePicker({ route }: { route: Route }) {
  const r = rangeOf(route.params);
  const [custom, setCustom] = useState(r.key === 'custom');
  const [from, setFrom] = useState(toLocalInput(Date.parse(r.from)));
  const [to, setTo] = useState(r.to ? toLocalInput(Date.parse(r.to)) : '');
  useEffect(() => setCustom(r.key === 'custom'), [r.key]);
  return (
    <div class="picker">
      <label for="range">Range</label>
      <select id="range" value={custom ? 'custom' : r.key} onChange={(e) => {
        const v = e.currentTarget.value;
        if (v === 'custom') {
          setFrom(toLocalInput(Date.parse(r.from)));
          setCustom(true);
        } else update(route, { range: v === DEFAULT_RANGE ? undefined : v, from: undefined, to: undefined });
      }}>
        {PRESETS.map((p) => <option value={p.key}>{p.label}</option>)}
        <option value="custom">Custom…</option>
      </select>
      {custom && (
        <form class="custom-range" onSubmit={(e) => {
          e.preventDefault();
          const f = new Date(from).getTime();
          const t = to ? new Date(to).getTime() : NaN;
          if (!Number.isFinite(f)) return;
          update(route, { range: 'custom', from: String(f), to: Number.isFinite(t) ? String(t) : undefined });
        }}>
          <input type="datetime-local" aria-label="from" value={from} onInput={(e) => setFrom(e.currentTarget.value)} required />
          <span>→</span>
          <input type="datetime-local" aria-label="to" value={to} onInput={(e) => setTo(e.currentTarget.value)} title="empty = now" />
          <button type="submit">Apply</button>
        </form>
      )}
    </div>
  );
}

export function App() {
  const route = useRoute();
  const [tokenReason, setTokenReason] = useState<string | null>(getToken() ? null : '');
  const [epoch, setEpoch] = useState(0);
  const [caps, setCaps] = useState<Caps>({ stream: false, sessions: true, alerts: true, notifications: true });

  const rangeKey = ['project', 'range', 'from', 'to'].map((k) => route.params.get(k)).join('|');
  // relative ranges end at the moment of the last view, range or project change or refresh;
  // fixed in between so that picking a row does not re-run every query
  const now = useMemo(() => Date.now(), [route.view, rangeKey, epoch]);

  useEffect(() => onUnauthorized((msg) => setTokenReason(msg || 'the token was refused')), []);

  useEffect(() => {
    if (tokenReason !== null) return;
    let live = true;
    // optional routes: a bad parameter is a cheap probe (400 = the route is there, 404 = it is not)
    Promise.all([
      routeAnswers('/monitoring/stream', { from: 'not-a-time' }),
      routeAnswers('/monitoring/sessions', { limit: '0' }),
      routeAnswers('/monitoring/alerts', { limit: '0' }),
      routeAnswers('/monitoring/notifications', { limit: '0' }),
    ]).then(([stream, sessions, alerts, notifications]) => {
      if (live) setCaps({ stream, sessions, alerts: alerts || notifications, notifications });
    });
    return () => {
      live = false;
    };
  }, [epoch, tokenReason]);

  if (tokenReason !== null) {
    return (
      <TokenDialog reason={tokenReason} onSaved={() => { setTokenReason(null); setEpoch((e) => e + 1); }}
        onCancel={getToken() && tokenReason === 'change' ? () => setTokenReason(null) : undefined} />
    );
  }

  const props = { route, epoch, now, caps };
  return (
    <div class="shell">
      <header class="top-bar">
        <a class="brand" href={viewHref(route, 'logs')}>PURAIFY <span>Monitoring</span></a>
        <nav class="tabs" aria-label="views">
          {TABS.filter((t) => !t.cap || caps[t.cap]).map((t) => (
            <a href={viewHref(route, t.view)} class={route.view === t.view ? 'active' : ''} aria-current={route.view === t.view ? 'page' : undefined}>{t.label}</a>
          ))}
        </nav>
        <div class="controls">
          <ProjectPicker route={route} epoch={epoch} />
          <RangePicker route={route} />
          <button type="button" onClick={() => setEpoch((e) => e + 1)} title="Reload this view">Refresh</button>
          <button type="button" onClick={() => setTokenReason('change')} title="Use another token">Token</button>
        </div>
      </header>
      <main class="content">
        {route.view === 'logs' && <LogsView {...props} />}
        {route.view === 'errors' && <ErrorsView {...props} />}
        {route.view === 'performance' && <PerformanceView {...props} />}
        {route.view === 'sessions' && <SessionsView {...props} />}
        {route.view === 'alerts' && <AlertsView {...props} />}
      </main>
    </div>
  );
}
