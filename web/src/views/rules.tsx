// Alert rules: the list (enable/disable, edit, duplicate, delete) and the editor, which previews
// what the rule would have fired over the last 24 h (POST /monitoring/alert-rules/preview) before
// it is saved: the count of firings and a chart of the value against the threshold.
import { useEffect, useState } from 'preact/hooks';
import { api, type AlertChannel, type AlertRule, type Preview } from '../api';
import { Chart } from '../chart';
import { adminDenied, type ViewProps } from '../common';
import { Badge, ConfirmButton, Empty, ErrorBox, FormPane, Loading, Time } from '../components';
import { fmtNum } from '../format';
import { useAction, useApi } from '../hooks';
import { update, type Route } from '../router';

const KINDS = [
  ['event', 'Event: every matching event'], ['threshold', 'Threshold: events in a window'], ['error_rate', 'Error rate in a window'],
  ['latency', 'Latency: p95 duration'], ['spike', 'Spike: volume against its baseline'], ['new_group', 'New error group'], ['regression', 'Regression of a resolved group'],
] as const;
const WINDOWED = new Set(['threshold', 'error_rate', 'latency', 'spike']);
const SEVERITIES = ['debug', 'info', 'warning', 'low', 'medium', 'high', 'critical'];
const THRESHOLD_HINT: Record<string, string> = {
  threshold: 'events in the window', error_rate: 'error share, 0.05 = 5%', latency: 'p95 in ms', spike: 'times the usual volume',
};

/** `platform=Slack engine=execution attr.region=eu` ⇄ the rule's filter object. */
function filterText(f: AlertRule['filter']): string {
  const out: string[] = [];
  for (const [k, v] of Object.entries(f)) for (const x of Array.isArray(v) ? v : [v]) out.push(`${k}=${String(x)}`);
  return out.join(' ');
}

function parseFilterText(text: string): AlertRule['filter'] {
  const out: Record<string, string | string[] | boolean> = {};
  for (const part of text.trim().split(/\s+(?=[^\s=]+=)/)) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    if (k === 'alert') out[k] = v === 'true';
    else if (out[k] === undefined) out[k] = v;
    else out[k] = [...(Array.isArray(out[k]) ? (out[k] as string[]) : [String(out[k])]), v];
  }
  return out;
}

interface Draft {
  name: string;
  project_id: string;
  kind: string;
  query: string;
  filter: string;
  threshold: string;
  window_s: string;
  min_count: string;
  group_by: string;
  channels: string[];
  severity: string;
  repeat_interval_s: string;
  send_resolved: boolean;
  enabled: boolean;
}

function draftOf(r: AlertRule | undefined, project: string, copy = false): Draft {
  return {
    name: r ? (copy ? `${r.name} (copy)` : r.name) : '',
    project_id: r ? r.project_id ?? '' : project,
    kind: r?.kind ?? 'threshold',
    query: r?.query ?? '',
    filter: r ? filterText(r.filter) : '',
    threshold: r?.threshold != null ? String(r.threshold) : '',
    window_s: String(r?.window_s ?? 300),
    min_count: r?.min_count != null ? String(r.min_count) : '',
    group_by: r?.group_by.join(', ') ?? '',
    channels: r?.channels ?? [],
    severity: r?.severity ?? 'high',
    repeat_interval_s: String(r?.repeat_interval_s ?? 3600),
    send_resolved: r?.send_resolved ?? true,
    enabled: r ? (copy ? false : r.enabled) : true,
  };
}

