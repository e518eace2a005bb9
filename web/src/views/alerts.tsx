// Alerts: the notification history (what fired, where it was delivered) and the in-app notifications.
import { useState } from 'preact/hooks';
import { api, type AlertItem, type UiNotification } from '../api';
import { baseParams, type ViewProps } from '../common';
import { Badge, Empty, ErrorBox, Loading, Time } from '../components';
import { fmtNum, safeHref } from '../format';
import { useApi } from '../hooks';
import { update } from '../router';

function Deliveries({ a }: { a: AlertItem }) {
  if (a.deliveries.length === 0) return <span class="muted">UI only</span>;
  return (
    <ul class="deliveries">
      {a.deliveries.map((d) => (
        <li title={d.last_error ?? undefined}>
          {d.channel_name || d.channel_type} <Badge value={d.status} />
          {d.attempts > 1 && <span class="muted small"> ×{d.attempts}</span>}
        </li>
      ))}
    </ul>
  );
}

export function AlertsView({ route, epoch, now, caps }: ViewProps) {
  const base = baseParams(route, now);
  const state = route.params.get('state') ?? '';
  const history = useApi(caps.alerts ? (signal) => api<{ alerts: AlertItem[]; next_cursor: string | null }>('/monitoring/alerts', { ...base, state: state || undefined, limit: '100' }, { signal }) : null,
    [base.project_id, base.from, base.to, state, epoch, caps.alerts]);
  const notes = useApi(caps.notifications ? (signal) => api<{ notifications: UiNotification[]; unread: number }>('/monitoring/notifications', { project_id: base.project_id, limit: '50' }, { signal }) : null,
    [base.project_id, epoch, caps.notifications]);
  const [more, setMore] = useState<{ rows: AlertItem[]; cursor: string | null; of: unknown }>({ rows: [], cursor: null, of: null });
  const [err, setErr] = useState<unknown>(null);

  if (!caps.alerts && !caps.notifications) return <section class="view"><Empty>This engine serves no alert history (GET /monitoring/alerts).</Empty></section>;

  const extra = more.of === history.data ? more : { rows: [], cursor: null, of: history.data };
  const alerts = [...(history.data?.alerts ?? []), ...extra.rows];
  const cursor = extra.rows.length ? extra.cursor : history.data?.next_cursor ?? null;
  const loadMore = async () => {
    if (!cursor) return;
    try {
      const page = await api<{ alerts: AlertItem[]; next_cursor: string | null }>('/monitoring/alerts', { ...base, state: state || undefined, limit: '100', cursor });
      setMore({ rows: [...extra.rows, ...page.alerts], cursor: page.next_cursor, of: history.data });
    } catch (e) {
      setErr(e);
    }
  };
  const markRead = async (id: string) => {
    try {
      await api(`/monitoring/notifications/${encodeURIComponent(id)}/read`, {}, { method: 'POST', body: {} });
      notes.reload();
    } catch (e) {
      setErr(e);
    }
  };

  return (
    <section class="view alerts-view">
      {caps.alerts && (
        <>
          <div class="toolbar">
            <h2>Alert history</h2>
            <div class="seg" role="group" aria-label="state">
              {[['', 'All'], ['firing', 'Firing'], ['resolved', 'Resolved'], ['silenced', 'Silenced']].map(([v, l]) => (
                <button type="button" class={state === v ? 'on' : ''} aria-pressed={state === v} onClick={() => update(route, { state: v })}>{l}</button>
              ))}
            </div>
            <span class="spacer" />
            <Loading show={history.loading} />
          </div>
          <ErrorBox error={history.error} />
          <ErrorBox error={err} />
          {alerts.length === 0 && !history.loading && !history.error ? <Empty>No alerts in this range.</Empty> : (
            <div class="table-wrap">
              <table class="grid alerts">
                <thead><tr><th>When</th><th>State</th><th>Severity</th><th>Alert</th><th>Rule</th><th class="num">Count</th><th>Delivered to</th></tr></thead>
                <tbody>
                  {alerts.map((a) => {
                    const href = safeHref(a.link);
                    return (
                      <tr>
                        <td class="nowrap"><Time iso={a.created_at} ms={false} /></td>
                        <td><Badge value={a.state} /></td>
                        <td><Badge value={a.severity} /></td>
                        <td class="msg">
                          <div class="g-title">{href ? <a href={href} rel="noopener noreferrer" target="_blank">{a.title}</a> : a.title}</div>
                          {a.summary && <div class="muted small">{a.summary}</div>}
                        </td>
                        <td>{a.rule_name ?? <span class="muted">engine-raised</span>}</td>
                        <td class="num">{fmtNum(a.count)}</td>
                        <td><Deliveries a={a} /></td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
          {cursor && <div class="more"><button type="button" onClick={loadMore}>Load more</button></div>}
        </>
      )}
      {caps.notifications && (
        <>
          <div class="toolbar">
            <h2>Notifications {notes.data && notes.data.unread > 0 && <span class="badge bad">{notes.data.unread} unread</span>}</h2>
            <span class="spacer" />
            <Loading show={notes.loading} />
          </div>
          <ErrorBox error={notes.error} />
          {notes.data && notes.data.notifications.length === 0 ? <Empty>No notifications.</Empty> : (
            <ul class="notifications">
              {(notes.data?.notifications ?? []).map((n) => (
                <li class={n.read ? 'read' : 'unread'}>
                  <div class="n-head">
                    <Badge value={n.severity} /> <Badge value={n.state} /> <strong>{n.title}</strong>
                    <span class="spacer" />
                    <Time iso={n.created_at} ms={false} />
                    {!n.read && <button type="button" onClick={() => markRead(n.id)}>Mark read</button>}
                  </div>
                  {n.summary && <div class="muted">{n.summary}</div>}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}
