// The shell: token, project and range pickers, the view tabs; the views do the rest.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, getToken, onUnauthorized, setToken } from './api';
import type { Me } from './common';
import { isUtc, setUtc, toLocalInput, zoneLabel } from './format';
import { DEFAULT_RANGE, isRelative, PRESETS, rangeOf, update, useRoute, viewHref, type Route, type View } from './router';
import { onKey } from './keys';
import { LogsView } from './views/logs';
import { ErrorsView } from './views/errors';
import { PerformanceView } from './views/performance';
import { SessionsView } from './views/sessions';
import { AlertsView } from './views/alerts';
import { RulesView } from './views/rules';
import { ChannelsView } from './views/channels';
import { SilencesView } from './views/silences';
import { AuditView } from './views/audit';
import { SettingsView } from './views/settings';

const TABS: { view: View; label: string }[] = [
  { view: 'logs', label: 'Logs' },
  { view: 'errors', label: 'Errors' },
  { view: 'performance', label: 'Performance' },
  { view: 'sessions', label: 'Sessions' },
  { view: 'alerts', label: 'Alerts' },
  { view: 'rules', label: 'Rules' },
  { view: 'channels', label: 'Channels' },
  { view: 'silences', label: 'Silences' },
  { view: 'audit', label: 'Audit' },
  { view: 'settings', label: 'Settings' },
];
const THEME_KEY = 'puraify.monitoring.theme';
const REFRESH = [['off', 'Off', 0], ['10s', '10 s', 10_000], ['1m', '1 min', 60_000]] as const;

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
      await api('/monitoring/whoami');
      onSaved();
    } catch (e) {
      // 401: unknown token; 403: a key without the read scope (an ingest key) cannot use the dashboard
      setToken(prev);
      setError(e instanceof ApiError && e.status === 403 ? 'this key has no "read" scope; the dashboard needs a key that may read' : (e as Error).message);
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

function useTheme(): [string, (t: string) => void] {
  const [theme, setTheme] = useState(() => {
    try {
      return localStorage.getItem(THEME_KEY) ?? 'system';
    } catch {
      return 'system';
    }
  });
  useEffect(() => {
    // "system" follows the OS setting, also when it changes while the page is open
    const media = matchMedia('(prefers-color-scheme: dark)');
    const apply = () => document.documentElement.setAttribute('data-theme', theme === 'system' ? (media.matches ? 'dark' : 'light') : theme);
    apply();
    media.addEventListener('change', apply);
    try {
      localStorage.setItem(THEME_KEY, theme);
    } catch {
      // private mode
    }
    return () => media.removeEventListener('change', apply);
  }, [theme]);
  return [theme, setTheme];
}

/** Unread in-app notifications for the tab's badge: on load, on every refresh, and each minute. */
function useUnread(project: string, epoch: number, enabled: boolean): number | null {
  const [n, setN] = useState<number | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setTick((x) => x + 1), 60_000);
    const on = () => setTick((x) => x + 1);
    addEventListener('puraify:notifications', on);
    return () => {
      clearInterval(t);
      removeEventListener('puraify:notifications', on);
    };
  }, []);
  useEffect(() => {
    if (!enabled) return;
    const ctl = new AbortController();
    api<{ unread: number }>('/monitoring/notifications', { project_id: project || undefined, limit: '1' }, { signal: ctl.signal })
      .then((r) => setN(r.unread), () => undefined);
    return () => ctl.abort();
  }, [project, epoch, tick, enabled]);
  return enabled ? n : null;
}

/** Parameters that open a pane, per view: Esc removes them. */
const PANE_PARAMS = ['fp', 'gp', 'sid', 'sp', 'group', 'edit', 'new', 'dup'];

