// Per-project ingest settings: extra redaction rules and the flood ceiling. Read on the hot path from
// memory; written through the control store and refreshed periodically so every node agrees.
import { Type, type Static } from '@sinclair/typebox';
import type { SqlDb } from '../storage/sql-db.js';
import { compileRedactor, Redactor, type RedactionRules } from './redact.js';
import type { ControlBus } from '../storage/control-bus.js';

export const ProjectSettingsSchema = Type.Object({
  flood_ceiling_per_minute: Type.Union([Type.Integer({ minimum: 1, maximum: 100_000_000 }), Type.Null()], {
    description: 'fully stored events per error group and minute; past it events are counted but only sampled ones kept in full (null = store everything)',
  }),
  flood_sample_every: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'past the ceiling, one event in this many is still stored in full' }),
  redaction: Type.Object({
    patterns: Type.Array(Type.Object({
      name: Type.String({ pattern: '^[a-z0-9_]{1,40}$' }),
      regex: Type.String({ minLength: 1, maxLength: 1000 }),
      flags: Type.Optional(Type.String({ pattern: '^[imsu]{0,4}$' })),
    }, { additionalProperties: false }), { maxItems: 50 }),
    secret_keys: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 100 }),
  }, { additionalProperties: false }),
  // absent = MONITORING_RETENTION_DAYS (no null: the body validator would coerce 0 into it)
  retention_days: Type.Optional(Type.Integer({
    minimum: 1, maximum: 36_500, description: 'days this project\'s events, rollups and alert history are kept (absent = MONITORING_RETENTION_DAYS)',
  })),
}, { additionalProperties: false });
export type ProjectSettings = Static<typeof ProjectSettingsSchema>;

export const DEFAULT_SETTINGS: ProjectSettings = {
  flood_ceiling_per_minute: null,
  flood_sample_every: 100,
  redaction: { patterns: [], secret_keys: [] },
};


/**
 * Rules saved before patterns ran on RE2 may hold one RE2 cannot compile (lookaround,
 * backreferences, the v flag): such a pattern is left out rather than keeping the engine from
 * starting or the project's other rules from applying (PUT refuses it now, naming it).
 */
function compileStored(rules: RedactionRules): Redactor {
  try {
    return compileRedactor(rules);
  } catch {
    const patterns = (rules.patterns ?? []).filter((p) => {
      try {
        compileRedactor({ patterns: [{ ...p, flags: p.flags?.replace('v', '') }] });
        return true;
      } catch {
        return false;
      }
    }).map((p) => ({ ...p, flags: p.flags?.replace('v', '') }));
    try {
      return compileRedactor({ ...rules, patterns });
    } catch {
      return compileRedactor({ patterns });
    }
  }
}

export class ProjectSettingsStore {
  private readonly settings = new Map<string, ProjectSettings>();
  private readonly redactors = new Map<string, Redactor>();
  /** The JSON last read per project, so a reload skips what did not change. */
  private readonly stored = new Map<string, string>();
  readonly defaultRedactor = compileRedactor();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly db: SqlDb) {}

  async init(refreshMs = 10_000): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => void this.reload().catch(() => undefined), refreshMs);
    this.timer.unref();
  }

  /** Settings written on any node apply here at once. */
  listen(bus: ControlBus): void {
    this.bus = bus;
    bus.on('settings', () => void this.reload().catch(() => undefined));
  }

  private bus: ControlBus | undefined;

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async reload(): Promise<void> {
    const rows = await this.db.all<{ project_id: string; settings: string }>('SELECT project_id, settings FROM project_settings');
    for (const r of rows) {
      if (this.stored.get(r.project_id) === r.settings) continue;
      this.stored.set(r.project_id, r.settings);
      this.apply(r.project_id, JSON.parse(r.settings) as ProjectSettings);
    }
  }

  private apply(project: string, s: ProjectSettings): void {
    this.settings.set(project, s);
    const rules: RedactionRules = { patterns: s.redaction.patterns, secretKeys: s.redaction.secret_keys };
    if (rules.patterns!.length || rules.secretKeys!.length) this.redactors.set(project, compileStored(rules));
    else this.redactors.delete(project);
  }

  get(project: string): ProjectSettings {
    return this.settings.get(project) ?? DEFAULT_SETTINGS;
  }

  /** Projects whose retention differs from the engine's default. */
  retentionOverrides(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [p, s] of this.settings) if (s.retention_days !== undefined) out.set(p, s.retention_days);
    return out;
  }

  redactorFor(project: string): Redactor {
    return this.redactors.get(project) ?? this.defaultRedactor;
  }

  /** Validates the redaction patterns (throws with the bad one named), then stores. */
  async put(project: string, s: ProjectSettings, by: string): Promise<ProjectSettings> {
    compileRedactor({ patterns: s.redaction.patterns, secretKeys: s.redaction.secret_keys });
    const json = JSON.stringify(s);
    await this.db.run(
      `INSERT INTO project_settings (project_id, settings, updated_at, updated_by) VALUES (?, ?, ?, ?)
       ON CONFLICT (project_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [project, json, Date.now(), by],
    );
    this.stored.set(project, json);
    this.apply(project, s);
    await this.bus?.publish('settings');
    return s;
  }
}
