// Shared shapes of the alert delivery side: what the dispatcher hands a sender (Notification),
// what a sender hands back (DeliveryResult), and the TypeBox schemas of each channel's config.
// The schemas avoid `format` keywords on purpose: TypeCompiler rejects unknown formats unless
// they are registered, so e-mail and URL shapes are checked with patterns (and, for URLs, with
// checkUrlSyntax() in url-guard.ts, which validateChannelConfig() in index.ts also runs).
import { Type, type Static, type TSchema } from '@sinclair/typebox';

export interface Notification {
  /** Stable id; the same notification retried keeps it, so receivers can deduplicate. */
  id: string;
  state: 'firing' | 'resolved' | 'test';
  rule_id: string;
  rule_name: string;
  /** debug|info|warning|low|medium|high|critical */
  severity: string;
  project_id: string;
  /** One line: what happened. */
  title: string;
  /** A few lines of detail. */
  summary: string;
  /** Matching events so far in this group. */
  count: number;
  /** ISO 8601 */
  first_seen: string;
  /** ISO 8601 */
  last_seen: string;
  /** group_by values, e.g. {engine: 'execution', platform: 'Slack'} */
  labels: Record<string, string>;
  /** Dashboard URL. */
  link: string;
  /** For feedback_loop: what the end user needs to know. */
  user_message?: string;
}

export type DeliveryResult =
  | { ok: true; status?: number }
  | { ok: false; retryable: boolean; retryAfterMs?: number; error: string; status?: number };

/** Every channel type a rule can name. `ui` is delivered elsewhere (in-app), not by a sender here. */
export const CHANNEL_TYPES = ['slack', 'email', 'webhook', 'feedback_loop', 'ui'] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];
/** The channel types createSenders().send() delivers. */
export const SENDER_CHANNEL_TYPES = ['slack', 'email', 'webhook', 'feedback_loop'] as const;
export type SenderChannelType = (typeof SENDER_CHANNEL_TYPES)[number];

/** http(s) URL; checkUrlSyntax() does the full parse. */
const HttpUrl = Type.String({
  minLength: 8,
  maxLength: 2048,
  pattern: '^[Hh][Tt][Tt][Pp][Ss]?://[^\\s]+$',
  description: 'http or https URL',
});

/** A plain address, user@domain.tld (no display name). */
const EMAIL_PATTERN = '^[^\\s@<>()\\[\\]\\\\,;:"]+@[^\\s@<>()\\[\\]\\\\,;:".]+(\\.[^\\s@<>()\\[\\]\\\\,;:".]+)+$';
const EmailAddress = Type.String({ maxLength: 254, pattern: EMAIL_PATTERN, description: 'e-mail address' });

/** Shared-secret for HMAC signing; printable, no line breaks. */
const Secret = Type.String({ minLength: 1, maxLength: 1024, pattern: '^[^\\r\\n]+$' });

/** RFC 9110 token characters. */
const HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$";

export const SlackConfig = Type.Object(
  { webhook_url: HttpUrl },
  { additionalProperties: false, description: 'Slack incoming webhook' },
);
export type SlackConfig = Static<typeof SlackConfig>;

export const EmailConfig = Type.Object(
  {
    host: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:_\\[\\]-]+$', description: 'SMTP server host name or IP' }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    secure: Type.Optional(Type.Boolean({ description: 'implicit TLS (usually port 465); otherwise STARTTLS is used when offered' })),
    user: Type.Optional(Type.String({ maxLength: 512, pattern: '^[^\\r\\n]*$' })),
    password: Type.Optional(Type.String({ maxLength: 1024, pattern: '^[^\\r\\n]*$' })),
    from: Type.String({ minLength: 3, maxLength: 512, pattern: '^[^\\r\\n]*@[^\\r\\n]*$', description: 'sender; `addr@x` or `"Name" <addr@x>`' }),
    to: Type.Array(EmailAddress, { minItems: 1, maxItems: 50 }),
  },
  { additionalProperties: false, description: 'SMTP e-mail' },
);
export type EmailConfig = Static<typeof EmailConfig>;

export const WebhookConfig = Type.Object(
  {
    url: HttpUrl,
    headers: Type.Optional(
      Type.Record(
        Type.String({ pattern: HEADER_NAME_PATTERN }),
        Type.String({ maxLength: 4096, pattern: '^[^\\r\\n\\x00]*$' }),
        { additionalProperties: false, maxProperties: 32 },
      ),
    ),
    secret: Type.Optional(Secret),
  },
  {
    additionalProperties: false,
    description:
      'Generic JSON webhook. With a secret, the request carries X-Puraify-Signature: sha256=<hex HMAC-SHA256 ' +
      'of `${X-Puraify-Timestamp}.${raw body}`>; X-Puraify-Timestamp is Unix seconds.',
  },
);
export type WebhookConfig = Static<typeof WebhookConfig>;

export const FeedbackLoopConfig = Type.Object(
  { url: HttpUrl, secret: Type.Optional(Secret) },
  { additionalProperties: false, description: 'Feedback Loop engine webhook (signed like `webhook`)' },
);
export type FeedbackLoopConfig = Static<typeof FeedbackLoopConfig>;

export const UiConfig = Type.Object({}, { additionalProperties: false, description: 'in-app notification; no settings' });
export type UiConfig = Static<typeof UiConfig>;

/** Any channel's config. The members are closed objects, so at most one or two match a given value. */
export const ChannelConfig = Type.Union([SlackConfig, EmailConfig, WebhookConfig, FeedbackLoopConfig, UiConfig]);
export type ChannelConfig = Static<typeof ChannelConfig>;

/** Config schema per channel type, for validating `{type, config}` pairs. */
export const CHANNEL_CONFIG_SCHEMAS = {
  slack: SlackConfig,
  email: EmailConfig,
  webhook: WebhookConfig,
  feedback_loop: FeedbackLoopConfig,
  ui: UiConfig,
} as const satisfies Record<ChannelType, TSchema>;

export interface ChannelConfigByType {
  slack: SlackConfig;
  email: EmailConfig;
  webhook: WebhookConfig;
  feedback_loop: FeedbackLoopConfig;
  ui: UiConfig;
}

/** Header names a webhook config may not set: hop-by-hop, framing, and the ones this engine signs. */
export const RESERVED_HEADER_NAMES: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'expect',
  'te',
  'trailer',
  'proxy-connection',
  'proxy-authorization',
]);
export const RESERVED_HEADER_PREFIX = 'x-puraify-';