export function App() {
  const route = useRoute();
  const [tokenReason, setTokenReason] = useState<string | null>(getToken() ? null : '');
  const [epoch, setEpoch] = useState(0);
  const [me, setMe] = useState<Me | null>(null);
  const [meError, setMeError] = useState<unknown>(null);
  const [theme, setTheme] = useTheme();
  const [utc, setUtcState] = useState(isUtc());
  const [refresh, setRefresh] = useState<string>('off');
  const [auto, setAuto] = useState(0);

  const rangeKey = ['project', 'range', 'from', 'to'].map((k) => route.params.get(k)).join('|');
  const relative = isRelative(route.params);
  // relative ranges end at the moment of the last view, range or project change, refresh or
  // auto-refresh; fixed in between so that picking a row does not re-run every query
  const now = useMemo(() => Date.now(), [route.view, rangeKey, epoch, auto]);

  // the first refusal's words stay: requests cancelled by the token screen also answer 401
  useEffect(() => onUnauthorized((msg) => setTokenReason((prev) => prev || msg || 'the token was refused')), []);

  useEffect(() => {
    const ms = REFRESH.find((r) => r[0] === refresh)?.[2] ?? 0;
    if (!ms || !relative) return;
    const t = setInterval(() => setAuto((x) => x + 1), ms);
    return () => clearInterval(t);
  }, [refresh, relative]);

  // what the token may do, asked again on every Refresh; the views stay mounted (and their rows on
  // screen) while a refresh asks it again, and are only taken down for another token
  const meFor = useRef<string | null>(null);
  useEffect(() => {
    if (tokenReason !== null) return;
    const ctl = new AbortController();
    const token = getToken();
    setMeError(null);
    if (meFor.current !== token) setMe(null);
    api<Me>('/monitoring/whoami', {}, { signal: ctl.signal }).then((m) => {
      meFor.current = token;
      setMe(m);
    }, (e) => { if (!ctl.signal.aborted) setMeError(e); });
    return () => ctl.abort();
  }, [epoch, tokenReason]);

  const routeRef = useRef(route);
  routeRef.current = route;
  useEffect(() => {
    const h = (e: KeyboardEvent) => onKey(e, () => {
      const r = routeRef.current;
      const open = PANE_PARAMS.filter((k) => r.params.has(k));
      if (open.length === 0) return false;
      update(r, Object.fromEntries(open.map((k) => [k, undefined])));
      return true;
    });
    addEventListener('keydown', h);
    return () => removeEventListener('keydown', h);
  }, []);

  const unread = useUnread(route.params.get('project') ?? '', epoch + auto, tokenReason === null && me !== null);

  if (tokenReason !== null) {
    return (
      <TokenDialog reason={tokenReason} onSaved={() => { setTokenReason(null); setEpoch((e) => e + 1); }}
        onCancel={getToken() && tokenReason === 'change' ? () => setTokenReason(null) : undefined} />
    );
  }

  const props = me ? { route, epoch: epoch + auto, now, me } : null;
  return (
    <div class="shell">
      <a class="skip-link" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
      <header class="top-bar">
        <a class="brand" href={viewHref(route, 'logs')}>PURAIFY <span>Monitoring</span></a>
        <nav class="tabs" aria-label="views">
          {TABS.map((t) => (
            <a href={viewHref(route, t.view)} class={route.view === t.view ? 'active' : ''} aria-current={route.view === t.view ? 'page' : undefined}>
              {t.label}
              {t.view === 'alerts' && unread ? <span class="count-badge" aria-label={`${unread} unread notifications`}>{unread}</span> : null}
            </a>
          ))}
        </nav>
        <div class="controls">
          <ProjectPicker route={route} epoch={epoch} />
          <RangePicker route={route} />
          <label class="picker" title={relative ? 'reload this view on a timer' : 'only for ranges that end now'}>
            <span>Auto-refresh</span>
            <select value={relative ? refresh : 'off'} disabled={!relative} onChange={(e) => setRefresh(e.currentTarget.value)}>
              {REFRESH.map(([v, l]) => <option value={v}>{l}</option>)}
            </select>
          </label>
          <button type="button" onClick={() => setEpoch((e) => e + 1)} title="Reload this view">Refresh</button>
          <label class="picker check" title={`times are shown in ${zoneLabel()}`}>
            <input type="checkbox" checked={utc} onChange={(e) => { setUtc(e.currentTarget.checked); setUtcState(e.currentTarget.checked); }} />
            UTC
          </label>
          <label class="picker">
            <span>Theme</span>
            <select value={theme} onChange={(e) => setTheme(e.currentTarget.value)}>
              <option value="system">System</option>
              <option value="light">Light</option>
              <option value="dark">Dark</option>
            </select>
          </label>
          <button type="button" onClick={() => setTokenReason('change')} title="Use another token">Token</button>
        </div>
      </header>
      <main class="content" id="main" tabIndex={-1} key={utc ? 'utc' : 'local'}>
        {!props ? (
          meError ? <div class="notice error" role="alert">The engine did not say what this token may do: {(meError as Error).message}</div> : <span class="loading" aria-live="polite">Connecting…</span>
        ) : (
          <>
            {route.view === 'logs' && <LogsView {...props} />}
            {route.view === 'errors' && <ErrorsView {...props} />}
            {route.view === 'performance' && <PerformanceView {...props} />}
            {route.view === 'sessions' && <SessionsView {...props} />}
            {route.view === 'alerts' && <AlertsView {...props} />}
            {route.view === 'rules' && <RulesView {...props} />}
            {route.view === 'channels' && <ChannelsView {...props} />}
            {route.view === 'silences' && <SilencesView {...props} />}
            {route.view === 'audit' && <AuditView {...props} />}
            {route.view === 'settings' && <SettingsView {...props} />}
          </>
        )}
      </main>
    </div>
  );
}
