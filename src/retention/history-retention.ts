// Retention on the control store: alert history (notifications with their finished deliveries),
// in-app notifications and alert groups resolved long ago, per project like the events. A
// notification with a delivery still pending or sending stays: the outbox is not history yet.
import type { SqlDb, SqlValue } from '../storage/sql-db.js';
import { cutoff, type RetentionPolicy } from './policy.js';

export interface HistoryReport {
  notifications: number;
  deliveries: number;
  ui_notifications: number;
  alert_groups: number;
}

/** One scope per override, and one for every other project (the default retention). */
function scopes(policy: RetentionPolicy, now: number): { sql: string; params: SqlValue[]; before: number }[] {
  const out = [...policy.overrides.keys()].map((p) => ({ sql: 'project_id = ?', params: [p] as SqlValue[], before: cutoff(policy, p, now) }));
  const others = [...policy.overrides.keys()];
  out.push({
    sql: others.length ? `project_id NOT IN (${others.map(() => '?').join(', ')})` : '1 = 1',
    params: others,
    // a project with no override has the default retention
    before: cutoff({ defaultDays: policy.defaultDays, overrides: new Map() }, '', now),
  });
  return out;
}

export async function pruneAlertHistory(db: SqlDb, policy: RetentionPolicy, now: number): Promise<HistoryReport> {
  const r: HistoryReport = { notifications: 0, deliveries: 0, ui_notifications: 0, alert_groups: 0 };
  for (const s of scopes(policy, now)) {
    r.deliveries += (await db.run(
      `DELETE FROM alert_deliveries WHERE status IN ('delivered', 'failed')
         AND notification_id IN (SELECT id FROM alert_notifications WHERE ${s.sql} AND created_at < ?)`,
      [...s.params, s.before],
    )).changes;
    r.notifications += (await db.run(
      `DELETE FROM alert_notifications WHERE ${s.sql} AND created_at < ?
         AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.notification_id = alert_notifications.id)`,
      [...s.params, s.before],
    )).changes;
    r.ui_notifications += (await db.run(`DELETE FROM alert_ui_notifications WHERE ${s.sql} AND created_at < ?`, [...s.params, s.before])).changes;
    r.alert_groups += (await db.run(`DELETE FROM alert_groups WHERE ${s.sql} AND state = 'resolved' AND updated_at < ?`, [...s.params, s.before])).changes;
  }
  return r;
}
