// Admin actions (keys, rules, channels, silences, group state, settings) are recorded in the audit
// trail as ordinary events, so they are searched, exported and replayed like everything else.
// They count as the actor's writes: the actor's next query sees them (read-your-writes).
import type { Principal } from '../auth/principal.js';
import type { Collector } from '../collector/ingest.js';

export const AUDIT_EVENT_TYPE = 'audit';
/** The project that holds actions not bound to one project (an admin-token key change, say). */
export const SYSTEM_PROJECT = '_system';

export type AdminActionRecorder = (
  principal: Principal,
  action: string,
  target: { project_id?: string | null; kind: string; id: string },
  details?: Record<string, unknown>,
) => Promise<void>;

export function adminActionRecorder(collector: Collector, system: Principal): AdminActionRecorder {
  return async (principal, action, target, details = {}) => {
    await collector.ingest([{
      project_id: target.project_id || SYSTEM_PROJECT,
      event_type: AUDIT_EVENT_TYPE,
      engine: 'monitoring',
      action,
      status: 'success',
      user_id: principal.name,
      message: `${principal.name} ${action} ${target.kind} ${target.id}`,
      attributes: { target_kind: target.kind, target_id: target.id, ...flatten(details) },
    }], system, { writer: principal.name });
  };
}

function flatten(d: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(d)) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}
