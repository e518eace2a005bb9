// Sessions: the list, and one session replayed as a timeline of steps: offsets, gaps, the first
// error marked, and what led to it.
import { useEffect, useState } from 'preact/hooks';
import { api, type Related, type Replay, type SessionItem } from '../api';
import { baseParams, type ViewProps } from '../common';
import { Badge, Empty, ErrorBox, EventDetail, Loading, Time } from '../components';
import { fmtMs, fmtNum } from '../format';
import { useApi } from '../hooks';
import { update, viewHref, type Route } from '../router';

/** A gap this long or longer, and this much above the session's usual gap, is called out. */
const LONG_GAP_MS = 5_000;

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function ReplayView({ route, id, project, epoch }: { route: Route; id: string; project: string; epoch: number }) {
  const replay = useApi((signal) => api<Replay>(`/monitoring/sessions/${encodeURIComponent(id)}`, { project_id: project || undefined, lead: '10' }, { signal }), [id, project, epoch]);
  const related = useApi((signal) => api<Related>(`/monitoring/sessions/${encodeURIComponent(id)}/related`, { project_id: project || undefined, limit: '20' }, { signal }), [id, project, epoch]);
  const [open, setOpen] = useState<number | null>(null);
  const r = replay.data;
  useEffect(() => setOpen(r?.first_error?.step ?? null), [r?.first_error?.id]);
  const back = viewHref(route, 'sessions', { has_error: route.params.get('has_error') ?? undefined, user_id: route.params.get('user_id') ?? undefined });

  if (!r) {
    return (
      <section class="view replay-view">
        <a href={back}>← Sessions</a> <Loading show={replay.loading} />
        <ErrorBox error={replay.error} />
      </section>
    );
  }
  const s = r.session;
  const gaps = r.steps.map((x) => x.gap_ms ?? 0);
  const usual = median(gaps.filter((g) => g > 0));
  const maxGap = Math.max(1, ...gaps);
  const rel = related.data;
  return (
    <section class="view replay-view">
      <div class="toolbar">
        <a href={back}>← Sessions</a>
        <span class="spacer" />
        <Loading show={replay.loading} />
      </div>
      <h2>Session <code>{s.id}</code></h2>
      <dl class="stats">
        <div><dt>project</dt><dd>{s.project_id}</dd></div>
        <div><dt>start</dt><dd><Time iso={s.start} /></dd></div>
        <div><dt>duration</dt><dd>{fmtMs(s.duration_ms)}</dd></div>
        <div><dt>events</dt><dd>{fmtNum(s.events)}</dd></div>
        <div><dt>errors</dt><dd class={s.errors ? 'bad-text' : ''}>{fmtNum(s.errors)}</dd></div>
        <div><dt>users</dt><dd>{s.users.join(', ') || '—'}</dd></div>
        <div><dt>flows</dt><dd>{s.flows.join(', ') || '—'}</dd></div>
        <div><dt>engines</dt><dd>{s.engines.join(', ') || '—'}</dd></div>
      </dl>
      {r.truncated && <div class="notice">This session has more events than one replay shows; the first ones are listed.</div>}
      {r.first_error && (
        <div class="first-error-box">
          <h3>First error at step {r.first_error.step + 1}, +{fmtMs(r.first_error.offset_ms)}</h3>
          <p><strong>{r.first_error.error_type}</strong> {r.first_error.message}</p>
          {r.first_error.fingerprint && <p><a href={viewHref(route, 'errors', { fp: r.first_error.fingerprint, gp: s.project_id })}>Open its error group →</a></p>}
          <h4>What led to it{r.led_to_total > r.led_to.length ? ` (the last ${r.led_to.length} of ${r.led_to_total} steps)` : ''}</h4>
          {r.led_to.length === 0 ? <p class="muted">It was the session's first step.</p> : (
            <ol class="led-to">
              {r.led_to.map((l) => (
                <li>
                  <span class="mono muted">−{fmtMs(l.before_error_ms)}</span>{' '}
                  <strong>{l.event_type}</strong> {[l.engine, [l.platform, l.action].filter(Boolean).join('.')].filter(Boolean).join(' · ')} <Badge value={l.status} /> {l.message}
                </li>
              ))}
            </ol>
          )}
        </div>
      )}
      <h3>Timeline</h3>
      <ol class="timeline">
        {r.steps.map((x) => {
          const long = x.gap_ms !== null && x.gap_ms >= LONG_GAP_MS && x.gap_ms > usual * 5;
          return (
            <li class={`step${x.is_error ? ' is-error' : ''}${x.first_error ? ' first-error' : ''}`} key={x.id}>
              {x.gap_ms !== null && x.gap_ms > 0 && (
                <div class={`gap${long ? ' long' : ''}`} title={`${fmtMs(x.gap_ms)} after the previous step`}>
                  <span class="gap-bar" style={{ width: `${Math.max(2, (Math.log1p(x.gap_ms) / Math.log1p(maxGap)) * 100)}%` }} />
                  {long && <span class="gap-label">gap {fmtMs(x.gap_ms)}</span>}
                </div>
              )}
              <div class="step-row" tabIndex={0} role="button" aria-expanded={open === x.step} onClick={() => setOpen(open === x.step ? null : x.step)}
                onKeyDown={(k) => { if (k.key === 'Enter') setOpen(open === x.step ? null : x.step); }}>
                <span class="offset mono">+{fmtMs(x.offset_ms)}</span>
                <span class="step-n muted">#{x.step + 1}</span>
                <span class="step-what">
                  <strong>{x.event_type}</strong> {[x.engine, [x.platform, x.action].filter(Boolean).join('.')].filter(Boolean).join(' · ')}
                </span>
                <Badge value={x.status || x.severity} />
                {x.first_error && <span class="badge crit">first error</span>}
                {x.arrived_late && <span class="badge muted" title="received after a later step; shown where it happened">arrived late</span>}
                <span class="step-msg">{x.error_type && <strong>{x.error_type} </strong>}{x.message}</span>
                <span class="step-dur muted mono" title={x.step_duration_source === 'until_next' ? 'time until the next step' : 'reported duration'}>
                  {x.step_duration_ms !== null ? `${fmtMs(x.step_duration_ms)}${x.step_duration_source === 'until_next' ? '*' : ''}` : ''}
                </span>
              </div>
              {open === x.step && <EventDetail e={x} route={route} />}
            </li>
          );
        })}
      </ol>
      <p class="muted small">* no duration reported: time until the next step.</p>
      {rel && (rel.sessions.length > 0 || rel.users.length > 0) && (
        <>
          <h3>Also hit by the same errors</h3>
          <div class="related">
            {rel.sessions.length > 0 && (
              <div>
                <h4>Sessions ({rel.sessions.length}{rel.truncated ? '+' : ''})</h4>
                <ul>{rel.sessions.map((o) => <li><a href={viewHref(route, 'sessions', { sid: o.session_id, sp: s.project_id })}>{o.session_id}</a> <span class="muted">{o.errors} error{o.errors === 1 ? '' : 's'} · {o.users.join(', ')}</span></li>)}</ul>
              </div>
            )}
            {rel.users.length > 0 && (
              <div>
                <h4>Users ({rel.users.length})</h4>
                <ul>{rel.users.map((u) => <li><a href={viewHref(route, 'logs', { user_id: u.user_id })}>{u.user_id}</a> <span class="muted">{u.errors} error{u.errors === 1 ? '' : 's'} in {u.sessions.length} session{u.sessions.length === 1 ? '' : 's'}</span></li>)}</ul>
              </div>
            )}
          </div>
        </>
      )}
    </section>
  );
}

