// The `err`/`error` object loggers write, onto the canonical fields: one mapping for the ingest
// routes (logger-conventions.ts) and the SDK's pino and winston transports (client/), so this
// file imports nothing (like levels.ts).

type Obj = Record<string, unknown>;

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
 * The first of `err`, `error` that is an error object fills error_type, stack and message; what it
 * carried besides (code, errno, cause, …) stays under its key, and the key goes when nothing is left.
 */
export function applyErrorField(ev: Obj): void {
  for (const key of ['err', 'error'] as const) {
    const e = ev[key];
    if (isObj(e) && applyErrorObject(ev, e)) {
      const { type: _t, name: _n, message: _m, stack: _s, ...rest } = e;
      if (Object.keys(rest).length > 0) ev[key] = rest;
      else delete ev[key];
      return;
    }
  }
}

/**
 * The error's type from the first line of a JavaScript or Java stack ("RangeError: no route…" then
 * "    at …" frames); undefined for anything else (a free-form first line names no type).
 */
export function errorTypeFromStack(stack: string): string | undefined {
  const m = /^([A-Za-z_$][\w$.]{0,127})(?::[^\n]*)?\r?\n[ \t]+at /.exec(stack);
  return m ? m[1] : undefined;
}
