// The alert side of the control store (the MetaStore for alerts): rules, channels, silences, alert
// groups, notifications (the history), the delivery outbox and in-app notifications. SQL that
// SQLite and PostgreSQL both run: `?` placeholders, BIGINT ms timestamps, TEXT JSON, ON CONFLICT.
// The tables are made by storage/control-migrations.ts.
import type { SqlDb, SqlValue } from '../storage/sql-db.js';
import type { ChannelType, Notification } from './channels/index.js';
import type { Rule, RuleSpec } from './rules.js';
import type { Silence, SilenceSpec } from './silences.js';


// ---- row shapes ---------------------------------------------------------------------------

export interface Channel {
  id: string;
  project_id: string | null;
  name: string;
  type: ChannelType;
  config: Record<string, unknown>;
  is_default: boolean;
  created_at: number;
  updated_at: number;
  created_by: string | null;
}

export type GroupState = 'firing' | 'resolved';

export interface AlertGroup {
  id: string;
  rule_id: string;
  project_id: string;
  labels: Record<string, string>;
  context: Record<string, string>;
  state: GroupState;
  episode_start: number;
  first_seen: number;
  last_seen: number;
  count: number;
  value: number | null;
  /** The last line of detail (last message, or the evaluator's verdict). */
  detail: string;
  seq: number;
  last_notified_at: number | null;
  last_silenced: number;
  episode_sent: number;
  resolved_at: number | null;
  updated_at: number;
}

export type NotificationState = 'firing' | 'resolved' | 'silenced';
export type NotificationKind = 'firing' | 'repeat' | 'resolved';

export interface NotificationRecord {
  id: string;
  group_id: string;
  rule_id: string;
  rule_name: string;
  project_id: string;
  state: NotificationState;
  kind: NotificationKind;
  silence_id: string | null;
  count: number;
  payload: Notification;
  created_at: number;
}

/** A lease as its holder took it: writes made under it carry the token (see holdsFence). */
export interface Fence {
  name: string;
  holder: string;
  token: number;
}

export type DeliveryStatus = 'pending' | 'sending' | 'delivered' | 'failed';

export interface Delivery {
  id: string;
  notification_id: string;
  channel_id: string;
  channel_name: string;
  /** A channel type, or `forward_<target>` for forwarding (src/forwarding). */
  channel_type: ChannelType | `forward_${string}`;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  lease_until: number | null;
  last_status: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
}

export interface UiNotification {
  id: string;
  notification_id: string;
  channel_id: string;
  project_id: string;
  payload: Notification;
  created_at: number;
  read_at: number | null;
}

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
export const placeholders = (n: number): string => new Array(n).fill('?').join(', ');

/** `project_id IN (…)` for a project list; undefined = every project (admin). */
function projectScope(projects: readonly string[] | undefined, column = 'project_id'): { sql: string; params: SqlValue[] } {
  if (projects === undefined) return { sql: '1 = 1', params: [] };
  if (projects.length === 0) return { sql: '1 = 0', params: [] };
  return { sql: `${column} IN (${placeholders(projects.length)})`, params: [...projects] };
}

/** An outbox row taken for one attempt; parameters: lease until, owner, now. */
const TAKE_LEASE = "UPDATE alert_deliveries SET status = 'sending', lease_until = ?, lease_owner = ?, updated_at = ?";
/** Leased outbox rows back to pending (the caller narrows which). */
const GIVE_BACK_LEASE = "UPDATE alert_deliveries SET status = 'pending', lease_until = NULL, lease_owner = NULL WHERE status = 'sending'";

export class AlertStore {
  constructor(readonly db: SqlDb) {}

  // ---- routed engine alerts ---------------------------------------------------------------

  async routedAlert(project: string, eventId: string): Promise<{ notified: boolean; channels: string[] } | undefined> {
    const rows = await this.db.all<{ notified: number; channels: string }>(
      'SELECT notified, channels FROM alert_routes WHERE project_id = ? AND event_id = ?', [project, eventId],
    );
    return rows[0] ? { notified: num(rows[0].notified) === 1, channels: JSON.parse(rows[0].channels) as string[] } : undefined;
  }

