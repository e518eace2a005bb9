// The delivery side of the Alerts Dispatcher: one sender per channel type behind createSenders(),
// config validation, and masking of channel secrets for the API. No storage here.
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import { EmailSender } from './email.js';
import { sendSlack } from './slack.js';
import {
  CHANNEL_CONFIG_SCHEMAS,
  type ChannelConfigByType,
  type ChannelType,
  type DeliveryResult,
  type EmailConfig,
  type FeedbackLoopConfig,
  type Notification,
  type SenderChannelType,
  type SlackConfig,
  type WebhookConfig,
} from './types.js';
import { checkOutboundHost, checkOutboundUrl, checkUrlSyntax, type GuardResult } from './url-guard.js';
import { DEFAULT_TIMEOUT_MS, headerProblem, sendFeedbackLoop, sendWebhook } from './webhook.js';

export * from './types.js';
export { buildSlackMessage, sendSlack, escapeMrkdwn, SLACK_LIMITS, type SlackMessage, type SlackBlock } from './slack.js';
export { buildEmail, classifySmtpError, escapeHtml, EmailSender, type EmailContent, type EmailSenderOptions } from './email.js';
export {
  signBody,
  verifySignature,
  postJson,
  postBody,
  classifyHttpResponse,
  parseRetryAfter,
  buildWebhookPayload,
  buildFeedbackPayload,
  sendWebhook,
  sendFeedbackLoop,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  NOTIFICATION_ID_HEADER,
  DEFAULT_TIMEOUT_MS,
} from './webhook.js';
export { checkOutboundUrl, checkOutboundHost, checkUrlSyntax, blockedAddressReason, type GuardResult } from './url-guard.js';

export interface Senders {
  send(type: SenderChannelType, config: unknown, n: Notification): Promise<DeliveryResult>;
  /** Closes pooled SMTP connections. Sends after close() fail (retryable). */
  close(): void;
}

/**
 * Senders for every deliverable channel type. Each send validates the config, checks the target
 * (URL or SMTP host) with the URL guard — unless `allowPrivate`, private/loopback/metadata targets
 * are refused as permanent failures — and delivers. Never throws.
 */
export function createSenders(opts: { allowPrivate: boolean; timeoutMs?: number }): Senders {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const email = new EmailSender({ timeoutMs });
  let closed = false;

  const refused = (g: Exclude<GuardResult, { ok: true }>): DeliveryResult => ({
    ok: false,
    retryable: g.transient === true,
    error: `target refused: ${g.reason}`,
  });

  return {
    async send(type, config, n) {
      if (closed) return { ok: false, retryable: true, error: 'senders are closed' };
      try {
        const v = validateChannelConfig(type, config);
        if (!v.ok) return { ok: false, retryable: false, error: `invalid ${type} config: ${v.errors.join('; ')}` };
        switch (type) {
          case 'slack': {
            const cfg = config as SlackConfig;
            const g = await checkOutboundUrl(cfg.webhook_url, opts.allowPrivate);
            return g.ok ? await sendSlack(cfg, n, { timeoutMs, pinned: g.pinned }) : refused(g);
          }
          case 'webhook': {
            const cfg = config as WebhookConfig;
            const g = await checkOutboundUrl(cfg.url, opts.allowPrivate);
            return g.ok ? await sendWebhook(cfg, n, { timeoutMs, pinned: g.pinned }) : refused(g);
          }
          case 'feedback_loop': {
            const cfg = config as FeedbackLoopConfig;
            const g = await checkOutboundUrl(cfg.url, opts.allowPrivate);
            return g.ok ? await sendFeedbackLoop(cfg, n, { timeoutMs, pinned: g.pinned }) : refused(g);
          }
          case 'email': {
            const cfg = config as EmailConfig;
            const g = await checkOutboundHost(cfg.host, opts.allowPrivate);
            return g.ok ? await email.send(cfg, n, { pinned: g.pinned }) : refused(g);
          }
          default:
            return { ok: false, retryable: false, error: `channel type ${String(type)} has no sender` };
        }
      } catch (err) {
        return { ok: false, retryable: false, error: `sender failed: ${(err as Error)?.message ?? String(err)}` };
      }
    },
    close() {
      closed = true;
      email.close();
    },
  };
}

// ---- validation -----------------------------------------------------------------------------

const compiled = new Map<ChannelType, TypeCheck<TSchema>>();
function checkerFor(type: ChannelType): TypeCheck<TSchema> {
  let c = compiled.get(type);
  if (!c) {
    c = TypeCompiler.Compile(CHANNEL_CONFIG_SCHEMAS[type]);
    compiled.set(type, c);
  }
  return c;
}