function bodyOf(d: Draft): Record<string, unknown> {
  const windowed = WINDOWED.has(d.kind);
  const body: Record<string, unknown> = {
    name: d.name.trim(), kind: d.kind, filter: parseFilterText(d.filter), query: d.query.trim() || undefined, window_s: Number(d.window_s) || 300,
    group_by: d.group_by.split(',').map((x) => x.trim()).filter(Boolean), channels: d.channels, severity: d.severity,
    repeat_interval_s: Number(d.repeat_interval_s) || 0, enabled: d.enabled,
  };
  if (d.kind === 'new_group' || d.kind === 'regression') { if (!d.group_by.trim()) delete body.group_by; } else body.send_resolved = d.send_resolved;
  if (d.project_id.trim()) body.project_id = d.project_id.trim();
  if (windowed) body.threshold = d.threshold.trim() === '' ? undefined : Number(d.threshold);
  if (windowed && d.kind !== 'threshold' && d.min_count.trim()) body.min_count = Number(d.min_count);
  return body;
}

function PreviewBox({ body }: { body: Record<string, unknown> }) {
  const [state, setState] = useState<{ data?: Preview; error?: unknown; loading: boolean }>({ loading: false });
  const key = JSON.stringify({ ...body, name: 'preview', channels: [], enabled: true });
  useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    // wait for typing to pause before asking
    const t = setTimeout(() => {
      api<Preview>('/monitoring/alert-rules/preview', {}, { method: 'POST', body: { ...body, name: 'preview', channels: [] }, signal: ctl.signal })
        .then((data) => setState({ data, loading: false }), (error) => { if (!ctl.signal.aborted) setState({ error, loading: false }); });
    }, 400);
    return () => { clearTimeout(t); ctl.abort(); };
  }, [key]);
  const p = state.data;
  const s = p?.series[0];
  return (
    <section class="preview" aria-live="polite" aria-label="Preview of the last 24 hours">
      <h3>Last 24 hours</h3>
      <Loading show={state.loading} />
      {state.error && !state.loading ? <ErrorBox error={state.error} what="No preview" /> : null}
      {p && !state.error && (
        <>
          <p class="preview-summary"><strong>{p.firings === 0 ? 'Would not have fired' : `Would have fired ${fmtNum(p.firings)} time${p.firings === 1 ? '' : 's'}`}</strong>
            {p.groups_total > 1 ? ` in ${p.groups_firing} of ${p.groups_total} groups` : ''} <span class="muted small">(windows of {p.step_s} s)</span></p>
          {p.note && <p class="muted small">{p.note}</p>}
          {s && (
            <Chart title={`${p.unit === 'share' ? 'Error share' : p.unit === 'ms' ? 'p95 duration' : p.unit === 'ratio' ? 'Volume ÷ baseline' : 'Events'} per window${Object.keys(s.labels).length ? ` · ${Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(', ')}` : ''}`}
              height={140} unit={p.unit === 'ms' ? 'ms' : p.unit === 'share' ? 'share' : undefined} times={p.times}
              series={[{ label: 'value', values: s.values, color: '--accent', fill: true }, ...(p.threshold !== null ? [{ label: 'threshold', values: p.times.map(() => p.threshold), color: '--bad', dashed: true }] : [])]} />
          )}
          {!s && <p class="muted">No matching events in the last 24 hours.</p>}
        </>
      )}
    </section>
  );
}

