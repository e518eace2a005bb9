// Alerts: firing groups (acknowledge, silence), one group in detail (where alert links land:
// #/alerts?project=&group=), the notification history with each delivery, and in-app notifications
// (mark one or all read; the tab's badge follows).
import { useState } from 'preact/hooks';
import { api, type AlertGroupItem, type AlertItem, type UiNotification } from '../api';
import { adminDenied, baseParams, baseQuery, type Me, type ViewProps } from '../common';
import { Badge, Empty, ErrorBox, Loading, Time } from '../components';
import { fmtNum } from '../format';
import { useApi } from '../hooks';
import { update, type Route } from '../router';
import { alertGroupPath } from '../../../src/alerts/links';
import { SILENCE_FIELDS, silenceHref } from './silences';

function Deliveries({ a }: { a: AlertItem }) {
  if (a.deliveries.length === 0) return <span class="muted">{a.state === 'silenced' ? 'silenced, not sent' : 'UI only'}</span>;
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

/** The facts of a group a silence can match: its rule and project, and its labels that are silence fields. */
function matchersOf(x: { rule_id: string | null; project_id: string | null; labels: Record<string, string> | null }): Record<string, string> {
  const m: Record<string, string> = {};
  if (x.project_id) m.project_id = x.project_id;
  if (x.rule_id) m.rule_id = x.rule_id;
  for (const [k, v] of Object.entries(x.labels ?? {})) if ((SILENCE_FIELDS as readonly string[]).includes(k) && v) m[k] = v;
  return m;
}

const notificationsChanged = () => dispatchEvent(new Event('puraify:notifications'));

function AckButton({ g, me, onDone }: { g: AlertGroupItem; me: Me; onDone(): void }) {
  const [err, setErr] = useState<unknown>(null);
  const denied = adminDenied(me) ?? (g.state !== 'firing' ? 'only a firing group can be acknowledged' : g.acknowledged_at ? `acknowledged by ${g.acknowledged_by ?? 'someone'}` : null);
  return (
    <>
      <button type="button" disabled={!!denied} title={denied ?? 'stop repeats until it resolves'} aria-label={`Acknowledge ${g.rule_name ?? g.id}`}
        onClick={async () => { try { await api(`/monitoring/alert-groups/${encodeURIComponent(g.id)}/ack`, {}, { method: 'POST', body: {} }); onDone(); } catch (e) { setErr(e); } }}>
        {g.acknowledged_at ? 'Acknowledged' : 'Acknowledge'}
      </button>
      <ErrorBox error={err} />
    </>
  );
}

function GroupPane({ route, id, me, epoch, onChanged }: { route: Route; id: string; me: Me; epoch: number; onChanged(): void }) {
  const group = useApi((signal) => api<AlertGroupItem>(`/monitoring/alert-groups/${encodeURIComponent(id)}`, {}, { signal }), [id], [epoch]);
  const history = useApi((signal) => api<{ alerts: AlertItem[] }>('/monitoring/alerts', { group_id: id, limit: '50' }, { signal }), [id], [epoch]);
  const g = group.data;
  return (
    <aside class="pane detail-pane" aria-labelledby="group-h">
      <div class="pane-head">
        <h2 id="group-h">{g ? g.rule_name ?? g.rule_id : 'Alert group'}</h2>
        <button type="button" class="close" aria-label="close" onClick={() => update(route, { group: undefined })}>×</button>
      </div>
      <Loading show={group.loading} />
      <ErrorBox error={group.error} />
      {g && (
        <>
          <div class="state-row">
            <span class="group-state">state: <Badge value={g.state} /></span>
            {g.acknowledged_at && <span class="muted small">acknowledged by {g.acknowledged_by} at <Time iso={g.acknowledged_at} ms={false} /></span>}
            <span class="spacer" />
            <AckButton g={g} me={me} onDone={() => { group.reload(); onChanged(); }} />
            <a class="button" href={silenceHref(route, matchersOf(g))}>Silence…</a>
          </div>
          <p class="message-full">{g.detail}</p>
          <dl class="stats">
            <div><dt>project</dt><dd>{g.project_id}</dd></div>
            <div><dt>events</dt><dd>{fmtNum(g.count)}</dd></div>
            <div><dt>firing since</dt><dd><Time iso={g.firing_since} ms={false} /></dd></div>
            <div><dt>last seen</dt><dd><Time iso={g.last_seen} ms={false} /></dd></div>
            {Object.entries(g.labels).map(([k, v]) => <div><dt>{k}</dt><dd>{v || '—'}</dd></div>)}
          </dl>
          <h3>Notifications of this group</h3>
          <ErrorBox error={history.error} />
          <ul class="plain">
            {(history.data?.alerts ?? []).map((a) => (
              <li><Time iso={a.created_at} ms={false} /> <Badge value={a.state} /> {a.kind} · <Deliveries a={a} /></li>
            ))}
          </ul>
        </>
      )}
    </aside>
  );
}

export function AlertsView({ route, epoch, now, me }: ViewProps) {
  const base = baseParams(route, now);
  const state = route.params.get('state') ?? '';
  const groupId = route.params.get('group');
  const history = useApi((signal) => api<{ alerts: AlertItem[]; next_cursor: string | null }>('/monitoring/alerts', { ...base, state: state || undefined, limit: '100' }, { signal }),
    [baseQuery(route), state], [epoch, now]);
  const firing = useApi((signal) => api<{ groups: AlertGroupItem[] }>('/monitoring/alert-groups', { project_id: base.project_id, state: 'firing', limit: '100' }, { signal }),
    [base.project_id], [epoch]);
  const notes = useApi((signal) => api<{ notifications: UiNotification[]; unread: number }>('/monitoring/notifications', { project_id: base.project_id, limit: '50' }, { signal }),
    [base.project_id], [epoch]);
  const [more, setMore] = useState<{ rows: AlertItem[]; cursor: string | null; of: unknown }>({ rows: [], cursor: null, of: null });
  const [err, setErr] = useState<unknown>(null);

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
  const markRead = async (id?: string) => {
    try {
      if (id) await api(`/monitoring/notifications/${encodeURIComponent(id)}/read`, {}, { method: 'POST', body: {} });
      else await api('/monitoring/notifications/read-all', { project_id: base.project_id }, { method: 'POST', body: {} });
      notes.reload();
      notificationsChanged();
    } catch (e) {
      setErr(e);
    }
  };
  const groupHref = (project: string | null, gid: string | null) => (gid && project ? alertGroupPath(project, gid) : undefined);

  return (
    <section class={`view split-view alerts-view${groupId ? ' with-detail' : ''}`} aria-labelledby="alerts-h">
      <div class="pane list-pane">
        <h1 id="alerts-h" class="view-title">Alerts</h1>
        <ErrorBox error={err} />
        <div class="toolbar">
          <h2>Firing now</h2>
          <span class="spacer" />
          <Loading show={firing.loading} />
        </div>
        <ErrorBox error={firing.error} />
        {firing.data && firing.data.groups.length === 0 && <Empty>Nothing is firing.</Empty>}
        {firing.data && firing.data.groups.length > 0 && (
          <div class="table-wrap">
            <table class="grid">
              <thead><tr><th scope="col">Since</th><th scope="col">Group</th><th scope="col">Project</th><th scope="col" class="num">Events</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {firing.data.groups.map((g) => (
                  <tr class={`row${g.id === groupId ? ' selected' : ''}`} data-row tabIndex={0} onClick={() => update(route, { group: g.id })}
                    onKeyDown={(k) => { if (k.key === 'Enter') update(route, { group: g.id }); }}>
                    <td class="nowrap"><Time iso={g.firing_since} ms={false} /></td>
                    <td class="msg"><div class="g-title">{g.detail.split('\n')[0]}</div><div class="muted small">{Object.entries(g.labels).map(([k, v]) => `${k}=${v}`).join(', ')}</div></td>
                    <td>{g.project_id}</td>
                    <td class="num">{fmtNum(g.count)}</td>
                    <td class="actions nowrap" onClick={(e) => e.stopPropagation()}>
                      <AckButton g={g} me={me} onDone={firing.reload} />
                      <a class="button" href={silenceHref(route, matchersOf(g))} aria-label={`Silence ${g.detail.split('\n')[0]}`}>Silence…</a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}

        <div class="toolbar">
          <h2>History</h2>
          <div class="seg" role="group" aria-label="state">
            {[['', 'All'], ['firing', 'Firing'], ['resolved', 'Resolved'], ['silenced', 'Silenced']].map(([v, l]) => (
              <button type="button" class={state === v ? 'on' : ''} aria-pressed={state === v} onClick={() => update(route, { state: v })}>{l}</button>
            ))}
          </div>
          <span class="spacer" />
          <Loading show={history.loading} />
        </div>
        <ErrorBox error={history.error} />
        {history.data && alerts.length === 0 && <Empty>No alerts in this range.</Empty>}
        {alerts.length > 0 && (
          <div class="table-wrap">
            <table class="grid alerts">
              <caption class="sr-only">Alert history</caption>
              <thead><tr><th scope="col">When</th><th scope="col">State</th><th scope="col">Severity</th><th scope="col">Alert</th><th scope="col">Rule</th><th scope="col" class="num">Count</th><th scope="col">Delivered to</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {alerts.map((a) => {
                  const href = groupHref(a.project_id, a.group_id);
                  return (
                    <tr class="row" data-row tabIndex={0} onKeyDown={(k) => { if (k.key === 'Enter' && a.group_id) update(route, { group: a.group_id }); }}>
                      <td class="nowrap"><Time iso={a.created_at} ms={false} /></td>
                      <td><Badge value={a.state} /></td>
                      <td><Badge value={a.severity} /></td>
                      <td class="msg">
                        <div class="g-title">{href ? <a href={href}>{a.title}</a> : a.title}</div>
                        {a.summary && <div class="muted small">{a.summary}</div>}
                      </td>
                      <td>{a.rule_name ?? <span class="muted">engine-raised</span>}</td>
                      <td class="num">{fmtNum(a.count)}</td>
                      <td><Deliveries a={a} /></td>
                      <td class="actions"><a class="button" href={silenceHref(route, matchersOf(a))} aria-label={`Silence alerts like ${a.title}`}>Silence…</a></td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        {cursor && <div class="more"><button type="button" onClick={loadMore}>Load more</button></div>}

        <div class="toolbar">
          <h2>Notifications {notes.data && notes.data.unread > 0 && <span class="badge bad">{notes.data.unread} unread</span>}</h2>
          <span class="spacer" />
          <Loading show={notes.loading} />
          <button type="button" disabled={!notes.data || notes.data.unread === 0} onClick={() => markRead()}>Mark all read</button>
        </div>
        <ErrorBox error={notes.error} />
        {notes.data && notes.data.notifications.length === 0 && <Empty>No notifications.</Empty>}
        <ul class="notifications">
          {(notes.data?.notifications ?? []).map((n) => (
            <li class={n.read ? 'read' : 'unread'}>
              <div class="n-head">
                <Badge value={n.severity} /> <Badge value={n.state} /> <strong>{n.title}</strong>
                <span class="spacer" />
                <Time iso={n.created_at} ms={false} />
                {!n.read && <button type="button" onClick={() => markRead(n.id)} aria-label={`Mark read: ${n.title}`}>Mark read</button>}
              </div>
              {n.summary && <div class="muted">{n.summary}</div>}
            </li>
          ))}
        </ul>
      </div>
      {groupId && <GroupPane key={groupId} route={route} id={groupId} me={me} epoch={epoch} onChanged={firing.reload} />}
    </section>
  );
}