/** Schema check plus URL syntax and header rules; the API layer and send() both use it. */
export function validateChannelConfig<T extends ChannelType>(
  type: T,
  config: unknown,
): { ok: true; value: ChannelConfigByType[T] } | { ok: false; errors: string[] } {
  if (!Object.hasOwn(CHANNEL_CONFIG_SCHEMAS, type)) return { ok: false, errors: [`unknown channel type ${String(type)}`] };
  const c = checkerFor(type);
  if (!c.Check(config)) {
    const errors = [...c.Errors(config)].slice(0, 5).map((e) => `${e.path || '/'}: ${e.message}`);
    return { ok: false, errors };
  }
  const errors: string[] = [];
  const cfg = config as Record<string, unknown>;
  for (const f of ['webhook_url', 'url'] as const) {
    if (typeof cfg[f] === 'string') {
      const s = checkUrlSyntax(cfg[f] as string);
      if (!s.ok) errors.push(`/${f}: ${s.reason}`);
    }
  }
  if (type === 'webhook' && cfg.headers) {
    for (const [k, v] of Object.entries(cfg.headers as Record<string, string>)) {
      const p = headerProblem(k, v);
      if (p) errors.push(`/headers: ${p}`);
    }
  }
  return errors.length ? { ok: false, errors } : { ok: true, value: config as ChannelConfigByType[T] };
}

// ---- secret masking -------------------------------------------------------------------------

const MASK = '***';
const URL_FIELDS: Record<ChannelType, string[]> = { slack: ['webhook_url'], email: [], webhook: ['url'], feedback_loop: ['url'], ui: [] };
const SECRET_FIELDS: Record<ChannelType, string[]> = { slack: [], email: ['password'], webhook: ['secret'], feedback_loop: ['secret'], ui: [] };

/** `https://hooks.slack.com/services/T00…***`: scheme and host kept, most of path/query hidden. */
export function maskUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return MASK;
  }
  const origin = `${u.protocol}//${u.host}`;
  const rest = `${u.pathname}${u.search}${u.hash}`;
  if (rest === '' || rest === '/') return origin + rest;
  const keep = Math.min(13, Math.floor(rest.length / 3));
  return `${origin}${rest.slice(0, keep)}…${MASK}`;
}

/** `***` plus the last two characters when the secret is long enough for that to give nothing away. */
export function maskSecret(secret: string): string {
  return secret.length >= 16 ? `${MASK}${secret.slice(-2)}` : MASK;
}

/**
 * A copy of a channel config safe to show in the API: URLs keep scheme and host, passwords,
 * secrets and every custom webhook header value (they usually carry credentials) are masked.
 */
export function maskSecrets(type: ChannelType, config: unknown): Record<string, unknown> {
  if (!isRecord(config)) return {};
  const out: Record<string, unknown> = structuredClone(config);
  for (const f of URL_FIELDS[type] ?? []) if (typeof out[f] === 'string') out[f] = maskUrl(out[f] as string);
  for (const f of SECRET_FIELDS[type] ?? []) if (typeof out[f] === 'string') out[f] = maskSecret(out[f] as string);
  if (type === 'webhook' && isRecord(out.headers)) {
    for (const k of Object.keys(out.headers)) {
      const v = out.headers[k];
      if (typeof v === 'string') out.headers[k] = maskSecret(v);
    }
  }
  return out;
}

/**
 * For an update: wherever `newConfig` holds exactly the masked form of the stored value, the stored
 * value is kept; anything else in `newConfig` wins (a field left out is removed).
 */
export function mergeSecrets(type: ChannelType, newConfig: unknown, oldConfig: unknown): Record<string, unknown> {
  if (!isRecord(newConfig)) return {};
  const out: Record<string, unknown> = structuredClone(newConfig);
  if (!isRecord(oldConfig)) return out;
  const keep = (f: string, mask: (s: string) => string) => {
    const nv = out[f];
    const ov = oldConfig[f];
    if (typeof nv === 'string' && typeof ov === 'string' && nv === mask(ov)) out[f] = ov;
  };
  for (const f of URL_FIELDS[type] ?? []) keep(f, maskUrl);
  for (const f of SECRET_FIELDS[type] ?? []) keep(f, maskSecret);
  if (type === 'webhook' && isRecord(out.headers) && isRecord(oldConfig.headers)) {
    const oldByName = new Map(Object.entries(oldConfig.headers).map(([k, v]) => [k.toLowerCase(), v]));
    for (const [k, nv] of Object.entries(out.headers)) {
      const ov = oldByName.get(k.toLowerCase());
      if (typeof nv === 'string' && typeof ov === 'string' && nv === maskSecret(ov)) out.headers[k] = ov;
    }
  }
  return out;
}

/** Fields that still hold a masked placeholder (e.g. after merging with the wrong stored config). */
export function maskedFields(type: ChannelType, config: unknown): string[] {
  if (!isRecord(config)) return [];
  const found: string[] = [];
  const looksMasked = (v: unknown) => typeof v === 'string' && (v.endsWith(`…${MASK}`) || v.startsWith(MASK));
  for (const f of [...(URL_FIELDS[type] ?? []), ...(SECRET_FIELDS[type] ?? [])]) if (looksMasked(config[f])) found.push(f);
  if (type === 'webhook' && isRecord(config.headers)) {
    for (const [k, v] of Object.entries(config.headers)) if (looksMasked(v)) found.push(`headers.${k}`);
  }
  return found;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