function RuleEditor({ route, existing, copy, channels, onDone }: { route: Route; existing?: AlertRule; copy: boolean; channels: AlertChannel[]; onDone(): void }) {
  const [d, setD] = useState(() => draftOf(existing, route.params.get('project') ?? '', copy));
  const save = useAction();
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setD({ ...d, [k]: v });
  const body = bodyOf(d);
  const usable = channels.filter((c) => c.project_id === null || c.project_id === (d.project_id || null));
  const submit = () => save.run(() => (existing && !copy
    ? api(`/monitoring/alert-rules/${encodeURIComponent(existing.id)}`, {}, { method: 'PUT', body })
    : api('/monitoring/alert-rules', {}, { method: 'POST', body })), onDone);
  return (
    <FormPane label="rule editor" title={existing && !copy ? `Edit rule ${existing.name}` : 'New rule'} onClose={onDone} onSubmit={submit}>
      <label>Name <input required value={d.name} onInput={(e) => set('name', e.currentTarget.value)} /></label>
      <label>Project <input value={d.project_id} disabled={!!existing && !copy} placeholder="every project" onInput={(e) => set('project_id', e.currentTarget.value)} /></label>
      <label>Kind
        <select value={d.kind} onChange={(e) => set('kind', e.currentTarget.value)}>{KINDS.map(([v, l]) => <option value={v}>{l}</option>)}</select>
      </label>
      <label>Query <input value={d.query} class="mono" placeholder='status:error platform:(Slack OR Notion) -"rate limit"' onInput={(e) => set('query', e.currentTarget.value)} /></label>
      <label>Filter (exact fields) <input value={d.filter} placeholder="platform=Slack status=error attr.region=eu" onInput={(e) => set('filter', e.currentTarget.value)} /></label>
      <div class="row-fields">
        {WINDOWED.has(d.kind) && <label>Threshold <input inputMode="decimal" value={d.threshold} placeholder={THRESHOLD_HINT[d.kind]} onInput={(e) => set('threshold', e.currentTarget.value)} /></label>}
        <label>Window (s) <input type="number" min={1} value={d.window_s} onInput={(e) => set('window_s', e.currentTarget.value)} /></label>
        {WINDOWED.has(d.kind) && d.kind !== 'threshold' && <label>Minimum events <input type="number" min={1} value={d.min_count} onInput={(e) => set('min_count', e.currentTarget.value)} /></label>}
      </div>
      <label>Group by <input value={d.group_by} placeholder="engine, platform, attr.region" onInput={(e) => set('group_by', e.currentTarget.value)} /></label>
      <PreviewBox body={body} />
      <div class="row-fields">
        <label>Severity <select value={d.severity} onChange={(e) => set('severity', e.currentTarget.value)}>{SEVERITIES.map((s) => <option value={s}>{s}</option>)}</select></label>
        <label>Repeat every (s) <input type="number" min={0} value={d.repeat_interval_s} onInput={(e) => set('repeat_interval_s', e.currentTarget.value)} /></label>
      </div>
      <fieldset>
        <legend>Channels</legend>
        {usable.length === 0 && <p class="muted small">No channels for this project yet (Channels tab). Without one, the rule only records its alerts.</p>}
        {usable.map((c) => (
          <label class="check"><input type="checkbox" checked={d.channels.includes(c.id)}
            onChange={(e) => set('channels', e.currentTarget.checked ? [...d.channels, c.id] : d.channels.filter((x) => x !== c.id))} /> {c.name} <span class="muted small">({c.type})</span></label>
        ))}
      </fieldset>
      {d.kind !== 'new_group' && d.kind !== 'regression' && <label class="check"><input type="checkbox" checked={d.send_resolved} onChange={(e) => set('send_resolved', e.currentTarget.checked)} /> Send "resolved"</label>}
      <label class="check"><input type="checkbox" checked={d.enabled} onChange={(e) => set('enabled', e.currentTarget.checked)} /> Enabled</label>
      <ErrorBox error={save.error} what="Not saved" />
      <div class="actions"><button type="submit" class="primary" disabled={save.busy}>Save rule</button></div>
    </FormPane>
  );
}

