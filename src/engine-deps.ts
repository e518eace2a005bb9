// The dependencies the composition root (engine.ts) hands to every stage. It lives apart from
// engine.ts so route plugins and services can name it without importing the module that imports them.
import type { ControlBus } from './storage/control-bus.js';
import type { Config } from './config.js';
import type { EventStore } from './storage/event-store.js';
import type { SqlDb } from './storage/sql-db.js';
import type { WritePath } from './wal/write-path.js';
import type { Collector } from './collector/ingest.js';
import type { KeyStore } from './auth/key-store.js';
import type { QueryLimiter } from './query/limiter.js';
import type { GroupSignals } from './aggregator/signals.js';
import type { ErrorGroups } from './aggregator/groups.js';
import type { ProjectSettingsStore } from './collector/project-settings.js';
import type { AdminActionRecorder } from './audit/admin-actions.js';

/** What every stage's route plugin and service may depend on; passed in, never global. */
export interface EngineDeps {
  config: Config;
  /** This node's lasting name, kept in its write-ahead log's directory (WritePath.node). */
  node: string;
  events: EventStore;
  meta: SqlDb;
  /** The write-ahead log, its loader into storage and its observers. */
  writePath: WritePath;
  collector: Collector;
  keys: KeyStore;
  limiter: QueryLimiter;
  /** new_group / regression, raised by the aggregator after the events are durable. */
  signals: GroupSignals;
  /** Per-project redaction rules and flood ceiling. */
  projectSettings: ProjectSettingsStore;
  /** Error-group state (open / resolved / ignored, regressions). */
  errorGroups: ErrorGroups;
  /** Control changes (keys, rules, silences, group states, settings) announced to every engine node. */
  control: ControlBus;
  /** Records an admin action in the audit trail. */
  recordAdminAction: AdminActionRecorder;
  /** Called by close(), last registered first: stages stop their timers and loops here. */
  onClose(fn: () => Promise<void> | void): void;
}
