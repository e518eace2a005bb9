// Project settings: the sections GET /monitoring/projects/:id/settings returns, each with its own
// form (redaction rules, flood ceiling; retention and forwarding when the engine has them). A
// section the dashboard does not know is shown as its fields, so a newer engine's settings still appear.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { adminDenied, type ViewProps } from '../common';
import { Empty, ErrorBox, Loading } from '../components';
import { useAction, useApi } from '../hooks';

type Settings = Record<string, unknown>;
type Pattern = { name: string; regex: string; flags?: string };

const TITLES: Record<string, string> = { redaction: 'Redaction', flood: 'Flood protection', retention: 'Retention', forwarding: 'Forwarding' };

/** Top-level keys grouped into sections: flood_* fields form one. */
function sectionsOf(s: Settings): string[] {
  const out: string[] = [];
  for (const k of Object.keys(s)) {
    if (k === 'retention_days') continue; // its own section, shown whether set or not
    const sec = k.startsWith('flood_') ? 'flood' : k;
    if (!out.includes(sec)) out.push(sec);
  }
  return out;
}

function GenericFields({ value, onChange, path }: { value: unknown; onChange(v: unknown): void; path: string }) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return (
      <div class="generic">
        {Object.entries(value as Record<string, unknown>).map(([k, v]) => (
          <GenericFields path={`${path}.${k}`} value={v} onChange={(nv) => onChange({ ...(value as object), [k]: nv })} />
        ))}
      </div>
    );
  }
  const label = path.split('.').slice(1).join('.') || path;
  if (typeof value === 'boolean') return <label class="check"><input type="checkbox" checked={value} onChange={(e) => onChange(e.currentTarget.checked)} /> {label}</label>;
  if (typeof value === 'number' || value === null) {
    return <label>{label}<input inputMode="numeric" value={value === null ? '' : String(value)} placeholder="none" onInput={(e) => { const t = e.currentTarget.value.trim(); onChange(t === '' ? null : Number(t)); }} /></label>;
  }
  if (Array.isArray(value)) {
    return <label>{label} (JSON)<textarea rows={3} value={JSON.stringify(value, null, 1)} onChange={(e) => { try { onChange(JSON.parse(e.currentTarget.value)); } catch { /* kept until valid */ } }} /></label>;
  }
  return <label>{label}<input value={String(value)} onInput={(e) => onChange(e.currentTarget.value)} /></label>;
}

export function SettingsView({ route, epoch, me }: ViewProps) {
  const project = route.params.get('project') ?? '';
  const denied = adminDenied(me);
  const loaded = useApi(project && !denied ? (signal) => api<Settings>(`/monitoring/projects/${encodeURIComponent(project)}/settings`, {}, { signal }) : null, [project], [epoch]);
  const [draft, setDraft] = useState<Settings | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => { setDraft(loaded.data ?? null); setSaved(false); }, [loaded.data]);
  const set = (k: string, v: unknown) => { setDraft({ ...draft!, [k]: v }); setSaved(false); };

  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      setDraft(await api<Settings>(`/monitoring/projects/${encodeURIComponent(project)}/settings`, {}, { method: 'PUT', body: draft }));
      setSaved(true);
    } catch (x) {
      setError(x);
    }
  };

  return (
    <section class="view settings-view" aria-labelledby="settings-h">
      <h1 id="settings-h" class="view-title">Project settings{project ? `: ${project}` : ''}</h1>
      {!project && <Empty>Pick a project above: settings belong to one project.</Empty>}
      {project && denied && <div class="notice">Settings need the admin scope: {denied}.</div>}
      <Loading show={loaded.loading} />
      <ErrorBox error={loaded.error} />
      {draft && (
        <form onSubmit={save} class="settings-form">
          {sectionsOf(draft).map((sec) => (
            <fieldset class="section">
              <legend>{TITLES[sec] ?? sec}</legend>
              {sec === 'flood' ? (
                <>
                  <label>Flood ceiling (events per error group and minute, empty = none)
                    <input inputMode="numeric" value={draft.flood_ceiling_per_minute == null ? '' : String(draft.flood_ceiling_per_minute)}
                      onInput={(e) => { const t = e.currentTarget.value.trim(); set('flood_ceiling_per_minute', t === '' ? null : Number(t)); }} />
                  </label>
                  {'flood_sample_every' in draft && (
                    <label>Past the ceiling, keep one event in
                      <input type="number" min={1} value={String(draft.flood_sample_every)} onInput={(e) => set('flood_sample_every', Number(e.currentTarget.value))} />
                    </label>
                  )}
                </>
              ) : sec === 'redaction' ? (
                <Redaction value={draft.redaction as { patterns: Pattern[]; secret_keys: string[] }} onChange={(v) => set('redaction', v)} />
              ) : (
                <GenericFields path={sec} value={draft[sec]} onChange={(v) => set(sec, v)} />
              )}
            </fieldset>
          ))}
          <fieldset class="section">
            <legend>Retention</legend>
            {/* absent = the engine's MONITORING_RETENTION_DAYS; the schema has no null, so empty deletes the key */}
            <label>Retention days (empty = engine default)
              <input type="number" min={1} max={36500} value={draft.retention_days == null ? '' : String(draft.retention_days)}
                onInput={(e) => {
                  const t = e.currentTarget.value.trim();
                  if (t === '') { const { retention_days: _, ...rest } = draft; setDraft(rest); setSaved(false); } else set('retention_days', Number(t));
                }} />
            </label>
            <Usage project={project} epoch={epoch} />
          </fieldset>
          <ErrorBox error={error} what="Not saved" />
          {saved && <div class="notice" role="status">Saved.</div>}
          <div class="actions"><button type="submit" class="primary">Save settings</button></div>
        </form>
      )}
      {project && !denied && <Forwarding project={project} epoch={epoch} />}
    </section>
  );
}

