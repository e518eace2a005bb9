// What loggers put in a record, onto the engine's canonical fields, on the client side (the pino and
// winston transports): `msg`, `time`, `level` (pino numbers 10–60, names like `warn`, `fatal`) and
// `err`/`error` objects ({type|name, message, stack}). The same mapping the engine applies to every
// ingest route; a canonical field the record sets itself always wins, and a field that was used is
// not kept again as an attribute. Pure; the level table and the err/error mapping are shared with the
// engine (src/collector/levels.ts and error-object.ts, which import nothing).

type Obj = Record<string, unknown>;

export { severityFromLevel, severityFromPinoLevel } from '../src/collector/levels.js';
import { severityFromLevel } from '../src/collector/levels.js';
import { applyErrorField } from '../src/collector/error-object.js';

const isTime = (v: unknown): boolean =>
  (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && /^(\d{1,16}|\d{4}-\d{2}-\d{2}.*)$/.test(v));

/** An Error (or anything with a stack) as loggers serialize it: { type, message, stack, …own fields }. */
export function serializeError(e: Error): Obj {
  const out: Obj = { type: e.name || e.constructor?.name || 'Error', message: e.message, stack: e.stack };
  for (const k of Object.keys(e)) if (!(k in out)) out[k] = (e as unknown as Obj)[k];
  return out;
}

/**
 * Applies the conventions in place to a record the caller owns. An err/error object fills
 * error_type, stack and (when the line has no text of its own) message.
 */
export function applyLoggerConventions(ev: Obj): void {
  if (typeof ev.msg === 'string' && ev.message === undefined) {
    ev.message = ev.msg;
    delete ev.msg;
  }
  if (ev.time !== undefined && ev.timestamp === undefined && isTime(ev.time)) {
    ev.timestamp = ev.time;
    delete ev.time;
  }
  if (ev.level !== undefined && ev.severity === undefined) {
    const s = severityFromLevel(ev.level);
    if (s !== undefined) {
      ev.severity = s;
      delete ev.level;
    }
  }
  applyErrorField(ev);
}
