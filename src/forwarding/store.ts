// Forwarding's control-store tables: each project's targets, and the payloads waiting in the outbox
// (alert_deliveries rows with channel_type forward_<target> point at them). SQL that SQLite and
// PostgreSQL both run; the tables are made by storage/control-migrations.ts.
import type { SqlDb } from '../storage/sql-db.js';
import type { ForwardingConfig } from './config.js';

export type ForwardTarget = 'sentry' | 'datadog';
export const channelTypeOf = (t: ForwardTarget): `forward_${ForwardTarget}` => `forward_${t}`;

export interface StoredForwarding {
  project_id: string;
  config: ForwardingConfig;
  updated_at: number;
  updated_by: string | null;
}

export interface Payload {
  id: string;
  project_id: string;
  target: ForwardTarget;
  body: string;
  events: number;
  created_at: number;
}

export interface TargetStatus {
  pending: number;
  delivered: number;
  failed: number;
  /** Events in the payloads of each state (Datadog payloads carry many). */
  events_pending: number;
  events_delivered: number;
  events_failed: number;
  last_error: string | null;
}

export class ForwardingStore {
  constructor(readonly db: SqlDb) {}

  async all(): Promise<StoredForwarding[]> {
    const rows = await this.db.all<Record<string, unknown>>('SELECT * FROM forwarding_configs');
    return rows.map((r) => ({
      project_id: String(r.project_id), config: JSON.parse(String(r.config)) as ForwardingConfig,
      updated_at: Number(r.updated_at), updated_by: (r.updated_by as string | null) ?? null,
    }));
  }

  async get(project: string): Promise<StoredForwarding | undefined> {
    const rows = await this.db.all<Record<string, unknown>>('SELECT * FROM forwarding_configs WHERE project_id = ?', [project]);
    const r = rows[0];
    return r && { project_id: String(r.project_id), config: JSON.parse(String(r.config)), updated_at: Number(r.updated_at), updated_by: (r.updated_by as string | null) ?? null };
  }

  async put(project: string, config: ForwardingConfig, by: string, now: number): Promise<void> {
    await this.db.run(
      `INSERT INTO forwarding_configs (project_id, config, updated_at, updated_by) VALUES (?, ?, ?, ?)
       ON CONFLICT (project_id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [project, JSON.stringify(config), now, by],
    );
  }

  async remove(project: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM forwarding_configs WHERE project_id = ?', [project])).changes > 0;
  }

  /** Stores a payload unless one with its id is there already (a replay); says whether it did. */
  async insertPayload(db: SqlDb, p: Payload): Promise<boolean> {
    const r = await db.run(
      'INSERT INTO forwarding_payloads (id, project_id, target, body, events, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
      [p.id, p.project_id, p.target, p.body, p.events, p.created_at],
    );
    return r.changes > 0;
  }

  /** Our ids of the events in a project's Datadog payloads created at or after `since` (ms). */
  async datadogEventIds(project: string, since: number): Promise<Set<string>> {
    const rows = await this.db.all<Record<string, unknown>>(
      "SELECT body FROM forwarding_payloads WHERE project_id = ? AND target = 'datadog' AND created_at >= ?", [project, since]);
    const ids = new Set<string>();
    for (const r of rows) {
      try {
        for (const e of JSON.parse(String(r.body)) as { puraify?: { id?: unknown } }[]) if (typeof e.puraify?.id === 'string') ids.add(e.puraify.id);
      } catch {
        // a body we did not write: nothing to skip
      }
    }
    return ids;
  }

  async getPayload(id: string): Promise<Payload | undefined> {
    const rows = await this.db.all<Record<string, unknown>>('SELECT * FROM forwarding_payloads WHERE id = ?', [id]);
    const r = rows[0];
    return r && {
      id: String(r.id), project_id: String(r.project_id), target: r.target as ForwardTarget, body: String(r.body),
      events: Number(r.events), created_at: Number(r.created_at),
    };
  }

  /** Per target: outbox rows and events by state, and the last error, for the API. */
  async status(project: string): Promise<Record<ForwardTarget, TargetStatus>> {
    const empty = (): TargetStatus => ({ pending: 0, delivered: 0, failed: 0, events_pending: 0, events_delivered: 0, events_failed: 0, last_error: null });
    const out: Record<ForwardTarget, TargetStatus> = { sentry: empty(), datadog: empty() };
    const rows = await this.db.all<{ target: string; status: string; n: unknown; events: unknown }>(
      `SELECT p.target AS target, d.status AS status, COUNT(*) AS n, SUM(p.events) AS events
       FROM forwarding_payloads p JOIN alert_deliveries d ON d.notification_id = p.id
       WHERE p.project_id = ? GROUP BY p.target, d.status`,
      [project],
    );
    for (const r of rows) {
      const s = out[r.target as ForwardTarget];
      if (!s) continue;
      const state = r.status === 'sending' ? 'pending' : (r.status as 'pending' | 'delivered' | 'failed');
      s[state] += Number(r.n);
      s[`events_${state}`] += Number(r.events);
    }
    const errs = await this.db.all<{ target: string; last_error: string }>(
      `SELECT p.target AS target, d.last_error AS last_error FROM forwarding_payloads p JOIN alert_deliveries d ON d.notification_id = p.id
       WHERE p.project_id = ? AND d.last_error IS NOT NULL ORDER BY d.updated_at DESC LIMIT 100`,
      [project],
    );
    for (const e of errs) if (out[e.target as ForwardTarget] && out[e.target as ForwardTarget].last_error === null) out[e.target as ForwardTarget].last_error = e.last_error;
    return out;
  }

  /** Delivered payloads older than `before` are not needed again: their outbox rows go with them. */
  async purgeDelivered(before: number): Promise<number> {
    const sub = "SELECT notification_id FROM alert_deliveries WHERE channel_type IN ('forward_sentry', 'forward_datadog') AND status = 'delivered' AND delivered_at < ?";
    const n = (await this.db.run(`DELETE FROM forwarding_payloads WHERE id IN (${sub})`, [before])).changes;
    await this.db.run("DELETE FROM alert_deliveries WHERE channel_type IN ('forward_sentry', 'forward_datadog') AND status = 'delivered' AND delivered_at < ?", [before]);
    return n;
  }
}
