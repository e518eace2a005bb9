// Request bodies → items. A JSON body is one event or an array of them; NDJSON is one per line, and
// a broken line is rejected on its own while its neighbours go on.
import type { FieldError } from '../event.js';
import { LIMITS } from '../event.js';
import { parseJsonKeepingNumbers } from './lossless-json.js';

export type ParsedBody =
  | { ok: true; items: unknown[]; lineErrors: Map<number, FieldError[]> }
  | { ok: false; status: 400 | 413; code: string; message: string; errors: FieldError[] };

export function parseJsonBody(text: string): ParsedBody {
  let value: unknown;
  try {
    value = parseJsonKeepingNumbers(text);
  } catch (e) {
    return { ok: false, status: 400, code: 'invalid_json', message: 'the body is not valid JSON', errors: [{ field: '(body)', message: (e as Error).message }] };
  }
  const items = Array.isArray(value) ? value : isLogsWrapper(value) ? value.logs : [value];
  return checkCount(items, new Map());
}

/** pino-http-send's JSON body, `{"logs": [...]}`: an object whose only field is an array named logs. */
function isLogsWrapper(v: unknown): v is { logs: unknown[] } {
  if (typeof v !== 'object' || v === null) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && keys[0] === 'logs' && Array.isArray((v as { logs: unknown }).logs);
}

/**
 * A body sent as text/plain or without a Content-Type (pino-http-send's NDJSON): one JSON value, or
 * NDJSON when it is not one JSON value but has several lines.
 */
export function parseUntypedBody(text: string): ParsedBody {
  const json = parseJsonBody(text);
  if (json.ok || json.code !== 'invalid_json') return json;
  const lines = text.trim().split('\n').length;
  return lines > 1 ? parseNdjsonBody(text) : json;
}

export function parseNdjsonBody(text: string): ParsedBody {
  const items: unknown[] = [];
  const lineErrors = new Map<number, FieldError[]>();
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line.length === 0) continue;
    if (items.length >= LIMITS.maxEventsPerRequest) {
      items.push(undefined); // counted only, so the limit error below names the real count
      continue;
    }
    try {
      items.push(parseJsonKeepingNumbers(line));
    } catch (e) {
      lineErrors.set(items.length, [{ field: '(line)', message: `not valid JSON: ${(e as Error).message}` }]);
      items.push(undefined);
    }
  }
  return checkCount(items, lineErrors);
}

function checkCount(items: unknown[], lineErrors: Map<number, FieldError[]>): ParsedBody {
  if (items.length === 0) {
    return { ok: false, status: 400, code: 'no_events', message: 'the body holds no events', errors: [{ field: '(body)', message: 'no events' }] };
  }
  if (items.length > LIMITS.maxEventsPerRequest) {
    return {
      ok: false, status: 413, code: 'too_many_events',
      message: `at most ${LIMITS.maxEventsPerRequest} events per request; this one has ${items.length}`,
      errors: [{ field: '(body)', message: `more than ${LIMITS.maxEventsPerRequest} events` }],
    };
  }
  return { ok: true, items, lineErrors };
}
