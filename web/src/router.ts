// Hash routing: #/<view>?<params>. The project and the time range travel with every view, so a
// link to any view is a complete, shareable query. Alert payloads link here too, through the same
// shapes (src/alerts/links.ts): #/errors?project=&fp= and #/alerts?project=&group=.
import { useEffect, useState } from 'preact/hooks';

export const VIEWS = ['logs', 'errors', 'performance', 'sessions', 'alerts', 'rules', 'channels', 'silences', 'audit', 'settings'] as const;
export type View = (typeof VIEWS)[number];

export interface Route {
  view: View;
  params: URLSearchParams;
}

/** Carried over when switching views. */
const GLOBAL = ['project', 'range', 'from', 'to'];

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  // links sent by earlier versions: #/errors/<fp>?project_id=… and #/alerts?project_id=…&group_id=…
  const legacyProject = params.get('project_id');
  if (legacyProject && !params.get('project')) params.set('project', legacyProject);
  params.delete('project_id');
  const slash = path.indexOf('/');
  const head = slash < 0 ? path : path.slice(0, slash);
  if (head === 'errors' && slash > 0) params.set('fp', decodeURIComponent(path.slice(slash + 1)));
  if (head === 'alerts' && params.get('group_id')) {
    params.set('group', params.get('group_id')!);
    params.delete('group_id');
  }
  const view = (VIEWS as readonly string[]).includes(head) ? (head as View) : 'logs';
  return { view, params };
}

export function hrefFor(view: View, params: URLSearchParams | Record<string, string | undefined>): string {
  const p = params instanceof URLSearchParams ? new URLSearchParams(params) : new URLSearchParams();
  if (!(params instanceof URLSearchParams)) for (const [k, v] of Object.entries(params)) if (v) p.set(k, v);
  const s = p.toString();
  return `#/${view}${s ? `?${s}` : ''}`;
}

/** A link to another view keeping the project and range, plus `extra`. */
export function viewHref(route: Route, view: View, extra: Record<string, string | undefined> = {}): string {
  const p = new URLSearchParams();
  for (const k of GLOBAL) {
    const v = route.params.get(k);
    if (v) p.set(k, v);
  }
  for (const [k, v] of Object.entries(extra)) if (v) p.set(k, v);
  return hrefFor(view, p);
}

export function navigate(view: View, params: URLSearchParams): void {
  const h = hrefFor(view, params);
  if (location.hash !== h) location.hash = h;
}

/** Sets (or with undefined / '' removes) params of the current view. */
export function update(route: Route, changes: Record<string, string | readonly string[] | undefined>): void {
  const p = new URLSearchParams(route.params);
  for (const [k, v] of Object.entries(changes)) {
    p.delete(k);
    if (typeof v === 'string') {
      if (v !== '') p.set(k, v);
    } else if (v) for (const x of v) if (x) p.append(k, x);
  }
  navigate(route.view, p);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

// ---- time range ------------------------------------------------------------------------------

export const PRESETS: { key: string; label: string; ms: number }[] = [
  { key: '15m', label: 'Last 15 min', ms: 15 * 60_000 },
  { key: '1h', label: 'Last hour', ms: 3_600_000 },
  { key: '6h', label: 'Last 6 hours', ms: 6 * 3_600_000 },
  { key: '24h', label: 'Last 24 hours', ms: 24 * 3_600_000 },
  { key: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
  { key: '30d', label: 'Last 30 days', ms: 30 * 86_400_000 },
];
export const DEFAULT_RANGE = '24h';

/** Whether the range ends "now" (a preset), so auto-refresh has something to move. */
export function isRelative(params: URLSearchParams): boolean {
  return rangeOf(params).key !== 'custom';
}

/** The range as ISO strings for the API; `to` is absent for "until now". */
export function rangeOf(params: URLSearchParams, now = Date.now()): { from: string; to?: string; key: string } {
  const key = params.get('range') ?? (params.get('from') ? 'custom' : DEFAULT_RANGE);
  if (key === 'custom') {
    const from = Number(params.get('from'));
    const to = Number(params.get('to'));
    return {
      key,
      from: new Date(Number.isFinite(from) && from > 0 ? from : now - 86_400_000).toISOString(),
      to: Number.isFinite(to) && to > 0 ? new Date(to).toISOString() : undefined,
    };
  }
  const preset = PRESETS.find((p) => p.key === key) ?? PRESETS.find((p) => p.key === DEFAULT_RANGE)!;
  return { key: preset.key, from: new Date(now - preset.ms).toISOString() };
}

/** A dragged chart range becomes the view's range (fixed, so it can be shared). */
export function zoomTo(route: Route, from: number, to: number): void {
  update(route, { range: 'custom', from: String(Math.floor(from)), to: String(Math.ceil(to)) });
}
