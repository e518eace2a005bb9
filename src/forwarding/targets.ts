// Where a forwarding target posts, and the SSRF check of it (the alert channels' URL guard): run
// when the targets are saved, so a private, loopback, link-local or metadata address is a 400
// naming the field, and again before each send, whose connection then goes to the address that
// was checked (a DNS-rebinding name cannot answer differently the second time).
import type { FieldError } from '../event.js';
import { checkOutboundUrl } from '../alerts/channels/index.js';
import { DATADOG_DEFAULT_URL, parseDsn, type ForwardingConfig, type ParsedDsn } from './config.js';
import type { ForwardTarget } from './store.js';

export interface TargetEndpoint {
  url: string;
  /** The config field that names the endpoint (for errors). */
  field: string;
  /** Given by the user (checked at save); false for the built-in Datadog intake. */
  configured: boolean;
  /** Sentry: the parsed DSN (its key signs the request). */
  dsn?: ParsedDsn;
}

/** The endpoint a target posts to, or undefined when the target is not configured. */
export function targetEndpoint(cfg: ForwardingConfig | undefined, target: ForwardTarget): TargetEndpoint | undefined {
  if (target === 'sentry') {
    const dsn = cfg?.sentry ? parseDsn(cfg.sentry.dsn) : undefined;
    return dsn ? { url: dsn.envelopeUrl, field: 'sentry.dsn', configured: true, dsn } : undefined;
  }
  if (!cfg?.datadog) return undefined;
  return cfg.datadog.url !== undefined
    ? { url: cfg.datadog.url, field: 'datadog.url', configured: true }
    : { url: DATADOG_DEFAULT_URL, field: 'datadog.url', configured: false };
}

/**
 * Save-time check: every endpoint the user named must be one the sender may reach. The default
 * Datadog intake is ours, not the user's: not resolved here.
 */
export async function guardForwardingTargets(cfg: ForwardingConfig, allowPrivate: boolean): Promise<FieldError[]> {
  const errors: FieldError[] = [];
  for (const target of ['sentry', 'datadog'] as const) {
    const e = targetEndpoint(cfg, target);
    if (!e?.configured) continue;
    const g = await checkOutboundUrl(e.url, allowPrivate);
    if (!g.ok) errors.push({ field: e.field, message: `is not an allowed target: ${g.reason}` });
  }
  return errors;
}
