// Channels: where alerts go. Per-type forms (Slack, e-mail, webhook, Feedback Loop, in-app), a test
// message, secrets shown masked as the API returns them (sent back masked, the engine keeps the real ones).
import { useState } from 'preact/hooks';
import { api, type AlertChannel } from '../api';
import { adminDenied, type ViewProps } from '../common';
import { Badge, ConfirmButton, Empty, ErrorBox, FormPane, Loading, Time } from '../components';
import { useAction, useApi } from '../hooks';
import { update, type Route } from '../router';

export const CHANNEL_TYPES = [['slack', 'Slack'], ['email', 'E-mail'], ['webhook', 'Webhook'], ['feedback_loop', 'Feedback Loop engine'], ['ui', 'In-app']] as const;

type Field = { key: string; label: string; kind: 'text' | 'url' | 'number' | 'secret' | 'bool' | 'list' | 'headers'; required?: boolean; hint?: string };
const FIELDS: Record<string, Field[]> = {
  slack: [{ key: 'webhook_url', label: 'Incoming webhook URL', kind: 'url', required: true }],
  email: [
    { key: 'host', label: 'SMTP host', kind: 'text', required: true }, { key: 'port', label: 'SMTP port', kind: 'number', required: true },
    { key: 'secure', label: 'Implicit TLS (port 465)', kind: 'bool' }, { key: 'user', label: 'SMTP user', kind: 'text' },
    { key: 'password', label: 'SMTP password', kind: 'secret' }, { key: 'from', label: 'From', kind: 'text', required: true },
    { key: 'to', label: 'To (comma-separated)', kind: 'list', required: true },
  ],
  webhook: [
    { key: 'url', label: 'URL', kind: 'url', required: true }, { key: 'secret', label: 'Signing secret (HMAC-SHA256)', kind: 'secret' },
    { key: 'headers', label: 'Headers (one "Name: value" a line)', kind: 'headers' },
  ],
  feedback_loop: [{ key: 'url', label: 'URL', kind: 'url', required: true }, { key: 'secret', label: 'Signing secret', kind: 'secret' }],
  ui: [],
};

function toText(f: Field, v: unknown): string {
  if (v === undefined || v === null) return '';
  if (f.kind === 'list') return Array.isArray(v) ? v.join(', ') : String(v);
  if (f.kind === 'headers') return Object.entries(v as Record<string, string>).map(([k, x]) => `${k}: ${x}`).join('\n');
  return String(v);
}