type UsageView = { retention_days: number; from: string; to: string; total: { events: number; bytes: number } };

/** Events and bytes stored over the retention window (GET /monitoring/projects/:id/usage). */
function Usage({ project, epoch }: { project: string; epoch: number }) {
  const u = useApi((signal) => api<UsageView>(`/monitoring/projects/${encodeURIComponent(project)}/usage`, {}, { signal }), [project], [epoch]);
  if (u.error) return <ErrorBox error={u.error} />;
  if (!u.data) return <Loading show={u.loading} />;
  const d = u.data;
  return (
    <p class="muted small usage-summary" aria-label="Usage">
      {d.total.events.toLocaleString('en-US')} events, {d.total.bytes.toLocaleString('en-US')} bytes stored
      from {d.from.slice(0, 10)} to {d.to.slice(0, 10)} (in force: {d.retention_days} days).
    </p>
  );
}

type ForwardingView = { sentry: unknown; datadog: unknown; status?: unknown; updated_at: string | null; updated_by: string | null };

/** Forwarding (GET|PUT /monitoring/projects/:id/forwarding), shown when the engine serves it. */
function Forwarding({ project, epoch }: { project: string; epoch: number }) {
  const loaded = useApi((signal) => api<ForwardingView>(`/monitoring/projects/${encodeURIComponent(project)}/forwarding`, {}, { signal }), [project], [epoch]);
  const [text, setText] = useState('');
  const save = useAction();
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    if (loaded.data) setText(JSON.stringify({ sentry: loaded.data.sentry, datadog: loaded.data.datadog }, null, 2));
    setSaved(false);
  }, [loaded.data]);
  if (loaded.error instanceof ApiError && loaded.error.noRoute) return null;
  return (
    <form class="settings-form" onSubmit={(e) => {
      e.preventDefault();
      void save.run(async () => {
        let body: unknown;
        try { body = JSON.parse(text); } catch { throw new Error('the targets are not valid JSON'); }
        await api(`/monitoring/projects/${encodeURIComponent(project)}/forwarding`, {}, { method: 'PUT', body });
      }, () => { setSaved(true); loaded.reload(); });
    }}>
      <fieldset class="section">
        <legend>Forwarding</legend>
        <ErrorBox error={loaded.error} />
        {loaded.data && (
          <>
            <p class="muted small">Errors to Sentry (<code>sentry.dsn</code>), logs to Datadog (<code>datadog.api_key</code>, optional <code>url</code> and filter); null turns a target off. Secrets show masked: leave them as they are to keep them.
              {loaded.data.updated_at ? ` Last changed by ${loaded.data.updated_by ?? 'someone'}.` : ''}</p>
            <label>Targets (JSON)<textarea rows={8} value={text} onInput={(e) => setText(e.currentTarget.value)} /></label>
            {loaded.data.status !== undefined && <pre class="stack small">{JSON.stringify(loaded.data.status, null, 1)}</pre>}
          </>
        )}
      </fieldset>
      <ErrorBox error={save.error} what="Not saved" />
      {saved && <div class="notice" role="status">Forwarding saved.</div>}
      <div class="actions"><button type="submit" class="primary" disabled={save.busy || !loaded.data}>Save forwarding</button></div>
    </form>
  );
}

function Redaction({ value, onChange }: { value: { patterns: Pattern[]; secret_keys: string[] }; onChange(v: { patterns: Pattern[]; secret_keys: string[] }): void }) {
  const patterns = value.patterns ?? [];
  const setP = (i: number, p: Partial<Pattern>) => onChange({ ...value, patterns: patterns.map((x, j) => (j === i ? { ...x, ...p } : x)) });
  return (
    <>
      <p class="muted small">Built-in rules (tokens, keys, cards, e-mail addresses…) always apply; these add to them.</p>
      {patterns.map((p, i) => (
        <div class="row-fields">
          <label>Rule name {i + 1}<input value={p.name} pattern="[a-z0-9_]{1,40}" onInput={(e) => setP(i, { name: e.currentTarget.value })} /></label>
          <label>Regex {i + 1}<input value={p.regex} class="mono" onInput={(e) => setP(i, { regex: e.currentTarget.value })} /></label>
          <label>Flags {i + 1}<input value={p.flags ?? ''} size={4} onInput={(e) => setP(i, { flags: e.currentTarget.value || undefined })} /></label>
          <button type="button" aria-label={`Remove rule ${i + 1}`} onClick={() => onChange({ ...value, patterns: patterns.filter((_, j) => j !== i) })}>×</button>
        </div>
      ))}
      <button type="button" onClick={() => onChange({ ...value, patterns: [...patterns, { name: '', regex: '' }] })}>Add redaction rule</button>
      <label>Secret keys (attribute names whose values are always hidden, comma-separated)
        <input value={(value.secret_keys ?? []).join(', ')} onInput={(e) => onChange({ ...value, secret_keys: e.currentTarget.value.split(',').map((x) => x.trim()).filter(Boolean) })} />
      </label>
    </>
  );
}
