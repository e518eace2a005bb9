// Logger levels onto the engine's severity scale: one table for the ingest routes and for the SDK's
// pino and winston transports (client/), so this file imports nothing.

/** pino / bunyan numeric levels (10 trace … 60 fatal). */
export function severityFromPinoLevel(n: number): string | undefined {
  if (!Number.isFinite(n) || n <= 0) return undefined;
  if (n < 30) return 'debug'; // trace 10, debug 20
  if (n < 40) return 'info';
  if (n < 50) return 'warning';
  if (n < 60) return 'high'; // error
  return 'critical'; // fatal
}

/** Level names that loggers use (winston, log4js, syslog, Python, Go, Java, Sentry) → our scale. */
const LEVEL_NAMES: Record<string, string> = {
  trace: 'debug', verbose: 'debug', silly: 'debug', debug: 'debug', fine: 'debug', finer: 'debug', finest: 'debug',
  info: 'info', information: 'info', informational: 'info', notice: 'info', http: 'info', log: 'info', config: 'info',
  warn: 'warning', warning: 'warning',
  error: 'high', err: 'high', severe: 'high',
  fatal: 'critical', critical: 'critical', crit: 'critical', alert: 'critical', emerg: 'critical', emergency: 'critical', panic: 'critical',
};

/** A logger's level (number or name) → our severity; names we do not know are kept, lowercased. */
export function severityFromLevel(level: unknown): string | undefined {
  if (typeof level === 'number') return severityFromPinoLevel(level);
  if (typeof level !== 'string') return undefined;
  const name = level.trim().toLowerCase();
  if (name === '') return undefined;
  if (/^\d{1,3}$/.test(name)) return severityFromPinoLevel(Number(name));
  return LEVEL_NAMES[name] ?? (name.length <= 32 ? name : undefined);
}
