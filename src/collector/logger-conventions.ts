// What loggers put in a JSON line, onto the canonical fields, on every ingest route: pino's and
// bunyan's `msg`, `time` and numeric `level`, winston's and log4js' level names, `err`/`error`
// objects. A canonical field the sender set itself always wins; the field used is then not kept
// again as an attribute. Pure, and cheap when none of the names is present (five property reads).

import { parseTime } from '../event.js';

type Obj = Record<string, unknown>;

export { severityFromLevel, severityFromPinoLevel } from './levels.js';
import { severityFromLevel } from './levels.js';
import { applyErrorField, errorTypeFromStack } from './error-object.js';

/**
 * Applies the conventions in place to one parsed input object. Fields consumed are deleted, so they
 * do not come back as attributes. Callers pass freshly parsed objects they own.
 */
export function applyLoggerConventions(ev: Obj): void {
  const loggerLine = ev.level !== undefined;
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
  applyErrorField(ev);
  // winston's format.errors({ stack: true }) puts the Error's message and stack on the record, not
  // its name: the stack's first line names it. Only on a logger's line (it has a level), so events
  // that sent a stack without a type before keep their fingerprint.
  if (loggerLine && ev.error_type === undefined && typeof ev.stack === 'string') {
    const type = errorTypeFromStack(ev.stack);
    if (type) ev.error_type = type;
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
