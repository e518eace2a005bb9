// Error-group state: open / resolved / ignored, first seen, regressions. Counts and samples come from
// the events themselves (queries.ts); this keeps only what a person decides and what must be known
// at ingest time (is this fingerprint new? was it resolved?).
import type { SqlDb } from '../storage/sql-db.js';
import type { EventRow } from '../event.js';
import type { GroupSignals } from './signals.js';
import type { ControlBus } from '../storage/control-bus.js';

export type GroupState = 'open' | 'resolved' | 'ignored';
export const GROUP_STATES: readonly GroupState[] = ['open', 'resolved', 'ignored'];

export interface GroupStatus {
  project_id: string;
  fingerprint: string;
  state: GroupState;
  first_seen: number;
  resolved_at: number | null;
  regressed_at: number | null;
  regressions: number;
  updated_by: string | null;
}

const key = (project: string, fp: string) => `${project}\u0000${fp}`;

export class ErrorGroups {
  /** Every known group's state; small (one entry per distinct error), loaded at start. */
  private readonly known = new Map<string, GroupState>();

  constructor(private readonly db: SqlDb, private readonly signals: GroupSignals) {}

  private bus: ControlBus | undefined;

  /** A state set on any node (resolved, ignored) is what this node's next event is judged against. */
  listen(bus: ControlBus): void {
    this.bus = bus;
    bus.on('groups', () => void this.init().catch(() => undefined));
  }

  async init(): Promise<void> {
    const rows = await this.db.all<{ project_id: string; fingerprint: string; state: GroupState }>(
      'SELECT project_id, fingerprint, state FROM error_groups',
    );
    for (const r of rows) this.known.set(key(r.project_id, r.fingerprint), r.state);
  }

  /**
   * Called with durable rows, fed from the write-ahead log: records new groups and reopens resolved
   * ones. The signals go first and their alert work is awaited before the groups are recorded: a
   * crash in between leaves them unrecorded, so the replay after the restart signals them again (and
   * an alert already firing is not notified twice). Recording first would lose the alerts instead.
   * A block's groups are recorded in one transaction: one fsync, not one per new group.
   */
  async observe(rows: readonly EventRow[]): Promise<void> {
    const firsts = new Map<string, EventRow>();
    for (const r of rows) {
      if (!r.fingerprint) continue;
      const k = key(r.project_id, r.fingerprint);
      const state = this.known.get(k);
      if (state === 'open' || state === 'ignored') continue;
      if (!firsts.has(k)) firsts.set(k, r);
    }
    const created: EventRow[] = [];
    const regressed: EventRow[] = [];
    for (const [k, row] of firsts) {
      let state = this.known.get(k);
      if (state === undefined) {
        // another engine node may have recorded it first: then it is not new here either
        const other = await this.get(row.project_id, row.fingerprint);
        if (!other) {
          this.signals.emit('new_group', { project_id: row.project_id, fingerprint: row.fingerprint, row });
          created.push(row);
          continue;
        }
        this.known.set(k, other.state);
        if (other.state !== 'resolved') continue;
        state = 'resolved';
      }
      if (state === 'resolved') {
        // only an event that happened after the resolution is a regression
        const status = await this.get(row.project_id, row.fingerprint);
        if (status?.resolved_at && Number(row.timestamp) < status.resolved_at) continue;
        this.signals.emit('regression', { project_id: row.project_id, fingerprint: row.fingerprint, row });
        regressed.push(row);
      }
    }
    if (created.length === 0 && regressed.length === 0) return;
    await this.signals.settle();
    const now = Date.now();
    await this.db.tx(async (tx) => {
      for (const row of created) {
        await tx.run(
          `INSERT INTO error_groups (project_id, fingerprint, state, first_seen, regressions, updated_at)
           VALUES (?, ?, 'open', ?, 0, ?) ON CONFLICT (project_id, fingerprint) DO NOTHING`,
          [row.project_id, row.fingerprint, Number(row.timestamp), now],
        );
      }
      for (const row of regressed) {
        await tx.run(
          `UPDATE error_groups SET state = 'open', regressed_at = ?, regressions = regressions + 1, updated_at = ?, updated_by = ?
           WHERE project_id = ? AND fingerprint = ? AND state = 'resolved'`,
          [Number(row.timestamp), now, 'regression', row.project_id, row.fingerprint],
        );
      }
    });
    for (const row of [...created, ...regressed]) this.known.set(key(row.project_id, row.fingerprint), 'open');
  }

  async get(project: string, fingerprint: string): Promise<GroupStatus | undefined> {
    const rows = await this.db.all<GroupStatus>('SELECT * FROM error_groups WHERE project_id = ? AND fingerprint = ?', [project, fingerprint]);
    return rows[0] ? normalizeStatus(rows[0]) : undefined;
  }

  /** The groups not open (resolved or ignored): few next to all groups; the listing's state filter. */
  async notOpen(projects: readonly string[] | undefined): Promise<GroupStatus[]> {
    const rows = projects
      ? await this.db.all<GroupStatus>(`SELECT * FROM error_groups WHERE state != 'open' AND project_id IN (${projects.map(() => '?').join(',') || "''"})`, [...projects])
      : await this.db.all<GroupStatus>("SELECT * FROM error_groups WHERE state != 'open'");
    return rows.map(normalizeStatus);
  }

  /** States of many groups at once (for a listing). */
  async statuses(projects: readonly string[] | undefined): Promise<Map<string, GroupStatus>> {
    const rows = projects
      ? await this.db.all<GroupStatus>(`SELECT * FROM error_groups WHERE project_id IN (${projects.map(() => '?').join(',') || "''"})`, [...projects])
      : await this.db.all<GroupStatus>('SELECT * FROM error_groups');
    return new Map(rows.map((r) => [key(r.project_id, r.fingerprint), normalizeStatus(r)]));
  }

  async setState(project: string, fingerprint: string, state: GroupState, by: string): Promise<GroupStatus | undefined> {
    const now = Date.now();
    const res = await this.db.run(
      `UPDATE error_groups SET state = ?, resolved_at = ?, updated_by = ?, updated_at = ? WHERE project_id = ? AND fingerprint = ?`,
      [state, state === 'resolved' ? now : null, by, now, project, fingerprint],
    );
    if (res.changes === 0) return undefined;
    this.known.set(key(project, fingerprint), state);
    await this.bus?.publish('groups');
    return this.get(project, fingerprint);
  }
}

function normalizeStatus(r: GroupStatus): GroupStatus {
  return {
    ...r,
    first_seen: Number(r.first_seen),
    resolved_at: r.resolved_at === null ? null : Number(r.resolved_at),
    regressed_at: r.regressed_at === null ? null : Number(r.regressed_at),
    regressions: Number(r.regressions),
  };
}

export function statusKey(project: string, fingerprint: string): string {
  return key(project, fingerprint);
}