export function RulesView({ route, epoch, me }: ViewProps) {
  const project = route.params.get('project') || undefined;
  const denied = adminDenied(me);
  const rules = useApi(denied ? null : (signal) => api<{ rules: AlertRule[] }>('/monitoring/alert-rules', { project_id: project }, { signal }), [project], [epoch]);
  const channels = useApi(denied ? null : (signal) => api<{ channels: AlertChannel[] }>('/monitoring/channels', { project_id: project }, { signal }), [project], [epoch]);
  const action = useAction();
  // the switch shows what was asked at once, until the list comes back from the engine
  const [asked, setAsked] = useState<Record<string, boolean>>({});
  useEffect(() => setAsked({}), [rules.data]);
  const editId = route.params.get('edit');
  const dupId = route.params.get('dup');
  const creating = route.params.get('new') === '1';
  const existing = rules.data?.rules.find((r) => r.id === (editId ?? dupId));
  const open = creating || !!existing;
  const close = () => { update(route, { edit: undefined, new: undefined, dup: undefined }); rules.reload(); };
  const act = (fn: () => Promise<unknown>) => action.run(fn, rules.reload);
  const chName = (id: string) => channels.data?.channels.find((c) => c.id === id)?.name ?? id;

  return (
    <section class={`view split-view${open ? ' with-detail' : ''}`} aria-labelledby="rules-h">
      <div class="pane list-pane">
        <div class="toolbar">
          <h1 id="rules-h" class="view-title">Alert rules</h1>
          <span class="spacer" />
          <Loading show={rules.loading} />
          <button type="button" class="primary" disabled={!!denied} title={denied ?? undefined} onClick={() => update(route, { new: '1', edit: undefined, dup: undefined })}>New rule</button>
        </div>
        {denied && <div class="notice">Rules need the admin scope: {denied}.</div>}
        <ErrorBox error={rules.error} />
        <ErrorBox error={action.error} />
        {rules.data && rules.data.rules.length === 0 && <Empty>No alert rules{project ? ` for ${project}` : ''}. Create one: the editor shows what it would have fired over the last day.</Empty>}
        {rules.data && rules.data.rules.length > 0 && (
          <div class="table-wrap">
            <table class="grid">
              <thead><tr><th scope="col">Rule</th><th scope="col">Kind</th><th scope="col">Project</th><th scope="col">Channels</th><th scope="col">Enabled</th><th scope="col">Updated</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {rules.data.rules.map((r) => (
                  <tr class={`row${r.id === editId ? ' selected' : ''}`} data-row tabIndex={0} onKeyDown={(k) => { if (k.key === 'Enter') update(route, { edit: r.id, new: undefined, dup: undefined }); }}>
                    <td><div class="g-title">{r.name}</div><div class="muted small">{[r.query, filterText(r.filter)].filter(Boolean).join(' · ') || 'every event'}{r.threshold !== null ? ` · threshold ${r.threshold}` : ''} · {r.window_s} s</div></td>
                    <td><Badge value={r.kind} /> <Badge value={r.severity} /></td>
                    <td>{r.project_id ?? <span class="muted">all</span>}</td>
                    <td class="small">{r.channels.map(chName).join(', ') || <span class="muted">none</span>}</td>
                    <td>
                      <label class="switch"><input type="checkbox" role="switch" checked={asked[r.id] ?? r.enabled} aria-label={`Enabled: ${r.name}`}
                        onChange={(e) => { const enabled = e.currentTarget.checked; setAsked({ ...asked, [r.id]: enabled }); void act(() => api(`/monitoring/alert-rules/${encodeURIComponent(r.id)}`, {}, { method: 'PATCH', body: { enabled } })); }} /> {(asked[r.id] ?? r.enabled) ? 'on' : 'off'}</label>
                    </td>
                    <td class="nowrap"><Time iso={r.updated_at} ms={false} /></td>
                    <td class="nowrap actions">
                      <button type="button" aria-label={`Edit ${r.name}`} onClick={() => update(route, { edit: r.id, new: undefined, dup: undefined })}>Edit</button>
                      <button type="button" aria-label={`Duplicate ${r.name}`} onClick={() => update(route, { dup: r.id, edit: undefined, new: undefined })}>Duplicate</button>
                      <ConfirmButton label="Delete" confirm="Confirm delete" name={r.name} onConfirm={() => act(() => api(`/monitoring/alert-rules/${encodeURIComponent(r.id)}`, {}, { method: 'DELETE' }))} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
      {open && (rules.data || creating) && (
        <RuleEditor key={`${editId ?? ''}|${dupId ?? ''}|${creating}`} route={route} existing={existing} copy={!!dupId && !editId} channels={channels.data?.channels ?? []} onDone={close} />
      )}
    </section>
  );
}