  async recordRoutedAlert(project: string, eventId: string, r: { notified: boolean; channels: string[] }, now: number): Promise<void> {
    await this.db.run(
      `INSERT INTO alert_routes (project_id, event_id, notified, channels, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (project_id, event_id) DO NOTHING`,
      [project, eventId, r.notified ? 1 : 0, JSON.stringify(r.channels), now],
    );
  }

  /** Routed alerts are remembered for a week: longer than any client retries one. */
  async pruneRoutedAlerts(before: number): Promise<void> {
    await this.db.run('DELETE FROM alert_routes WHERE created_at < ?', [before]);
  }

  // ---- channels ---------------------------------------------------------------------------

  private channel(r: Record<string, unknown>): Channel {
    return {
      id: String(r.id), project_id: (r.project_id as string | null) ?? null, name: String(r.name), type: r.type as ChannelType,
      config: JSON.parse(String(r.config)) as Record<string, unknown>, is_default: num(r.is_default) === 1,
      created_at: num(r.created_at), updated_at: num(r.updated_at), created_by: (r.created_by as string | null) ?? null,
    };
  }

  async insertChannel(c: Channel): Promise<void> {
    await this.db.run(
      `INSERT INTO alert_channels (id, project_id, name, type, config, is_default, created_at, updated_at, created_by)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [c.id, c.project_id, c.name, c.type, JSON.stringify(c.config), c.is_default ? 1 : 0, c.created_at, c.updated_at, c.created_by],
    );
  }

  async updateChannel(c: Channel): Promise<void> {
    await this.db.run(
      'UPDATE alert_channels SET name = ?, type = ?, config = ?, is_default = ?, updated_at = ? WHERE id = ?',
      [c.name, c.type, JSON.stringify(c.config), c.is_default ? 1 : 0, c.updated_at, c.id],
    );
  }

  async deleteChannel(id: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM alert_channels WHERE id = ?', [id])).changes > 0;
  }

  async getChannel(id: string): Promise<Channel | undefined> {
    const rows = await this.db.all<Record<string, unknown>>('SELECT * FROM alert_channels WHERE id = ?', [id]);
    return rows[0] ? this.channel(rows[0]) : undefined;
  }

  async getChannels(ids: readonly string[]): Promise<Channel[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.all<Record<string, unknown>>(`SELECT * FROM alert_channels WHERE id IN (${placeholders(ids.length)})`, [...ids]);
    const byId = new Map(rows.map((r) => [String(r.id), this.channel(r)]));
    return ids.map((id) => byId.get(id)).filter((c): c is Channel => c !== undefined);
  }

  /** Channels visible to a caller: its projects' (and, for '*' callers, the global ones). */
  async listChannels(projects: readonly string[] | undefined, includeGlobal: boolean): Promise<Channel[]> {
    const scope = projectScope(projects);
    const rows = await this.db.all<Record<string, unknown>>(
      `SELECT * FROM alert_channels WHERE ${scope.sql}${includeGlobal ? '' : ' AND project_id IS NOT NULL'} ORDER BY created_at, id`,
      scope.params,
    );
    return rows.map((r) => this.channel(r));
  }

  /** Default channels for engine-raised alerts of a project: the project's own and the global ones. */
  async defaultChannels(project: string): Promise<Channel[]> {
    const rows = await this.db.all<Record<string, unknown>>(
      'SELECT * FROM alert_channels WHERE is_default = 1 AND (project_id = ? OR project_id IS NULL) ORDER BY created_at, id',
      [project],
    );
    return rows.map((r) => this.channel(r));
  }

  // ---- rules ------------------------------------------------------------------------------

  private rule(r: Record<string, unknown>): Rule {
    const spec = JSON.parse(String(r.spec)) as RuleSpec;
    return {
      ...spec, query: spec.query ?? null, id: String(r.id), project_id: (r.project_id as string | null) ?? null, enabled: num(r.enabled) === 1,
      created_at: num(r.created_at), updated_at: num(r.updated_at), created_by: (r.created_by as string | null) ?? null,
    };
  }

  async insertRule(r: Rule): Promise<void> {
    await this.db.run(
      `INSERT INTO alert_rules (id, project_id, name, kind, enabled, spec, created_at, updated_at, created_by)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [r.id, r.project_id, r.name, r.kind, r.enabled ? 1 : 0, JSON.stringify(specOf(r)), r.created_at, r.updated_at, r.created_by],
    );
  }

