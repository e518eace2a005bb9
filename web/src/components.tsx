// Shared pieces: error and empty states, badges, an event's full detail, sparklines, top lists.
import { useEffect, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { ApiError, type StoredEvent, type TopValue } from './api';
import { fmtMs, fmtNum, fmtTime } from './format';
import { viewHref, type Route } from './router';

export function ErrorBox({ error, what }: { error: unknown; what?: string }) {
  if (!error) return null;
  if (error instanceof ApiError) {
    const fields = error.details?.errors ?? [];
    return (
      <div class="notice error" role="alert">
        <strong>{what ? `${what}: ` : ''}{error.status ? `${error.status} ` : ''}{error.code}</strong> — {error.message}
        {error.status === 401 && <div>Enter a valid token to continue.</div>}
        {fields.length > 1 && (
          <ul>{fields.map((f) => <li>{f.field}: {f.message}</li>)}</ul>
        )}
      </div>
    );
  }
  return <div class="notice error" role="alert">{what ? `${what}: ` : ''}{String((error as Error)?.message ?? error)}</div>;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

export function Loading({ show }: { show: boolean }) {
  return show ? <span class="loading" aria-live="polite">Loading…</span> : null;
}

const LEVEL: Record<string, string> = {
  critical: 'crit', high: 'bad', error: 'bad', failure: 'bad', failed: 'bad', timeout: 'bad', fatal: 'crit',
  medium: 'warn', warning: 'warn', warn: 'warn', retry: 'warn', low: 'info', info: 'info', debug: 'muted',
  success: 'ok', ok: 'ok', delivered: 'ok', resolved: 'ok', open: 'bad', ignored: 'muted', firing: 'bad', silenced: 'muted',
  spike: 'bad', regression: 'warn', pending: 'warn', 'started after': 'warn', 'spiked after': 'warn',
};

export function Badge({ value, title }: { value: string | null | undefined; title?: string }) {
  if (!value) return null;
  return <span class={`badge ${LEVEL[value.toLowerCase()] ?? 'plain'}`} title={title}>{value}</span>;
}

/** The level shown for an event: its severity, else its status. */
export function EventLevel({ e }: { e: StoredEvent }) {
  return (
    <span class="level">
      <Badge value={e.severity || e.status || e.event_type} />
      {e.severity && e.status && <Badge value={e.status} />}
    </span>
  );
}

const FIELDS: (keyof StoredEvent)[] = [
  'id', 'timestamp', 'received_at', 'project_id', 'event_type', 'engine', 'triggered_by', 'platform', 'action', 'status', 'severity',
  'error_type', 'flow_id', 'session_id', 'user_id', 'trace_id', 'span_id', 'duration_ms', 'retries', 'fingerprint',
];

/** Every field of an event, its attributes and its stack; correlation keys link to other views. */
export function EventDetail({ e, route }: { e: StoredEvent; route: Route }) {
  const attrs = Object.entries(e.attributes ?? {});
  const link = (k: keyof StoredEvent, v: string) => {
    if (k === 'session_id') return <a href={viewHref(route, 'sessions', { sid: v, sp: e.project_id })}>{v}</a>;
    if (k === 'fingerprint') return <a href={viewHref(route, 'errors', { fp: v, gp: e.project_id })}>{v}</a>;
    if (k === 'trace_id' || k === 'user_id' || k === 'flow_id') return <a href={viewHref(route, 'logs', { [k]: v })}>{v}</a>;
    if (k === 'duration_ms') return fmtMs(Number(v));
    return v;
  };
  return (
    <div class="event-detail" role="group" aria-label="Event details">
      {e.message && <p class="message-full">{e.message}</p>}
      <dl class="kv">
        {FIELDS.map((k) => {
          const v = e[k];
          if (v === null || v === undefined || v === '') return null;
          return [<dt>{k}</dt>, <dd>{link(k, String(v))}</dd>];
        })}
        {e.alert && [<dt>alert</dt>, <dd>yes</dd>]}
        {e.sampled && [<dt>sampled</dt>, <dd>yes (flood protection kept a sample)</dd>]}
      </dl>
      {attrs.length > 0 && (
        <>
          <h4>Attributes</h4>
          <dl class="kv">
            {attrs.map(([k, v]) => [<dt>{k}</dt>, <dd><a href={viewHref(route, 'logs', { [`attr.${k}`]: v })} title="filter by this attribute">{v}</a></dd>])}
          </dl>
        </>
      )}
      {e.stack && (
        <>
          <h4>Stack</h4>
          <pre class="stack">{e.stack}</pre>
        </>
      )}
    </div>
  );
}

/** A small trend line (SVG): fast enough for a hundred rows, no canvas per row. */
export function Sparkline({ values, width = 120, height = 26, label }: { values: number[]; width?: number; height?: number; label?: string }) {
  const n = values.length;
  if (n === 0) return <svg class="spark" width={width} height={height} />;
  const max = Math.max(1, ...values);
  const x = (i: number) => (n === 1 ? width / 2 : (i / (n - 1)) * (width - 2) + 1);
  const y = (v: number) => height - 1 - (v / max) * (height - 3);
  const pts = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  return (
    <svg class="spark" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label ?? `trend, peak ${max}`}>
      <polygon points={`${x(0).toFixed(1)},${height} ${pts} ${x(n - 1).toFixed(1)},${height}`} class="spark-area" />
      <polyline points={pts} class="spark-line" />
    </svg>
  );
}

export function TopList({ title, items, href }: { title: string; items: TopValue[] | undefined; href?: (v: string) => string }) {
  if (!items || items.length === 0) return null;
  const max = Math.max(...items.map((i) => i.count), 1);
  return (
    <section class="top" aria-label={title}>
      <h4>{title}</h4>
      <ul>
        {items.slice(0, 8).map((i) => (
          <li>
            <span class="bar" style={{ width: `${(i.count / max) * 100}%` }} />
            <span class="top-v">{i.value ? (href ? <a href={href(i.value)}>{i.value}</a> : i.value) : <em>(none)</em>}</span>
            <span class="top-n">{fmtNum(i.count)}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function Time({ iso, ms = true }: { iso: string | null | undefined; ms?: boolean }) {
  return <time dateTime={iso ?? undefined} title={iso ?? undefined}>{fmtTime(iso, ms)}</time>;
}

/** A destructive action asks once more in place (no browser dialog): the second click does it. */
export function ConfirmButton({ label, confirm, onConfirm, name, disabled, title }: { label: string; confirm: string; onConfirm(): void; name: string; disabled?: boolean; title?: string }) {
  const [asking, setAsking] = useState(false);
  useEffect(() => {
    if (!asking) return;
    const t = setTimeout(() => setAsking(false), 4000);
    return () => clearTimeout(t);
  }, [asking]);
  return asking
    ? <button type="button" class="danger" onClick={() => { setAsking(false); onConfirm(); }} aria-label={`${confirm}: ${name}`}>{confirm}</button>
    : <button type="button" disabled={disabled} title={title} onClick={() => setAsking(true)} aria-label={`${label} ${name}`}>{label}</button>;
}

/** Why a control is disabled, read out with it. */
export function Denied({ reason }: { reason: string | null }) {
  return reason ? <span class="muted small denied">{reason}</span> : null;
}

/** A form in the side pane: its title, a close button, the fields. */
export function FormPane({ label, title, onClose, onSubmit, children }: { label: string; title: string; onClose(): void; onSubmit(): void; children: ComponentChildren }) {
  return (
    <form class="pane detail-pane form-pane" aria-label={label} onSubmit={(e) => { e.preventDefault(); onSubmit(); }}>
      <div class="pane-head">
        <h2>{title}</h2>
        <button type="button" class="close" aria-label="close" onClick={onClose}>×</button>
      </div>
      {children}
    </form>
  );
}