function fromText(f: Field, s: string): unknown {
  const t = s.trim();
  if (t === '') return undefined;
  if (f.kind === 'number') return Number(t);
  if (f.kind === 'list') return t.split(',').map((x) => x.trim()).filter(Boolean);
  if (f.kind === 'headers') {
    const out: Record<string, string> = {};
    for (const line of t.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    return out;
  }
  return t;
}

function ChannelForm({ route, existing, onDone }: { route: Route; existing?: AlertChannel; onDone(): void }) {
  const [type, setType] = useState(existing?.type ?? 'webhook');
  const [name, setName] = useState(existing?.name ?? '');
  const [isDefault, setDefault] = useState(existing?.default ?? false);
  const [values, setValues] = useState<Record<string, string>>(() => Object.fromEntries((FIELDS[existing?.type ?? 'webhook'] ?? []).map((f) => [f.key, toText(f, existing?.config[f.key])])));
  const [bools, setBools] = useState<Record<string, boolean>>(() => ({ secure: existing?.config.secure === true }));
  const save = useAction();
  const project = existing ? existing.project_id : route.params.get('project') || null;
  const submit = () => {
    const config: Record<string, unknown> = {};
    for (const f of FIELDS[type] ?? []) {
      const v = f.kind === 'bool' ? (bools[f.key] ? true : undefined) : fromText(f, values[f.key] ?? '');
      if (v !== undefined) config[f.key] = v;
    }
    void save.run(() => (existing
      ? api(`/monitoring/channels/${encodeURIComponent(existing.id)}`, {}, { method: 'PUT', body: { name, type, config, default: isDefault } })
      : api('/monitoring/channels', {}, { method: 'POST', body: { name, type, config, default: isDefault, ...(project ? { project_id: project } : {}) } })), onDone);
  };
  return (
    <FormPane label={existing ? 'edit channel' : 'new channel'} title={existing ? `Edit channel ${existing.name}` : 'New channel'} onClose={onDone} onSubmit={submit}>
      <p class="muted small">{project ? `For project ${project}.` : 'For every project (pick a project above to make one for it).'}</p>
      <label>Name <input required value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
      <label>Type
        <select value={type} onChange={(e) => { const t = e.currentTarget.value; setType(t); setValues(Object.fromEntries((FIELDS[t] ?? []).map((f) => [f.key, '']))); }}>
          {CHANNEL_TYPES.map(([v, l]) => <option value={v}>{l}</option>)}
        </select>
      </label>
      {(FIELDS[type] ?? []).map((f) => f.kind === 'bool' ? (
        <label class="check"><input type="checkbox" checked={!!bools[f.key]} onChange={(e) => setBools({ ...bools, [f.key]: e.currentTarget.checked })} /> {f.label}</label>
      ) : f.kind === 'headers' ? (
        <label>{f.label}<textarea rows={3} value={values[f.key] ?? ''} onInput={(e) => setValues({ ...values, [f.key]: e.currentTarget.value })} /></label>
      ) : (
        <label>{f.label}
          <input type={f.kind === 'secret' ? 'password' : f.kind === 'number' ? 'number' : f.kind === 'url' ? 'url' : 'text'} required={f.required}
            autoComplete="off" value={values[f.key] ?? ''} onInput={(e) => setValues({ ...values, [f.key]: e.currentTarget.value })} />
        </label>
      ))}
      {type === 'ui' && <p class="muted">In-app notifications appear under Alerts; nothing to set.</p>}
      <label class="check"><input type="checkbox" checked={isDefault} onChange={(e) => setDefault(e.currentTarget.checked)} /> Default: also receives engine-raised alerts no rule matched</label>
      {existing && <p class="muted small">Secrets show masked; leave them as they are to keep them.</p>}
      <ErrorBox error={save.error} what="Not saved" />
      <div class="actions"><button type="submit" class="primary" disabled={save.busy}>{existing ? 'Save channel' : 'Create channel'}</button></div>
    </FormPane>
  );
}

export function ChannelsView({ route, epoch, me }: ViewProps) {
  const project = route.params.get('project') || undefined;
  const denied = adminDenied(me);
  const list = useApi(denied ? null : (signal) => api<{ channels: AlertChannel[] }>('/monitoring/channels', { project_id: project }, { signal }), [project], [epoch]);
  const [note, setNote] = useState<{ id: string; text: string; ok: boolean } | null>(null);
  const action = useAction();
  const editId = route.params.get('edit');
  const creating = route.params.get('new') === '1';
  const editing = editId ? list.data?.channels.find((c) => c.id === editId) : undefined;
  const close = () => { update(route, { edit: undefined, new: undefined }); list.reload(); };

  const test = (c: AlertChannel) => {
    setNote(null);
    return action.run(async () => {
      const r = await api<{ ok: boolean; status?: number | null; error?: string }>(`/monitoring/channels/${encodeURIComponent(c.id)}/test`, {}, { method: 'POST', body: {} });
      setNote({ id: c.id, ok: r.ok, text: r.ok ? `Test message sent to ${c.name}${r.status ? ` (HTTP ${r.status})` : ''}.` : `Test to ${c.name} failed: ${r.error ?? 'no answer'}` });
    });
  };
  const remove = (c: AlertChannel) => action.run(() => api(`/monitoring/channels/${encodeURIComponent(c.id)}`, {}, { method: 'DELETE' }), list.reload);

  return (
    <section class={`view split-view${creating || editing ? ' with-detail' : ''}`} aria-labelledby="channels-h">
      <div class="pane list-pane">
        <div class="toolbar">
          <h1 id="channels-h" class="view-title">Channels</h1>
          <span class="spacer" />
          <Loading show={list.loading} />
          <button type="button" class="primary" disabled={!!denied} title={denied ?? undefined} onClick={() => update(route, { new: '1', edit: undefined })}>New channel</button>
        </div>
        {denied && <div class="notice">Channels need the admin scope: {denied}.</div>}
        <ErrorBox error={list.error} />
        <ErrorBox error={action.error} />
        {note && <div class={`notice${note.ok ? '' : ' error'}`} role="status">{note.text}</div>}
        {list.data && list.data.channels.length === 0 && <Empty>No channels yet. Create one, then use it in a rule.</Empty>}
        {list.data && list.data.channels.length > 0 && (
          <div class="table-wrap">
            <table class="grid">
              <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Project</th><th scope="col">Settings</th><th scope="col">Created</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {list.data.channels.map((c) => (
                  <tr data-row tabIndex={0} class="row" onKeyDown={(k) => { if (k.key === 'Enter') update(route, { edit: c.id, new: undefined }); }}>
                    <td>{c.name} {c.default && <Badge value="default" />}</td>
                    <td>{CHANNEL_TYPES.find(([v]) => v === c.type)?.[1] ?? c.type}</td>
                    <td>{c.project_id ?? <span class="muted">all</span>}</td>
                    <td class="mono small">{Object.entries(c.config).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' · ')}</td>
                    <td class="nowrap"><Time iso={c.created_at} ms={false} /></td>
                    <td class="nowrap actions">
                      <button type="button" onClick={() => test(c)} aria-label={`Send test to ${c.name}`}>Send test</button>
                      <button type="button" onClick={() => update(route, { edit: c.id, new: undefined })} aria-label={`Edit ${c.name}`}>Edit</button>
                      <ConfirmButton label="Delete" confirm="Confirm delete" name={c.name} onConfirm={() => remove(c)} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
      {(creating || editing) && <ChannelForm key={editId ?? 'new'} route={route} existing={editing} onDone={close} />}
    </section>
  );
}
