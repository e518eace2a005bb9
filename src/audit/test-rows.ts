// Test helper (not a test itself): stored rows for the pure audit functions' unit tests.
import type { EventRow } from '../event.js';

let n = 0;

export function row(p: Partial<EventRow> & { attrs?: Record<string, string> } = {}): EventRow {
  const { attrs, ...rest } = p;
  n++;
  return {
    id: `id-${String(n).padStart(6, '0')}`, timestamp: 1_753_401_600_000, received_at: 1_753_401_600_000,
    project_id: 'pf', event_type: 'execution', engine: 'execution', triggered_by: '', flow_id: '', session_id: '',
    user_id: '', trace_id: '', span_id: '', platform: '', action: '', status: 'success', severity: '', error_type: '',
    message: '', stack: '', duration_ms: null, retries: null, fingerprint: '', alert: 0, sampled: 0,
    attr_keys: attrs ? Object.keys(attrs) : [], attr_values: attrs ? Object.values(attrs) : [],
    ...rest,
  };
}
