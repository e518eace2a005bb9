// Sessions: the list, and one session replayed as a timeline of steps: offsets, gaps, the first
// error marked, and what led to it.
import { useEffect, useState } from 'preact/hooks';
import { api, type Related, type Replay, type ReplayStep, type SessionItem } from '../api';
import { baseParams, baseQuery, type ViewProps } from '../common';
import { Badge, Empty, ErrorBox, EventDetail, Loading, Time } from '../components';
import { fmtMs, fmtNum } from '../format';
import { useApi } from '../hooks';
import { update, viewHref, type Route } from '../router';

/** A gap this long or longer, and this much above the session's usual gap, is called out. */
const LONG_GAP_MS = 5_000;
/** Playing never waits longer than this for one gap, whatever the speed. */
const MAX_WAIT_MS = 3_000;
const SPEEDS = [1, 4, 16];

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * The session on a time axis: each step a bar from its offset for its duration (gaps to scale),
 * errors marked; a stepper (←/→, play at 1×/4×/16×) with the current step's detail beside it.
 */
function Player({ route, steps, firstError }: { route: Route; steps: ReplayStep[]; firstError: number | null }) {
  const [cur, setCur] = useState(firstError ?? 0);
  const [speed, setSpeed] = useState(0);
  const total = Math.max(1, ...steps.map((x) => x.offset_ms + (x.step_duration_ms ?? 0)));
  const gaps = steps.map((x) => x.gap_ms ?? 0);
  const usual = median(gaps.filter((g) => g > 0));
  const go = (i: number) => setCur(Math.max(0, Math.min(steps.length - 1, i)));
  useEffect(() => {
    const h = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === 'ArrowRight') { e.preventDefault(); setSpeed(0); setCur((c) => Math.min(steps.length - 1, c + 1)); }
      if (e.key === 'ArrowLeft') { e.preventDefault(); setSpeed(0); setCur((c) => Math.max(0, c - 1)); }
    };
    addEventListener('keydown', h);
    return () => removeEventListener('keydown', h);
  }, [steps.length]);
  // playing: wait the real gap to the next step, divided by the speed
  useEffect(() => {
    if (!speed) return;
    if (cur >= steps.length - 1) { setSpeed(0); return; }
    const wait = Math.min(MAX_WAIT_MS, (steps[cur + 1].gap_ms ?? 0) / speed);
    const t = setTimeout(() => setCur((c) => c + 1), wait);
    return () => clearTimeout(t);
  }, [speed, cur, steps]);
  useEffect(() => {
    document.getElementById(`step-${cur}`)?.scrollIntoView({ block: 'nearest' });
  }, [cur]);
  const x = steps[cur];
  const pct = (ms: number) => `${(ms / total) * 100}%`;
  return (
    <div class="player">
      <div class="toolbar player-controls" role="group" aria-label="replay controls">
        <h3>Timeline</h3>
        <button type="button" onClick={() => { setSpeed(0); go(cur - 1); }} disabled={cur === 0} aria-label="Previous step">← Prev</button>
        <span class="step-count" aria-live="polite">Step {cur + 1} of {steps.length}</span>
        <button type="button" onClick={() => { setSpeed(0); go(cur + 1); }} disabled={cur >= steps.length - 1} aria-label="Next step">Next →</button>
        {SPEEDS.map((sp) => (
          <button type="button" aria-pressed={speed === sp} class={speed === sp ? 'on' : ''} onClick={() => { if (speed === sp) setSpeed(0); else { if (cur >= steps.length - 1) setCur(0); setSpeed(sp); } }}>
            {speed === sp ? `Pause` : `Play ${sp}×`}
          </button>
        ))}
        {firstError !== null && <button type="button" onClick={() => { setSpeed(0); go(firstError); }}>Jump to the first error</button>}
        <span class="muted small">←/→ step · gaps over {fmtMs(MAX_WAIT_MS)} are shortened while playing</span>
      </div>
      <div class="player-body">
        <ol class="waterfall" aria-label="steps on a time axis">
          {steps.map((s) => {
            const long = s.gap_ms !== null && s.gap_ms >= LONG_GAP_MS && s.gap_ms > usual * 5;
            const dur = s.step_duration_ms ?? 0;
            return (
              <li id={`step-${s.step}`} class={`wf-row${s.step === cur ? ' current' : ''}${s.is_error ? ' is-error' : ''}${s.first_error ? ' first-error' : ''}`}
                aria-current={s.step === cur ? 'step' : undefined}>
                <button type="button" class="wf-label" onClick={() => { setSpeed(0); setCur(s.step); }}>
                  <span class="offset mono">+{fmtMs(s.offset_ms)}</span>{' '}
                  <strong>{s.event_type}</strong> {[s.engine, [s.platform, s.action].filter(Boolean).join('.')].filter(Boolean).join(' · ')}
                  {s.first_error && <span class="badge crit">first error</span>}
                  {long && <span class="badge warn">gap {fmtMs(s.gap_ms)}</span>}
                </button>
                <span class="wf-track" aria-hidden="true">
                  {s.gap_ms !== null && s.gap_ms > 0 && <span class={`wf-gap${long ? ' long' : ''}`} style={{ left: pct(s.offset_ms - s.gap_ms), width: pct(s.gap_ms) }} title={`${fmtMs(s.gap_ms)} after the previous step`} />}
                  <span class={`wf-bar${s.step_duration_source === 'until_next' ? ' until-next' : ''}`} style={{ left: pct(s.offset_ms), width: dur > 0 ? pct(dur) : '2px' }}
                    title={s.step_duration_ms !== null ? `${fmtMs(s.step_duration_ms)}${s.step_duration_source === 'until_next' ? ' until the next step' : ''}` : undefined} />
                </span>
              </li>
            );
          })}
        </ol>
        <div class="step-detail" aria-live="polite" aria-label="current step">
          {x && (
            <>
              <h4>Step {x.step + 1} · +{fmtMs(x.offset_ms)}{x.gap_ms !== null ? ` · ${fmtMs(x.gap_ms)} after the previous` : ''}</h4>
              <p><strong>{x.error_type || x.event_type}</strong> {x.message} <Badge value={x.status || x.severity} /></p>
              {x.arrived_late && <p class="muted small">Arrived late: received after a later step, shown where it happened.</p>}
              <EventDetail e={x} route={route} />
            </>
          )}
        </div>
      </div>
    </div>
  );
}

