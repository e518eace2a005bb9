// Small formatters: times in the viewer's zone or UTC (the toggle in the top bar), durations, counts.

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const UTC_KEY = 'puraify.monitoring.utc';

let utc = (() => {
  try {
    return localStorage.getItem(UTC_KEY) === '1';
  } catch {
    return false;
  }
})();

export function isUtc(): boolean {
  return utc;
}

export function setUtc(on: boolean): void {
  utc = on;
  try {
    localStorage.setItem(UTC_KEY, on ? '1' : '0');
  } catch {
    // private mode: for this page only
  }
}

/** The zone times are shown in: "UTC", or the local offset and zone name ("UTC+02:00 Europe/Berlin"). */
export function zoneLabel(at = Date.now()): string {
  if (utc) return 'UTC';
  const off = -new Date(at).getTimezoneOffset();
  const sign = off >= 0 ? '+' : '−';
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return `UTC${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}${name && name !== 'UTC' ? ` ${name}` : ''}`;
}

interface Parts { y: number; mo: number; d: number; h: number; mi: number; s: number; ms: number }
function parts(d: Date): Parts {
  return utc
    ? { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds(), ms: d.getUTCMilliseconds() }
    : { y: d.getFullYear(), mo: d.getMonth() + 1, d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds(), ms: d.getMilliseconds() };
}

/** 2025-07-25 14:01:00.123 in the chosen zone; today's times without the date. */
export function fmtTime(iso: string | number | null | undefined, ms = true): string {
  if (iso === null || iso === undefined || iso === '') return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = parts(d);
  const time = `${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}${ms ? `.${pad(p.ms, 3)}` : ''}`;
  const n = parts(new Date());
  if (p.y === n.y && p.mo === n.mo && p.d === n.d) return time;
  return `${p.y}-${pad(p.mo)}-${pad(p.d)} ${time}`;
}

export function fmtAgo(iso: string | null | undefined): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 0) return 'in the future';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m ${Math.round((ms % 60_000) / 1000)}s`;
  return `${Math.floor(ms / 3_600_000)}h ${Math.round((ms % 3_600_000) / 60_000)}m`;
}

export function fmtNum(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return n.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function fmtPct(r: number | null | undefined): string {
  if (r === null || r === undefined || Number.isNaN(r)) return '—';
  return `${(r * 100).toFixed(r > 0 && r < 0.01 ? 2 : 1)}%`;
}

/** Local datetime-local input value ↔ epoch ms. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Only http(s) links are rendered as links (a `javascript:` URL from event data never is). */
export function safeHref(url: string | null | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : undefined;
  } catch {
    return undefined;
  }
}
