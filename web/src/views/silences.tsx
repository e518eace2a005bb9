// Silences: matchers on an alert group's facts and an end time. Created from an alert or a group
// (the Alerts view links here with the matchers filled in as m.<field>=value), listed, expired.
import { useState } from 'preact/hooks';
import { api, type AlertSilence } from '../api';
import { adminDenied, type ViewProps } from '../common';
import { Badge, ConfirmButton, Empty, ErrorBox, FormPane, Loading, Time } from '../components';
import { toLocalInput } from '../format';
import { update, type Route } from '../router';
import { useAction, useApi } from '../hooks';

/** Facts a silence can match (src/alerts/silences.ts SILENCE_FIELDS). */
export const SILENCE_FIELDS = ['project_id', 'rule_id', 'engine', 'platform', 'action', 'fingerprint', 'error_type', 'event_type', 'flow_id', 'severity'] as const;
const DURATIONS = [['1h', 'for 1 hour', 3600_000], ['4h', 'for 4 hours', 4 * 3600_000], ['1d', 'for 1 day', 86_400_000], ['7d', 'for 7 days', 7 * 86_400_000], ['custom', 'until…', 0]] as const;

/** The Silences view's "new silence" link, matchers filled in. */
export function silenceHref(route: Route, matchers: Record<string, string>): string {
  const p = new URLSearchParams();
  for (const k of ['project', 'range', 'from', 'to']) if (route.params.get(k)) p.set(k, route.params.get(k)!);
  p.set('new', '1');
  for (const [k, v] of Object.entries(matchers)) if ((SILENCE_FIELDS as readonly string[]).includes(k) && v) p.set(`m.${k}`, v);
  return `#/silences?${p}`;
}

function SilenceForm({ route, onDone }: { route: Route; onDone(): void }) {
  const [rows, setRows] = useState<[string, string][]>(() => {
    const from = [...route.params].filter(([k]) => k.startsWith('m.')).map(([k, v]) => [k.slice(2), v] as [string, string]);
    return from.length ? from : [['engine', '']];
  });
  const [duration, setDuration] = useState('1h');
  const [until, setUntil] = useState(toLocalInput(Date.now() + 3600_000));
  const [comment, setComment] = useState('');
  const save = useAction();
  const submit = () => {
    const d = DURATIONS.find(([k]) => k === duration)!;
    const ends = d[0] === 'custom' ? new Date(until).getTime() : Date.now() + d[2];
    const matchers = Object.fromEntries(rows.filter(([k, v]) => k && v.trim()).map(([k, v]) => [k, v.trim()]));
    const project = matchers.project_id || route.params.get('project') || undefined;
    void save.run(() => api('/monitoring/silences', {}, { method: 'POST', body: { matchers, ends_at: new Date(ends).toISOString(), comment, ...(project ? { project_id: project } : {}) } }), onDone);
  };
  return (
    <FormPane label="new silence" title="New silence" onClose={onDone} onSubmit={submit}>
      <p class="muted small">Alerts whose group matches every matcher are recorded as silenced and not sent until the silence ends.</p>
      <fieldset>
        <legend>Matchers</legend>
        {rows.map(([k, v], i) => (
          <div class="row-fields">
            <label>Field {i + 1}
              <select value={k} onChange={(e) => setRows(rows.map((r, j) => (j === i ? [e.currentTarget.value, r[1]] : r)))}>
                {SILENCE_FIELDS.map((f) => <option value={f}>{f}</option>)}
              </select>
            </label>
            <label>Value {i + 1} <input value={v} onInput={(e) => setRows(rows.map((r, j) => (j === i ? [r[0], e.currentTarget.value] : r)))} /></label>
            <button type="button" aria-label={`Remove matcher ${i + 1}`} onClick={() => setRows(rows.filter((_, j) => j !== i))}>×</button>
          </div>
        ))}
        <button type="button" onClick={() => setRows([...rows, ['platform', '']])}>Add matcher</button>
      </fieldset>
      <div class="row-fields">
        <label>Ends <select value={duration} onChange={(e) => setDuration(e.currentTarget.value)}>{DURATIONS.map(([k, l]) => <option value={k}>{l}</option>)}</select></label>
        {duration === 'custom' && <label>Until <input type="datetime-local" value={until} onInput={(e) => setUntil(e.currentTarget.value)} required /></label>}
      </div>
      <label>Comment <input value={comment} placeholder="why, and who is on it" onInput={(e) => setComment(e.currentTarget.value)} /></label>
      <ErrorBox error={save.error} what="Not created" />
      <div class="actions"><button type="submit" class="primary" disabled={save.busy}>Create silence</button></div>
    </FormPane>
  );
}

export function SilencesView({ route, epoch, me }: ViewProps) {
  const project = route.params.get('project') || undefined;
  const denied = adminDenied(me);
  const showAll = route.params.get('all') === '1';
  const list = useApi(denied ? null : (signal) => api<{ silences: AlertSilence[] }>('/monitoring/silences', { project_id: project, active: showAll ? undefined : 'true' }, { signal }), [project, showAll], [epoch]);
  const action = useAction();
  const creating = route.params.get('new') === '1' && !denied;
  const close = () => {
    const drop: Record<string, undefined> = { new: undefined };
    for (const [k] of route.params) if (k.startsWith('m.')) drop[k] = undefined;
    update(route, drop);
    list.reload();
  };
  const expire = (s: AlertSilence) => action.run(() => api(`/monitoring/silences/${encodeURIComponent(s.id)}`, {}, { method: 'DELETE' }), list.reload);
  return (
    <section class={`view split-view${creating ? ' with-detail' : ''}`} aria-labelledby="silences-h">
      <div class="pane list-pane">
        <div class="toolbar">
          <h1 id="silences-h" class="view-title">Silences</h1>
          <label class="check"><input type="checkbox" checked={showAll} onChange={(e) => update(route, { all: e.currentTarget.checked ? '1' : undefined })} /> Show expired</label>
          <span class="spacer" />
          <Loading show={list.loading} />
          <button type="button" class="primary" disabled={!!denied} title={denied ?? undefined} onClick={() => update(route, { new: '1' })}>New silence</button>
        </div>
        {denied && <div class="notice">Silences need the admin scope: {denied}.</div>}
        <ErrorBox error={list.error} />
        <ErrorBox error={action.error} />
        {list.data && list.data.silences.length === 0 && <Empty>No {showAll ? '' : 'active '}silences.</Empty>}
        {list.data && list.data.silences.length > 0 && (
          <div class="table-wrap">
            <table class="grid">
              <thead><tr><th scope="col">Matchers</th><th scope="col">State</th><th scope="col">Ends</th><th scope="col">Comment</th><th scope="col">By</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {list.data.silences.map((s) => (
                  <tr class="row" data-row tabIndex={0}>
                    <td class="mono small">{Object.entries(s.matchers).map(([k, v]) => `${k}=${v}`).join(' ')}</td>
                    <td><Badge value={s.active ? 'active' : 'expired'} /></td>
                    <td class="nowrap"><Time iso={s.ends_at} ms={false} /></td>
                    <td>{s.comment}</td>
                    <td class="small">{s.created_by}</td>
                    <td class="actions">{s.active && <ConfirmButton label="Expire" confirm="Confirm expire" name={Object.entries(s.matchers).map(([k, v]) => `${k}=${v}`).join(' ')} onConfirm={() => expire(s)} />}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
      {creating && <SilenceForm key={route.params.toString()} route={route} onDone={close} />}
    </section>
  );
}
