// What the aggregator tells the rest of the engine about error groups as events are written:
// a fingerprint seen for the first time, a resolved group happening again. Alert rules of kind
// new_group and regression listen here.
import { EventEmitter } from 'node:events';
import type { EventRow } from '../event.js';

export interface GroupSignal {
  project_id: string;
  fingerprint: string;
  /** The event that revealed it. */
  row: EventRow;
}

export interface SignalMap {
  new_group: [GroupSignal];
  regression: [GroupSignal];
}

export class GroupSignals extends EventEmitter<SignalMap> {
  private readonly pending = new Set<Promise<unknown>>();

  /** A listener's work the emitter should wait for (settle()) before it records the group. */
  track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Resolves once every tracked piece of work has ended (fulfilled or not). */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}