  async updateRule(r: Rule): Promise<void> {
    await this.db.run(
      'UPDATE alert_rules SET project_id = ?, name = ?, kind = ?, enabled = ?, spec = ?, updated_at = ? WHERE id = ?',
      [r.project_id, r.name, r.kind, r.enabled ? 1 : 0, JSON.stringify(specOf(r)), r.updated_at, r.id],
    );
  }

  async deleteRule(id: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM alert_rules WHERE id = ?', [id])).changes > 0;
  }

  async getRule(id: string): Promise<Rule | undefined> {
    const rows = await this.db.all<Record<string, unknown>>('SELECT * FROM alert_rules WHERE id = ?', [id]);
    return rows[0] ? this.rule(rows[0]) : undefined;
  }

  async listRules(projects?: readonly string[], includeGlobal = true): Promise<Rule[]> {
    const scope = projectScope(projects);
    const rows = await this.db.all<Record<string, unknown>>(
      `SELECT * FROM alert_rules WHERE ${scope.sql}${includeGlobal ? '' : ' AND project_id IS NOT NULL'} ORDER BY created_at, id`,
      scope.params,
    );
    return rows.map((r) => this.rule(r));
  }

  /** Rules that name a channel (to refuse deleting a channel in use). */
  async rulesUsingChannel(channelId: string): Promise<Rule[]> {
    const rows = await this.db.all<Record<string, unknown>>('SELECT * FROM alert_rules WHERE spec LIKE ?', [`%${channelId}%`]);
    return rows.map((r) => this.rule(r)).filter((r) => r.channels.includes(channelId));
  }

  // ---- silences ---------------------------------------------------------------------------

  private silence(r: Record<string, unknown>): Silence {
    return {
      id: String(r.id), project_id: (r.project_id as string | null) ?? null, matchers: JSON.parse(String(r.matchers)),
      starts_at: num(r.starts_at), ends_at: num(r.ends_at), comment: String(r.comment ?? ''),
      created_by: (r.created_by as string | null) ?? null, created_at: num(r.created_at), updated_at: num(r.updated_at),
    };
  }