function ReplayView({ route, id, project, epoch }: { route: Route; id: string; project: string; epoch: number }) {
  const replay = useApi((signal) => api<Replay>(`/monitoring/sessions/${encodeURIComponent(id)}`, { project_id: project || undefined, lead: '10' }, { signal }), [id, project], [epoch]);
  const related = useApi((signal) => api<Related>(`/monitoring/sessions/${encodeURIComponent(id)}/related`, { project_id: project || undefined, limit: '20' }, { signal }), [id, project], [epoch]);
  const r = replay.data;
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
  const rel = related.data;
  return (
    <section class="view replay-view">
      <div class="toolbar">
        <a href={back}>← Sessions</a>
        <span class="spacer" />
        <Loading show={replay.loading} />
      </div>
      <h1 class="view-title">Session <code>{s.id}</code></h1>
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
      <Player route={route} steps={r.steps} firstError={r.first_error?.step ?? null} />
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

export function SessionsView({ route, epoch, now }: ViewProps) {
  const sid = route.params.get('sid');
  const base = baseParams(route, now);
  const hasError = route.params.get('has_error') ?? '';
  const userId = route.params.get('user_id') ?? '';
  const [extra, setExtra] = useState<{ rows: SessionItem[]; cursor: string | null; after: unknown }>({ rows: [], cursor: null, after: undefined });
  const [moreError, setMoreError] = useState<unknown>(null);
  const [user, setUser] = useState(userId);
  useEffect(() => setUser(userId), [userId]);
  const params = { ...base, has_error: hasError || undefined, user_id: userId || undefined };
  // what is asked, the range by its name: a refresh of it keeps the rows until its answer
  const queryKey = JSON.stringify([baseQuery(route), hasError, userId, !!sid]);
  const list = useApi(sid ? null : (signal) => api<{ sessions: SessionItem[]; next_cursor: string | null }>('/monitoring/sessions', { ...params, limit: '50' }, { signal }), [queryKey], [epoch, now]);

  if (sid) return <ReplayView route={route} id={sid} project={route.params.get('sp') ?? base.project_id as string ?? ''} epoch={epoch} />;

  // pages loaded after the first page shown (a refresh's new first page drops them)
  const more = list.data && extra.after === list.data ? extra : { rows: [], cursor: null, after: list.data };
  const rows = [...(list.data?.sessions ?? []), ...more.rows];
  const cursor = more.rows.length ? more.cursor : list.data?.next_cursor ?? null;
  const loadMore = async () => {
    if (!cursor) return;
    setMoreError(null);
    try {
      const page = await api<{ sessions: SessionItem[]; next_cursor: string | null }>('/monitoring/sessions', { ...params, limit: '50', cursor });
      setExtra({ rows: [...more.rows, ...page.sessions], cursor: page.next_cursor, after: more.after });
    } catch (e) {
      setMoreError(e);
    }
  };

  return (
    <section class="view sessions-view" aria-labelledby="sessions-h">
      <h1 id="sessions-h" class="view-title">Sessions</h1>
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
      {list.data && rows.length === 0 ? (
        <Empty>No sessions in this range. Events with a <code>session_id</code> make up sessions.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="grid sessions">
            <thead><tr><th scope="col">Session</th><th scope="col">Start</th><th scope="col" class="num">Duration</th><th scope="col" class="num">Events</th><th scope="col" class="num">Errors</th><th scope="col">Users</th><th scope="col">Flows</th></tr></thead>
            <tbody>
              {rows.map((x) => {
                const href = viewHref(route, 'sessions', { sid: x.id, sp: x.project_id });
                return (
                  <tr class={`row${x.has_error ? ' is-error' : ''}`} data-row tabIndex={0} onClick={() => { location.hash = href; }} onKeyDown={(k) => { if (k.key === 'Enter') location.hash = href; }}>
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
