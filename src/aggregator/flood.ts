// Flood protection: past a project's per-group ceiling of fully stored events per minute, events are
// still stored — so counts, groups and time series stay exact — but slimmed to their counting
// fields (sampled = 1), except one in `flood_sample_every`, which is kept in full.
import type { EventRow } from '../event.js';
import type { ProjectSettings } from '../collector/project-settings.js';

interface Window {
  minute: number;
  count: number;
}

export const SLIM_MESSAGE_LENGTH = 200;

export class FloodGuard {
  private readonly windows = new Map<string, Window>();
  private sweepAt = 0;

  constructor(private readonly settingsFor: (project: string) => ProjectSettings) {}

  /** A row processor: runs after fingerprinting. */
  readonly process = (row: EventRow): void => {
    if (!row.fingerprint) return;
    const s = this.settingsFor(row.project_id);
    const ceiling = s.flood_ceiling_per_minute;
    if (ceiling === null) return;
    const minute = Math.floor(row.received_at / 60_000);
    const k = `${row.project_id}\u0000${row.fingerprint}`;
    let w = this.windows.get(k);
    if (!w || w.minute !== minute) {
      w = { minute, count: 0 };
      this.windows.set(k, w);
      if (minute > this.sweepAt) this.sweep(minute);
    }
    w.count++;
    if (w.count <= ceiling) return;
    if ((w.count - ceiling) % s.flood_sample_every === 0) return; // the sampled one, kept in full
    slim(row);
  };

  private sweep(minute: number): void {
    this.sweepAt = minute;
    for (const [k, w] of this.windows) if (w.minute < minute) this.windows.delete(k);
  }
}

export function slim(row: EventRow): void {
  row.sampled = 1;
  row.stack = '';
  if (row.message.length > SLIM_MESSAGE_LENGTH) row.message = row.message.slice(0, SLIM_MESSAGE_LENGTH);
  row.attr_keys = [];
  row.attr_values = [];
}
