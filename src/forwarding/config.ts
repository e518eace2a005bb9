// A project's forwarding targets: error events to a Sentry DSN, logs matching a filter to Datadog's
// logs intake. One TypeBox schema gives validation, the TS type and the OpenAPI shape. Secrets (the
// DSN's key, the Datadog API key) are masked for the API; a PUT that sends the masked form back keeps
// the stored secret.
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FieldError } from '../event.js';
import { parseRuleFilter, type MatchFilter } from '../alerts/rules.js';
import { addQuery } from '../query/filters.js';
import { QUERY_LIMITS } from '../query/language/parser.js';
import { checkUrlSyntax, maskSecret } from '../alerts/channels/index.js';

export const DATADOG_DEFAULT_URL = 'https://http-intake.logs.datadoghq.com/api/v2/logs';

export const SentryTarget = Type.Object({
  dsn: Type.String({ minLength: 1, maxLength: 2048, description: 'the Sentry project DSN, https://<public_key>@<host>/<project_id>' }),
  enabled: Type.Optional(Type.Boolean({ description: 'default true' })),
  environment: Type.Optional(Type.String({ maxLength: 64, description: 'sent when the event names none (attribute `environment`)' })),
}, { additionalProperties: false });

export const DatadogTarget = Type.Object({
  api_key: Type.String({ minLength: 1, maxLength: 256, description: 'sent as DD-API-KEY' }),
  url: Type.Optional(Type.String({ maxLength: 2048, description: `the logs intake (v2); default ${DATADOG_DEFAULT_URL} (other sites: http-intake.logs.datadoghq.eu, …us3…, …us5…, …ap1…)` })),
  filter: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'which events go: the GET /monitoring/logs vocabulary (severity, engine, event_type, attr.<key>, q …); empty = all' })),
  query: Type.Optional(Type.String({ maxLength: QUERY_LIMITS.maxLength, description: 'and/or the query language, e.g. `severity:(warning OR high) -engine:health`' })),
  service: Type.Optional(Type.String({ maxLength: 100, description: 'service when the event has no engine' })),
  ddsource: Type.Optional(Type.String({ maxLength: 100, description: 'default "puraify"' })),
  tags: Type.Optional(Type.String({ maxLength: 1000, description: 'extra ddtags, e.g. "env:prod,team:core"' })),
  enabled: Type.Optional(Type.Boolean({ description: 'default true' })),
}, { additionalProperties: false });

export const ForwardingBody = Type.Object({
  sentry: Type.Optional(Type.Union([SentryTarget, Type.Null()])),
  datadog: Type.Optional(Type.Union([DatadogTarget, Type.Null()])),
}, { additionalProperties: false });

export type SentryTarget = Static<typeof SentryTarget>;
export type DatadogTarget = Static<typeof DatadogTarget>;
export type ForwardingConfig = Static<typeof ForwardingBody>;

export interface ParsedDsn {
  /** Where envelopes go: <scheme>://<host><path prefix>/api/<project>/envelope/ */
  envelopeUrl: string;
  publicKey: string;
  projectId: string;
}

/** A Sentry DSN → the envelope endpoint and key; undefined when it is not a DSN. */
export function parseDsn(dsn: string): ParsedDsn | undefined {
  let u: URL;
  try {
    u = new URL(dsn);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  if (!u.username || u.search || u.hash || /[\s\x00-\x1f\x7f]/.test(dsn)) return undefined;
  const parts = u.pathname.split('/');
  const projectId = parts.pop() ?? '';
  if (!/^\d+$/.test(projectId)) return undefined;
  const prefix = parts.join('/');
  return { envelopeUrl: `${u.protocol}//${u.host}${prefix}/api/${projectId}/envelope/`, publicKey: decodeURIComponent(u.username), projectId };
}

const checker = TypeCompiler.Compile(ForwardingBody);

/** Schema, DSN, URL and filter checks; every error names its field. */
export function validateForwarding(body: unknown): { ok: true; value: ForwardingConfig } | { ok: false; errors: FieldError[] } {
  if (!checker.Check(body)) {
    const errors = [...checker.Errors(body)].slice(0, 10).map((e) => ({ field: e.path.replace(/^\//, '').replace(/\//g, '.') || '(body)', message: e.message.toLowerCase() }));
    return { ok: false, errors };
  }
  const errors: FieldError[] = [];
  const cfg = body as ForwardingConfig;
  if (cfg.sentry) {
    // a DSN carries its key as URL credentials: the endpoint it names is what must be a sound URL
    const dsn = parseDsn(cfg.sentry.dsn);
    const s = dsn ? checkUrlSyntax(dsn.envelopeUrl) : undefined;
    if (!dsn) errors.push({ field: 'sentry.dsn', message: 'must be a Sentry DSN: https://<public_key>@<host>/<numeric project id>' });
    else if (s && !s.ok) errors.push({ field: 'sentry.dsn', message: s.reason });
  }
  if (cfg.datadog) {
    if (cfg.datadog.url !== undefined) {
      const s = checkUrlSyntax(cfg.datadog.url);
      if (!s.ok) errors.push({ field: 'datadog.url', message: s.reason });
    }
    if (/[\r\n\x00]/.test(cfg.datadog.api_key)) errors.push({ field: 'datadog.api_key', message: 'must not contain line breaks' });
    const fe: FieldError[] = [];
    datadogFilter(cfg.datadog, fe);
    for (const e of fe) errors.push({ field: `datadog.${e.field}`, message: e.message });
  }
  return errors.length ? { ok: false, errors } : { ok: true, value: cfg };
}

/** The Datadog target's filter and query, parsed as an alert rule's are. */
export function datadogFilter(t: DatadogTarget, errors: FieldError[] = []): MatchFilter {
  const f = parseRuleFilter(t.filter ?? {}, errors);
  if (t.query?.trim()) addQuery(f, t.query, 'query', errors);
  return f;
}

/** `https://***@o1.ingest.sentry.io/42`: the public key hidden. */
export function maskDsn(dsn: string): string {
  try {
    const u = new URL(dsn);
    u.username = '***';
    u.password = '';
    return u.toString();
  } catch {
    return '***';
  }
}

/** The config as the API shows it: secrets masked. */
export function maskForwarding(cfg: ForwardingConfig): ForwardingConfig {
  return {
    sentry: cfg.sentry ? { ...cfg.sentry, dsn: maskDsn(cfg.sentry.dsn) } : null,
    datadog: cfg.datadog ? { ...cfg.datadog, api_key: maskSecret(cfg.datadog.api_key) } : null,
  };
}

/** A PUT that sends back the masked form of a stored secret keeps the stored secret. */
export function mergeForwardingSecrets(next: ForwardingConfig, prev: ForwardingConfig | undefined): ForwardingConfig {
  const out: ForwardingConfig = structuredClone(next);
  if (out.sentry && prev?.sentry && out.sentry.dsn === maskDsn(prev.sentry.dsn)) out.sentry.dsn = prev.sentry.dsn;
  if (out.datadog && prev?.datadog && out.datadog.api_key === maskSecret(prev.datadog.api_key)) out.datadog.api_key = prev.datadog.api_key;
  return out;
}