  async insertSilence(id: string, s: SilenceSpec, by: string, now: number): Promise<void> {
    await this.db.run(
      `INSERT INTO alert_silences (id, project_id, matchers, starts_at, ends_at, comment, created_by, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [id, s.project_id, JSON.stringify(s.matchers), s.starts_at, s.ends_at, s.comment, by, now, now],
    );
  }

  async expireSilence(id: string, now: number): Promise<void> {
    await this.db.run('UPDATE alert_silences SET ends_at = ?, updated_at = ? WHERE id = ? AND ends_at > ?', [now, now, id, now]);
  }

  async getSilence(id: string): Promise<Silence | undefined> {
    const rows = await this.db.all<Record<string, unknown>>('SELECT * FROM alert_silences WHERE id = ?', [id]);
    return rows[0] ? this.silence(rows[0]) : undefined;
  }

  async listSilences(projects: readonly string[] | undefined, includeGlobal: boolean, activeAt?: number): Promise<Silence[]> {
    const scope = projectScope(projects);
    const params = [...scope.params];
    let sql = `SELECT * FROM alert_silences WHERE ${scope.sql}${includeGlobal ? '' : ' AND project_id IS NOT NULL'}`;
    if (activeAt !== undefined) {
      sql += ' AND starts_at <= ? AND ends_at > ?';
      params.push(activeAt, activeAt);
    }
    const rows = await this.db.all<Record<string, unknown>>(`${sql} ORDER BY created_at DESC, id`, params);
    return rows.map((r) => this.silence(r));
  }

  /** Silences active now that could apply to a project. */
  async activeSilences(project: string, now: number): Promise<Silence[]> {
    const rows = await this.db.all<Record<string, unknown>>(
      'SELECT * FROM alert_silences WHERE starts_at <= ? AND ends_at > ? AND (project_id = ? OR project_id IS NULL)',
      [now, now, project],
    );
    return rows.map((r) => this.silence(r));
  }

  // ---- groups -----------------------------------------------------------------------------

  private group(r: Record<string, unknown>): AlertGroup {
    return {
      id: String(r.id), rule_id: String(r.rule_id), project_id: String(r.project_id),
      labels: JSON.parse(String(r.labels)), context: JSON.parse(String(r.context)), state: r.state as GroupState,
      episode_start: num(r.episode_start), first_seen: num(r.first_seen), last_seen: num(r.last_seen), count: num(r.count),
      value: numOrNull(r.value), detail: String(r.detail ?? ''), seq: num(r.seq), last_notified_at: numOrNull(r.last_notified_at),
      last_silenced: num(r.last_silenced), episode_sent: num(r.episode_sent), resolved_at: numOrNull(r.resolved_at), updated_at: num(r.updated_at),
    };
  }

  async getGroup(id: string, db: SqlDb = this.db): Promise<AlertGroup | undefined> {
    const rows = await db.all<Record<string, unknown>>('SELECT * FROM alert_groups WHERE id = ?', [id]);
    return rows[0] ? this.group(rows[0]) : undefined;
  }

  async firingGroups(ruleId?: string): Promise<AlertGroup[]> {
    const rows = ruleId
      ? await this.db.all<Record<string, unknown>>("SELECT * FROM alert_groups WHERE rule_id = ? AND state = 'firing'", [ruleId])
      : await this.db.all<Record<string, unknown>>("SELECT * FROM alert_groups WHERE state = 'firing'");
    return rows.map((r) => this.group(r));
  }

  async listGroups(projects: readonly string[] | undefined, state?: GroupState, ruleId?: string, limit = 500): Promise<AlertGroup[]> {
    const scope = projectScope(projects);
    const params: SqlValue[] = [...scope.params];
    let sql = `SELECT * FROM alert_groups WHERE ${scope.sql}`;
    if (state) {
      sql += ' AND state = ?';
      params.push(state);
    }
    if (ruleId) {
      sql += ' AND rule_id = ?';
      params.push(ruleId);
    }
    const rows = await this.db.all<Record<string, unknown>>(`${sql} ORDER BY updated_at DESC, id LIMIT ${Math.trunc(limit)}`, params);
    return rows.map((r) => this.group(r));
  }

  /**
   * A new group, or a new firing episode of a resolved one. False when another writer (another
   * engine node) opened it first: the group is already firing.
   */
  async openGroup(db: SqlDb, g: AlertGroup): Promise<boolean> {
    const res = await db.run(
      `INSERT INTO alert_groups (id, rule_id, project_id, labels, context, state, episode_start, first_seen, last_seen, count, value,
         detail, seq, last_notified_at, last_silenced, episode_sent, resolved_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET context = excluded.context, state = excluded.state, episode_start = excluded.episode_start,
         first_seen = excluded.first_seen, last_seen = excluded.last_seen, count = excluded.count, value = excluded.value,
         detail = excluded.detail, seq = excluded.seq, last_notified_at = excluded.last_notified_at,
         last_silenced = excluded.last_silenced, episode_sent = excluded.episode_sent, resolved_at = excluded.resolved_at,
         updated_at = excluded.updated_at
       WHERE alert_groups.state = 'resolved'`,
      [g.id, g.rule_id, g.project_id, JSON.stringify(g.labels), JSON.stringify(g.context), g.state, g.episode_start, g.first_seen,
        g.last_seen, g.count, g.value, g.detail.slice(0, 2000), g.seq, g.last_notified_at, g.last_silenced, g.episode_sent, g.resolved_at, g.updated_at],
    );
    return res.changes === 1;
  }

  /**
   * Writes a group's new state if nobody changed it since it was read (its seq is still `seq`):
   * optimistic concurrency, so two nodes never both notify one state change.
   */
  async saveGroupIfSeq(g: AlertGroup, seq: number, db: SqlDb = this.db): Promise<boolean> {
    const res = await db.run(
      `UPDATE alert_groups SET context = ?, state = ?, episode_start = ?, first_seen = ?, last_seen = ?, count = ?, value = ?, detail = ?,
         seq = ?, last_notified_at = ?, last_silenced = ?, episode_sent = ?, resolved_at = ?, updated_at = ?
       WHERE id = ? AND seq = ?`,
      [JSON.stringify(g.context), g.state, g.episode_start, g.first_seen, g.last_seen, g.count, g.value, g.detail.slice(0, 2000),
        g.seq, g.last_notified_at, g.last_silenced, g.episode_sent, g.resolved_at, g.updated_at, g.id, seq],
    );
    return res.changes === 1;
  }

  /** Counts and detail of a firing group, without a state change. */
  async updateGroupStats(g: AlertGroup): Promise<void> {
    await this.db.run(
      "UPDATE alert_groups SET count = ?, value = ?, last_seen = ?, detail = ?, updated_at = ? WHERE id = ? AND state = 'firing'",
      [g.count, g.value, g.last_seen, g.detail.slice(0, 2000), g.updated_at, g.id],
    );
  }

  /** An in-app notification that is not an alert (a channel test). */
  async insertUi(u: UiNotification): Promise<void> {
    await this.db.run(
      `INSERT INTO alert_ui_notifications (id, notification_id, channel_id, project_id, payload, created_at, read_at)
       VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (id) DO NOTHING`,
      [u.id, u.notification_id, u.channel_id, u.project_id, JSON.stringify(u.payload), u.created_at],
    );
  }

  async deleteGroupsOfRule(ruleId: string): Promise<void> {
    await this.db.run('DELETE FROM alert_groups WHERE rule_id = ?', [ruleId]);
  }

  // ---- notifications + outbox -------------------------------------------------------------

  /**
   * Writes a notification with its deliveries (the outbox) in the caller's transaction. Returns false
   * when a notification with this id exists already (recorded by another node or before a crash).
   */
  async insertNotification(db: SqlDb, n: NotificationRecord, deliveries: Delivery[], ui: UiNotification[]): Promise<boolean> {
    const res = await db.run(
      `INSERT INTO alert_notifications (id, group_id, rule_id, rule_name, project_id, state, kind, silence_id, count, payload, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      [n.id, n.group_id, n.rule_id, n.rule_name, n.project_id, n.state, n.kind, n.silence_id, n.count, JSON.stringify(n.payload), n.created_at],
    );
    if (res.changes === 0) return false;
    for (const d of deliveries) await this.insertDelivery(db, d);
    for (const u of ui) {
      await db.run(
        `INSERT INTO alert_ui_notifications (id, notification_id, channel_id, project_id, payload, created_at, read_at)
         VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (id) DO NOTHING`,
        [u.id, u.notification_id, u.channel_id, u.project_id, JSON.stringify(u.payload), u.created_at],
      );
    }
    return true;
  }

  /**
   * One outbox row, in the caller's transaction. Besides alert notifications, forwarding queues its
   * payloads here (channel_type `forward_*`, notification_id = the payload's id).
   */
  async insertDelivery(db: SqlDb, d: Delivery): Promise<void> {
    await db.run(
      `INSERT INTO alert_deliveries (id, notification_id, channel_id, channel_name, channel_type, status, attempts, next_attempt_at,
         lease_until, last_status, last_error, created_at, updated_at, delivered_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      [d.id, d.notification_id, d.channel_id, d.channel_name, d.channel_type, d.status, d.attempts, d.next_attempt_at,
        d.lease_until, d.last_status, d.last_error, d.created_at, d.updated_at, d.delivered_at],
    );
  }

  private notification(r: Record<string, unknown>): NotificationRecord {
    return {
      id: String(r.id), group_id: String(r.group_id), rule_id: String(r.rule_id), rule_name: String(r.rule_name),
      project_id: String(r.project_id), state: r.state as NotificationState, kind: r.kind as NotificationKind,
      silence_id: (r.silence_id as string | null) ?? null, count: num(r.count), payload: JSON.parse(String(r.payload)) as Notification,
      created_at: num(r.created_at),
    };
  }

  async getNotification(id: string): Promise<NotificationRecord | undefined> {
    const rows = await this.db.all<Record<string, unknown>>('SELECT * FROM alert_notifications WHERE id = ?', [id]);
    return rows[0] ? this.notification(rows[0]) : undefined;
  }

  async listNotifications(q: {
    projects: readonly string[] | undefined; ruleId?: string; groupId?: string; state?: NotificationState;
    from?: number; to?: number; before?: { t: number; id: string }; limit: number;
  }): Promise<NotificationRecord[]> {
    const scope = projectScope(q.projects);
    const params: SqlValue[] = [...scope.params];
    let sql = `SELECT * FROM alert_notifications WHERE ${scope.sql}`;
    const add = (cond: string, ...v: SqlValue[]) => {
      sql += ` AND ${cond}`;
      params.push(...v);
    };
    if (q.ruleId) add('rule_id = ?', q.ruleId);
    if (q.groupId) add('group_id = ?', q.groupId);
    if (q.state) add('state = ?', q.state);
    if (q.from !== undefined) add('created_at >= ?', q.from);
    if (q.to !== undefined) add('created_at < ?', q.to);
    if (q.before) add('(created_at < ? OR (created_at = ? AND id < ?))', q.before.t, q.before.t, q.before.id);
    const rows = await this.db.all<Record<string, unknown>>(`${sql} ORDER BY created_at DESC, id DESC LIMIT ${Math.trunc(q.limit)}`, params);
    return rows.map((r) => this.notification(r));
  }

  private delivery(r: Record<string, unknown>): Delivery {
    return {
      id: String(r.id), notification_id: String(r.notification_id), channel_id: String(r.channel_id), channel_name: String(r.channel_name),
      channel_type: r.channel_type as Delivery['channel_type'], status: r.status as DeliveryStatus, attempts: num(r.attempts),
      next_attempt_at: num(r.next_attempt_at), lease_until: numOrNull(r.lease_until), last_status: numOrNull(r.last_status),
      last_error: (r.last_error as string | null) ?? null, created_at: num(r.created_at), updated_at: num(r.updated_at),
      delivered_at: numOrNull(r.delivered_at),
    };
  }

  async deliveriesOf(notificationIds: readonly string[]): Promise<Delivery[]> {
    if (notificationIds.length === 0) return [];
    const rows = await this.db.all<Record<string, unknown>>(
      `SELECT * FROM alert_deliveries WHERE notification_id IN (${placeholders(notificationIds.length)}) ORDER BY created_at, id`,
      [...notificationIds],
    );
    return rows.map((r) => this.delivery(r));
  }

  async getDelivery(id: string): Promise<Delivery | undefined> {
    const rows = await this.db.all<Record<string, unknown>>('SELECT * FROM alert_deliveries WHERE id = ?', [id]);
    return rows[0] ? this.delivery(rows[0]) : undefined;
  }

  /**
   * Takes up to `limit` due deliveries for one attempt each (a lease until now + leaseMs, held by
   * `owner`) and returns their ids, oldest first. On PostgreSQL several nodes claim at once: FOR
   * UPDATE SKIP LOCKED hands each row to one of them, and nobody waits for another's rows.
   */
  async claimDue(now: number, limit: number, leaseMs: number, owner: string): Promise<string[]> {
    const lock = this.db.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
    // the picked rows in a materialized CTE: as a plain IN (subquery) PostgreSQL may run the
    // subquery again while updating, and one claim took 20 rows with a limit of 10
    const rows = await this.db.all<{ id: string; next_attempt_at: number }>(
      `WITH picked AS MATERIALIZED (
         SELECT id FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= ?
         ORDER BY next_attempt_at, id LIMIT ${Math.trunc(limit)}${lock})
       ${TAKE_LEASE}
       WHERE id IN (SELECT id FROM picked) AND status = 'pending'
       RETURNING id, next_attempt_at`,
      [now, now + leaseMs, owner, now],
    );
    return rows.sort((a, b) => Number(a.next_attempt_at) - Number(b.next_attempt_at) || (a.id < b.id ? -1 : 1)).map((r) => r.id);
  }

  /**
   * Takes these deliveries for one attempt each, as claimDue does, if they are still pending;
   * returns the ones taken (another node, or this node's loop, may hold the others).
   */
  async claimIds(ids: readonly string[], now: number, leaseMs: number, owner: string): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.all<{ id: string }>(
      `${TAKE_LEASE}
       WHERE id IN (${ids.map(() => '?').join(', ')}) AND status = 'pending'
       RETURNING id`,
      [now + leaseMs, owner, now, ...ids],
    );
    return rows.map((r) => r.id);
  }

  async nextDueAt(): Promise<number | null> {
    const rows = await this.db.all<{ t: unknown }>("SELECT MIN(next_attempt_at) AS t FROM alert_deliveries WHERE status = 'pending'");
    return numOrNull(rows[0]?.t);
  }

  /** Deliveries whose worker died mid-attempt go back to pending. */
  async releaseExpiredLeases(now: number): Promise<number> {
    return (await this.db.run(`${GIVE_BACK_LEASE} AND lease_until < ?`, [now])).changes;
  }

  /** At start of the embedded (single-process) store: nothing can still be sending. */
  async releaseAllLeases(): Promise<number> {
    return (await this.db.run(GIVE_BACK_LEASE)).changes;
  }

  /**
   * The leases `owner` holds go back to pending, but for the deliveries it is still sending: at
   * start (its previous run died holding them) and at a stop (claimed, never attempted).
   */
  async releaseLeasesOf(owner: string, except: readonly string[] = []): Promise<number> {
    const keep = except.length ? ` AND id NOT IN (${except.map(() => '?').join(', ')})` : '';
    return (await this.db.run(
      `${GIVE_BACK_LEASE} AND lease_owner = ?${keep}`,
      [owner, ...except],
    )).changes;
  }

  async recordAttempt(id: string, r: { status: DeliveryStatus; attempts: number; next_attempt_at: number; last_status: number | null; last_error: string | null; now: number }): Promise<void> {
    await this.db.run(
      `UPDATE alert_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, lease_until = NULL, lease_owner = NULL, last_status = ?, last_error = ?,
         updated_at = ?, delivered_at = ? WHERE id = ?`,
      [r.status, r.attempts, r.next_attempt_at, r.last_status, r.last_error, r.now, r.status === 'delivered' ? r.now : null, id],
    );
  }

  // ---- in-app notifications ---------------------------------------------------------------

  private ui(r: Record<string, unknown>): UiNotification {
    return {
      id: String(r.id), notification_id: String(r.notification_id), channel_id: String(r.channel_id), project_id: String(r.project_id),
      payload: JSON.parse(String(r.payload)) as Notification, created_at: num(r.created_at), read_at: numOrNull(r.read_at),
    };
  }

  async listUi(projects: readonly string[] | undefined, unread: boolean, limit: number): Promise<UiNotification[]> {
    const scope = projectScope(projects);
    const rows = await this.db.all<Record<string, unknown>>(
      `SELECT * FROM alert_ui_notifications WHERE ${scope.sql}${unread ? ' AND read_at IS NULL' : ''} ORDER BY created_at DESC, id DESC LIMIT ${Math.trunc(limit)}`,
      scope.params,
    );
    return rows.map((r) => this.ui(r));
  }

  async countUnread(projects: readonly string[] | undefined): Promise<number> {
    const scope = projectScope(projects);
    const rows = await this.db.all<{ n: unknown }>(`SELECT COUNT(*) AS n FROM alert_ui_notifications WHERE ${scope.sql} AND read_at IS NULL`, scope.params);
    return num(rows[0]?.n ?? 0);
  }

  async getUi(id: string): Promise<UiNotification | undefined> {
    const rows = await this.db.all<Record<string, unknown>>('SELECT * FROM alert_ui_notifications WHERE id = ?', [id]);
    return rows[0] ? this.ui(rows[0]) : undefined;
  }

  async markUiRead(id: string, now: number): Promise<void> {
    await this.db.run('UPDATE alert_ui_notifications SET read_at = ? WHERE id = ? AND read_at IS NULL', [now, id]);
  }

  /** Marks every unread in-app notification of these projects read; returns how many. */
  async markAllUiRead(projects: readonly string[] | undefined, now: number): Promise<number> {
    const scope = projectScope(projects);
    const res = await this.db.run(`UPDATE alert_ui_notifications SET read_at = ? WHERE ${scope.sql} AND read_at IS NULL`, [now, ...scope.params]);
    return res.changes;
  }

  // ---- leases (periodic evaluation runs on one node) ----------------------------------------

  /** Takes or renews a named lease; true when this holder has it until now + ttlMs. */
  async acquireLease(name: string, holder: string, now: number, ttlMs: number): Promise<boolean> {
    return (await this.acquireFencedLease(name, holder, now, ttlMs)) !== null;
  }

  /**
   * Takes or renews a named lease. The fencing token grows each time the lease changes hands, so a
   * holder that lost it (paused past its lease, say) is refused by holdsFence() when it writes.
   */
  async acquireFencedLease(name: string, holder: string, now: number, ttlMs: number): Promise<Fence | null> {
    await this.db.run(
      `INSERT INTO alert_leases (name, holder, until_ms, token) VALUES (?, ?, ?, 1)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms,
         token = CASE WHEN alert_leases.holder = excluded.holder THEN alert_leases.token ELSE alert_leases.token + 1 END
       WHERE alert_leases.holder = excluded.holder OR alert_leases.until_ms < ?`,
      [name, holder, now + ttlMs, now],
    );
    const rows = await this.db.all<{ holder: string; token: number }>('SELECT holder, token FROM alert_leases WHERE name = ?', [name]);
    return rows[0]?.holder === holder ? { name, holder, token: Number(rows[0].token) } : null;
  }

  /**
   * Inside a transaction: true when the fence's holder still has the lease with the same token. On
   * PostgreSQL the row stays locked until the transaction ends, so the lease cannot change hands
   * between this check and the commit.
   */
  async holdsFence(db: SqlDb, f: Fence): Promise<boolean> {
    const res = await db.run('UPDATE alert_leases SET token = token WHERE name = ? AND holder = ? AND token = ?', [f.name, f.holder, f.token]);
    return res.changes === 1;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.db.run('DELETE FROM alert_leases WHERE name = ? AND holder = ?', [name, holder]);
  }
}

function specOf(r: Rule): RuleSpec {
  return {
    name: r.name, project_id: r.project_id, kind: r.kind, filter: r.filter, query: r.query ?? null, threshold: r.threshold, window_s: r.window_s,
    min_count: r.min_count, baseline_window_s: r.baseline_window_s, group_by: r.group_by, channels: r.channels, severity: r.severity,
    repeat_interval_s: r.repeat_interval_s, send_resolved: r.send_resolved, enabled: r.enabled, user_message: r.user_message,
  };
}
