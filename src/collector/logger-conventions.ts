// What loggers put in a JSON line, onto the canonical fields, on every ingest route: pino's and
// bunyan's `msg`, `time` and numeric `level`, winston's and log4js' level names, `err`/`error`
// objects. A canonical field the sender set itself always wins; the field used is then not kept
// again as an attribute. Pure, and cheap when none of the names is present (five property reads).

import { parseTime } from '../event.js';

type Obj = Record<string, unknown>;

export { severityFromLevel, severityFromPinoLevel } from './levels.js';
import { severityFromLevel } from './levels.js';

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * Maps an error object as loggers serialize it (pino's err serializer: {type, message, stack};
 * winston/format.errors and Node's Error-like JSON: {name, message, stack}) onto the event, where
 * the event does not already say. Returns whether the object was used.
 */
export function applyErrorObject(ev: Obj, err: Obj): boolean {
  const type = str(err.type) ?? str(err.name) ?? str(err.code);
  const message = str(err.message);
  const stack = str(err.stack);
  if (!type && !message && !stack) return false;
  if (ev.error_type === undefined && type) ev.error_type = type;
  if (ev.stack === undefined && stack) ev.stack = stack;
  // the log line's own text (pino: msg, which defaults to err.message) is the message; the error's
  // message only when the line has none
  if (ev.message === undefined && message) ev.message = message;
  return true;
}

/**
 * Applies the conventions in place to one parsed input object. Fields consumed are deleted, so they
 * do not come back as attributes. Callers pass freshly parsed objects they own.
 */
export function applyLoggerConventions(ev: Obj): void {
  if (ev.msg !== undefined && ev.message === undefined && typeof ev.msg === 'string') {
    ev.message = ev.msg;
    delete ev.msg;
  }
  if (ev.time !== undefined && ev.timestamp === undefined && parseTime(ev.time) !== undefined) {
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
  for (const key of ['err', 'error'] as const) {
    const e = ev[key];
    if (isObj(e) && applyErrorObject(ev, e)) {
      // what the error carried besides its type, message and stack (code, errno, cause, …) stays
      const { type: _t, name: _n, message: _m, stack: _s, ...rest } = e;
      if (Object.keys(rest).length > 0) ev[key] = rest;
      else delete ev[key];
      break;
    }
  }
}

/**
 * Shippers that tail files (Docker's json-file driver, Fluent Bit, Filebeat's container input) put
 * the line in `log`: it is the message when the record has none.
 */
export function applyShipperLine(ev: Obj): void {
  if (ev.message === undefined && ev.msg === undefined && typeof ev.log === 'string') {
    ev.message = ev.log;
    delete ev.log;
  }
}
