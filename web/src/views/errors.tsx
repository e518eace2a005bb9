// Errors: the groups (count, users, first/last seen, state, trend) and one group in detail, with
// resolve / ignore / reopen.
import { useState } from 'preact/hooks';
import { api, type ErrorDetail, type ErrorList } from '../api';
import { Chart } from '../chart';
import { baseParams, type ViewProps } from '../common';
import { Badge, Empty, ErrorBox, EventDetail, Loading, Sparkline, Time, TopList } from '../components';
import { fmtAgo, fmtMs, fmtNum } from '../format';
import { useApi } from '../hooks';
import { update, viewHref, type Route } from '../router';

const SORTS = [['count', 'Most events'], ['last_seen', 'Last seen'], ['first_seen', 'Newest'], ['users', 'Most users']] as const;
const STATES = [['open', 'Open'], ['resolved', 'Resolved'], ['ignored', 'Ignored'], ['all', 'All']] as const;

function title(g: { error_type: string; message: string }): string {
  return g.error_type || g.message.split('\n')[0] || '(no message)';
}

function Detail({ route, fp, project, epoch, now, onChanged }: { route: Route; fp: string; project: string; epoch: number; now: number; onChanged(): void }) {
  const base = baseParams(route, now);
  const detail = useApi((signal) => api<ErrorDetail>(`/monitoring/errors/${encodeURIComponent(fp)}`, { project_id: project || base.project_id, from: base.from, to: base.to, samples: '10' }, { signal }),
    [fp, project, base.from, base.to, epoch]);
  const [busy, setBusy] = useState(false);
  const [patchError, setPatchError] = useState<unknown>(null);
  const [openSample, setOpenSample] = useState<string | null>(null);
  const g = detail.data;

  const setState = async (state: 'open' | 'resolved' | 'ignored') => {
    setBusy(true);
    setPatchError(null);
    try {
      await api(`/monitoring/errors/${encodeURIComponent(fp)}`, { project_id: g?.project_id ?? project }, { method: 'PATCH', body: { state } });
      detail.reload();
      onChanged();
    } catch (e) {
      setPatchError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <aside class="pane detail-pane" aria-label="error group">
      <div class="pane-head">
        <a class="close" href={viewHref(route, 'errors', { state: route.params.get('state') ?? undefined, sort: route.params.get('sort') ?? undefined })} aria-label="close">×</a>
        <Loading show={detail.loading} />
      </div>
      <ErrorBox error={detail.error} />
      {g && (
        <>
          <h2 class="group-title">{title(g)}</h2>
          {g.error_type && g.message && <p class="message-full">{g.message}</p>}
          <div class="state-row">
            <span class="group-state">state: <Badge value={g.state} /></span>
            {g.regression && <Badge value="regression" title={`reopened ${g.regression.count}× — last ${g.regression.at}`} />}
            <span class="spacer" />
            {g.state !== 'resolved' && <button type="button" class="primary" disabled={busy} onClick={() => setState('resolved')}>Resolve</button>}
            {g.state !== 'ignored' && <button type="button" disabled={busy} onClick={() => setState('ignored')}>Ignore</button>}
            {g.state !== 'open' && <button type="button" disabled={busy} onClick={() => setState('open')}>Reopen</button>}
          </div>
          <ErrorBox error={patchError} what="Could not change the state" />
          <dl class="stats">
            <div><dt>events (range)</dt><dd>{fmtNum(g.count)}</dd></div>
            <div><dt>events (total)</dt><dd>{fmtNum(g.total_count)}</dd></div>
            <div><dt>users</dt><dd>{fmtNum(g.users_affected)}</dd></div>
            <div><dt>sessions</dt><dd>{fmtNum(g.sessions_affected)}</dd></div>
            <div><dt>first seen</dt><dd><Time iso={g.first_seen} ms={false} /></dd></div>
            <div><dt>last seen</dt><dd><Time iso={g.last_seen} ms={false} /></dd></div>
          </dl>
          {g.sampled_out > 0 && <p class="muted">{fmtNum(g.sampled_out)} further events were counted but not stored (flood protection).</p>}
          {g.trend.length > 1 && (
            <Chart title={`Events per ${fmtMs(g.interval_s * 1000)}`} times={g.trend.map((b) => b.t)} series={[{ label: 'events', values: g.trend.map((b) => b.count), color: '--bad', fill: true }]} height={140} />
          )}
          <p>
            <a href={viewHref(route, 'logs', { fingerprint: g.fingerprint, project: g.project_id })}>All events of this group →</a>
          </p>
          <h3>Stack</h3>
          {g.stack ? <pre class="stack">{g.stack}</pre> : <p class="muted">No stack was sent with these events.</p>}
          <div class="tops">
            <TopList title="Platforms" items={g.top.platforms} />
            <TopList title="Actions" items={g.top.actions} />
            <TopList title="Flows" items={g.top.flows} href={(v) => viewHref(route, 'logs', { flow_id: v })} />
            <TopList title="Users" items={g.top.users} href={(v) => viewHref(route, 'logs', { user_id: v })} />
          </div>
          {g.suspect_changes.length > 0 && (
            <>
              <h3>Suspect changes</h3>
              <ul class="suspects">
                {g.suspect_changes.map((s) => (
                  <li>
                    <Badge value={s.reason === 'started' ? 'started after' : 'spiked after'} />{' '}
                    <strong>{s.change.event_type}</strong> {s.change.message || s.change.action} <span class="muted">by {s.change.user_id || s.change.engine || 'unknown'} at <Time iso={s.change.timestamp} ms={false} />, {fmtMs(s.lag_ms)} before the {s.reason === 'started' ? 'first error' : 'rise'}{s.before !== undefined ? ` (${s.before} → ${s.after} events)` : ''}</span>
                    {s.diff && s.diff.length > 0 && (
                      <ul class="diff">
                        {s.diff.slice(0, 10).map((d) => <li><code>{d.path}</code> {d.op}: <code>{JSON.stringify(d.before) ?? '∅'}</code> → <code>{JSON.stringify(d.after) ?? '∅'}</code></li>)}
                      </ul>
                    )}
                  </li>
                ))}
              </ul>
            </>
          )}
          <h3>Latest samples</h3>
          {g.samples.length === 0 ? <p class="muted">No samples stored.</p> : (
            <table class="grid compact">
              <thead><tr><th>Time</th><th>User</th><th>Session</th><th>Message</th></tr></thead>
              <tbody>
                {g.samples.map((e) => [
                  <tr class="row" tabIndex={0} onClick={() => setOpenSample(openSample === e.id ? null : e.id)}>
                    <td class="nowrap mono"><Time iso={e.timestamp} /></td>
                    <td>{e.user_id}</td>
                    <td>{e.session_id && <a href={viewHref(route, 'sessions', { sid: e.session_id, sp: e.project_id })} onClick={(ev) => ev.stopPropagation()}>{e.session_id}</a>}</td>
                    <td class="msg">{e.message}</td>
                  </tr>,
                  openSample === e.id && <tr class="detail"><td colSpan={4}><EventDetail e={e} route={route} /></td></tr>,
                ])}
              </tbody>
            </table>
          )}
        </>
      )}
    </aside>
  );
}

export function ErrorsView({ route, epoch, now }: ViewProps) {
  const base = baseParams(route, now);
  const state = route.params.get('state') ?? 'open';
  const sort = route.params.get('sort') ?? 'count';
  const fp = route.params.get('fp');
  const gp = route.params.get('gp') ?? '';
  const list = useApi((signal) => api<ErrorList>('/monitoring/errors', { ...base, state: state === 'all' ? undefined : state, sort, limit: '100' }, { signal }),
    [base.project_id, base.from, base.to, state, sort, epoch]);
  const groups = list.data?.groups ?? [];

  return (
    <section class={`view errors-view${fp ? ' with-detail' : ''}`}>
      <div class="pane list-pane">
        <div class="toolbar">
          <div class="seg" role="group" aria-label="state">
            {STATES.map(([v, label]) => (
              <button type="button" class={state === v ? 'on' : ''} aria-pressed={state === v} onClick={() => update(route, { state: v === 'open' ? undefined : v })}>{label}</button>
            ))}
          </div>
          <label class="inline">
            sort
            <select value={sort} onChange={(e) => update(route, { sort: e.currentTarget.value === 'count' ? undefined : e.currentTarget.value })}>
              {SORTS.map(([v, l]) => <option value={v}>{l}</option>)}
            </select>
          </label>
          <span class="spacer" />
          <Loading show={list.loading} />
          <span class="muted">{groups.length} group{groups.length === 1 ? '' : 's'}</span>
        </div>
        <ErrorBox error={list.error} />
        {groups.length === 0 && !list.loading && !list.error ? (
          <Empty>No {state !== 'all' ? `${state} ` : ''}error groups in this range.</Empty>
        ) : (
          <div class="table-wrap">
            <table class="grid groups">
              <thead>
                <tr><th>Error</th><th>Trend</th><th class="num">Events</th><th class="num">Users</th><th>First seen</th><th>Last seen</th><th>State</th></tr>
              </thead>
              <tbody>
                {groups.map((g) => {
                  const selected = g.fingerprint === fp;
                  return (
                    <tr class={`row${selected ? ' selected' : ''}`} key={`${g.project_id}/${g.fingerprint}`} tabIndex={0}
                      onClick={() => update(route, { fp: g.fingerprint, gp: g.project_id })}
                      onKeyDown={(k) => { if (k.key === 'Enter') update(route, { fp: g.fingerprint, gp: g.project_id }); }}>
                      <td class="msg">
                        <div class="g-title">{title(g)}</div>
                        <div class="g-sub muted">{[g.error_type ? g.message.split('\n')[0] : '', g.engine, g.platform, base.project_id ? '' : g.project_id].filter(Boolean).join(' · ')}</div>
                      </td>
                      <td><Sparkline values={g.trend} label={`${g.count} events in range`} /></td>
                      <td class="num">{fmtNum(g.count)}{g.total_count !== g.count && <div class="muted small">{fmtNum(g.total_count)} total</div>}</td>
                      <td class="num">{fmtNum(g.users_affected)}</td>
                      <td class="nowrap" title={g.first_seen ?? ''}>{fmtAgo(g.first_seen)}</td>
                      <td class="nowrap" title={g.last_seen ?? ''}>{fmtAgo(g.last_seen)}</td>
                      <td class="nowrap"><Badge value={g.state} />{g.regression && <> <Badge value="regression" /></>}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </div>
      {fp && <Detail route={route} fp={fp} project={gp} epoch={epoch} now={now} onChanged={list.reload} />}
    </section>
  );
}