export function SessionsView({ route, epoch, now, caps }: ViewProps) {
  const sid = route.params.get('sid');
  const base = baseParams(route, now);
  const hasError = route.params.get('has_error') ?? '';
  const userId = route.params.get('user_id') ?? '';
  const [extra, setExtra] = useState<{ rows: SessionItem[]; cursor: string | null; key: string }>({ rows: [], cursor: null, key: '' });
  const [moreError, setMoreError] = useState<unknown>(null);
  const [user, setUser] = useState(userId);
  useEffect(() => setUser(userId), [userId]);
  const params = { ...base, has_error: hasError || undefined, user_id: userId || undefined };
  const key = JSON.stringify(params);
  const list = useApi(sid || !caps.sessions ? null : (signal) => api<{ sessions: SessionItem[]; next_cursor: string | null }>('/monitoring/sessions', { ...params, limit: '50' }, { signal }), [key, epoch, sid, caps.sessions]);

  if (!caps.sessions) return <section class="view"><Empty>This engine does not serve sessions (GET /monitoring/sessions).</Empty></section>;
  if (sid) return <ReplayView route={route} id={sid} project={route.params.get('sp') ?? base.project_id as string ?? ''} epoch={epoch} />;

  const more = extra.key === key ? extra : { rows: [], cursor: null, key };
  const rows = [...(list.data?.sessions ?? []), ...more.rows];
  const cursor = more.rows.length ? more.cursor : list.data?.next_cursor ?? null;
  const loadMore = async () => {
    if (!cursor) return;
    setMoreError(null);
    try {
      const page = await api<{ sessions: SessionItem[]; next_cursor: string | null }>('/monitoring/sessions', { ...params, limit: '50', cursor });
      setExtra({ rows: [...more.rows, ...page.sessions], cursor: page.next_cursor, key });
    } catch (e) {
      setMoreError(e);
    }
  };

  return (
    <section class="view sessions-view">
      <div class="toolbar">
        <div class="seg" role="group" aria-label="errors">
          {[['', 'All'], ['true', 'With errors'], ['false', 'Without errors']].map(([v, l]) => (
            <button type="button" class={hasError === v ? 'on' : ''} aria-pressed={hasError === v} onClick={() => update(route, { has_error: v })}>{l}</button>
          ))}
        </div>
        <form class="inline" onSubmit={(e) => { e.preventDefault(); update(route, { user_id: user.trim() }); }}>
          <label class="inline">user <input name="user_id" value={user} size={12} onInput={(e) => setUser(e.currentTarget.value)} /></label>
        </form>
        <span class="spacer" />
        <Loading show={list.loading} />
      </div>
      <ErrorBox error={list.error} />
      {rows.length === 0 && !list.loading && !list.error ? (
        <Empty>No sessions in this range. Events with a <code>session_id</code> make up sessions.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="grid sessions">
            <thead><tr><th>Session</th><th>Start</th><th class="num">Duration</th><th class="num">Events</th><th class="num">Errors</th><th>Users</th><th>Flows</th></tr></thead>
            <tbody>
              {rows.map((x) => {
                const href = viewHref(route, 'sessions', { sid: x.id, sp: x.project_id });
                return (
                  <tr class={`row${x.has_error ? ' is-error' : ''}`} tabIndex={0} onClick={() => { location.hash = href; }} onKeyDown={(k) => { if (k.key === 'Enter') location.hash = href; }}>
                    <td class="mono"><a href={href}>{x.id}</a>{!base.project_id && <div class="muted small">{x.project_id}</div>}</td>
                    <td class="nowrap"><Time iso={x.start} ms={false} /></td>
                    <td class="num">{fmtMs(x.duration_ms)}</td>
                    <td class="num">{fmtNum(x.events)}</td>
                    <td class="num">{x.errors ? <span class="badge bad">{x.errors}</span> : '0'}</td>
                    <td>{x.users.join(', ')}{x.user_count > x.users.length ? ` +${x.user_count - x.users.length}` : ''}</td>
                    <td>{x.flows.join(', ')}{x.flow_count > x.flows.length ? ` +${x.flow_count - x.flows.length}` : ''}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <ErrorBox error={moreError} />
      {cursor && <div class="more"><button type="button" onClick={loadMore}>Load more</button></div>}
    </section>
  );
}
