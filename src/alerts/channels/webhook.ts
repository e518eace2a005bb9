// Generic JSON webhook sender, and the one HTTP post + classify implementation that the Slack and
// Feedback Loop senders reuse.
//
// Signing (when the channel has a secret):
//   X-Puraify-Timestamp: <Unix seconds>
//   X-Puraify-Signature: sha256=<hex HMAC-SHA256(secret, `${timestamp}.${rawBody}`)>
//   X-Puraify-Notification-Id: <notification id, stable across retries: deduplicate on it>
// The timestamp is inside the signed string so a captured request cannot be replayed later with a
// fresh timestamp; receivers should also reject timestamps far from their clock (verifySignature's
// toleranceSeconds option).
//
// Redirects are not followed (a 3xx is a permanent failure): following one would let a public URL
// send the request to an address the URL guard refused.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http, { validateHeaderName, validateHeaderValue } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { checkUrlSyntax, type PinnedAddress } from './url-guard.js';
import type { DeliveryResult, FeedbackLoopConfig, Notification, WebhookConfig } from './types.js';
import { RESERVED_HEADER_NAMES, RESERVED_HEADER_PREFIX } from './types.js';

export const DEFAULT_TIMEOUT_MS = 10_000;
export const USER_AGENT = 'PURAIFY-Monitoring/0.1 (alerts)';
/** Upper bound on a Retry-After the senders report, so a bogus header cannot park a delivery for years. */
export const MAX_RETRY_AFTER_MS = 24 * 3600 * 1000;

export const SIGNATURE_HEADER = 'X-Puraify-Signature';
export const TIMESTAMP_HEADER = 'X-Puraify-Timestamp';
export const NOTIFICATION_ID_HEADER = 'X-Puraify-Notification-Id';

export interface PostOptions {
  timeoutMs?: number;
  /** Connect to this address (checked by the URL guard) instead of resolving the host again. */
  pinned?: PinnedAddress;
  /** Extra request headers (already validated). */
  headers?: Record<string, string>;
}

// ---- signing --------------------------------------------------------------------------------

/** Hex HMAC-SHA256 of `${timestamp}.${body}` (body as the exact bytes sent). */
export function signBody(secret: string, timestamp: string | number, body: string | Buffer): string {
  const h = createHmac('sha256', secret);
  h.update(`${timestamp}.`);
  h.update(body);
  return h.digest('hex');
}

/**
 * Checks an X-Puraify-Signature header (`sha256=<hex>`, or the bare hex) against the raw body and
 * the X-Puraify-Timestamp header, in constant time. With `toleranceSeconds`, also refuses
 * timestamps further than that from `nowMs` (default Date.now()).
 */
export function verifySignature(
  secret: string,
  timestamp: string | number,
  body: string | Buffer,
  header: string | null | undefined,
  opts: { toleranceSeconds?: number; nowMs?: number } = {},
): boolean {
  if (typeof header !== 'string') return false;
  const ts = String(timestamp);
  if (!/^\d{1,12}$/.test(ts)) return false;
  if (opts.toleranceSeconds !== undefined) {
    const now = (opts.nowMs ?? Date.now()) / 1000;
    if (Math.abs(now - Number(ts)) > opts.toleranceSeconds) return false;
  }
  const given = header.trim().replace(/^sha256=/i, '');
  if (!/^[0-9a-fA-F]{64}$/.test(given)) return false;
  const expected = Buffer.from(signBody(secret, ts, body), 'hex');
  return timingSafeEqual(expected, Buffer.from(given, 'hex'));
}

/** The headers a signed delivery carries (timestamp and id always; signature only with a secret). */
export function deliveryHeaders(n: Notification, body: string, secret: string | undefined, nowMs = Date.now()): Record<string, string> {
  const ts = String(Math.floor(nowMs / 1000));
  const h: Record<string, string> = {
    [TIMESTAMP_HEADER]: ts,
    [NOTIFICATION_ID_HEADER]: headerSafe(n.id),
  };
  if (secret) h[SIGNATURE_HEADER] = `sha256=${signBody(secret, ts, body)}`;
  return h;
}

// ---- payloads -------------------------------------------------------------------------------

/** Body of a generic webhook: the notification, wrapped with an event name. */
export function buildWebhookPayload(n: Notification, nowMs = Date.now()): Record<string, unknown> {
  return {
    event: `alert.${n.state}`,
    notification_id: n.id,
    sent_at: new Date(nowMs).toISOString(),
    notification: n,
  };
}

/**
 * Body for the Feedback Loop engine: what to tell the end user. `user_message` falls back to the
 * title when the rule did not set one.
 */
export function buildFeedbackPayload(n: Notification, nowMs = Date.now()): Record<string, unknown> {
  return {
    event: `alert.${n.state}`,
    notification_id: n.id,
    project_id: n.project_id,
    severity: n.severity,
    state: n.state,
    title: n.title,
    user_message: n.user_message ?? n.title,
    link: n.link,
    summary: n.summary,
    rule_id: n.rule_id,
    rule_name: n.rule_name,
    count: n.count,
    first_seen: n.first_seen,
    last_seen: n.last_seen,
    labels: n.labels,
    sent_at: new Date(nowMs).toISOString(),
  };
}

// ---- HTTP -----------------------------------------------------------------------------------

/** Why a configured header cannot be sent, or null. */
export function headerProblem(name: string, value: string): string | null {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) return `invalid header name ${JSON.stringify(name)}`;
  const lower = name.toLowerCase();
  if (RESERVED_HEADER_NAMES.has(lower) || lower.startsWith(RESERVED_HEADER_PREFIX)) return `header ${name} is reserved`;
  if (typeof value !== 'string' || /[\r\n\x00]/.test(value)) return `invalid value for header ${name}`;
  return null;
}

/**
 * POSTs a JSON body and classifies the outcome. The one HTTP implementation of the channels:
 *  2xx → ok; 429 / 408 / 5xx / network error / timeout → retryable (Retry-After honoured);
 *  3xx (not followed) and other 4xx → permanent.
 * With `pinned`, the connection goes to that address (the one the URL guard checked) whatever the
 * name resolves to now; the Host header and TLS SNI still name the URL's host.
 */
export function postJson(url: string, body: string, opts: PostOptions = {}): Promise<DeliveryResult> {
  return postBody(url, body, 'application/json; charset=utf-8', opts);
}

/** postJson for any body and content type (forwarding: Sentry envelopes, gzipped Datadog logs). */
export async function postBody(url: string, body: string | Uint8Array, contentType: string, opts: PostOptions = {}): Promise<DeliveryResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const syntax = checkUrlSyntax(url);
  if (!syntax.ok) return { ok: false, retryable: false, error: `request refused: ${syntax.reason}` };
  const headers: Record<string, string> = {};
  try {
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      validateHeaderName(k);
      validateHeaderValue(k, v);
      headers[k.toLowerCase()] = v;
    }
  } catch (err) {
    return { ok: false, retryable: false, error: `invalid request headers: ${(err as Error).message}` };
  }
  const data = Buffer.from(body);
  headers['content-type'] = contentType;
  headers['user-agent'] = USER_AGENT;
  headers['content-length'] = String(data.length);
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  const signal = AbortSignal.timeout(timeoutMs);
  let res: http.IncomingMessage;
  try {
    res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = lib.request(u, { method: 'POST', headers, signal, agent: false, ...(opts.pinned ? { lookup: pinnedLookup(opts.pinned) } : {}) }, resolve);
      req.on('error', reject);
      req.end(data);
    });
  } catch (err) {
    return classifyRequestError(err, timeoutMs);
  }
  const resHeaders = new Headers();
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) resHeaders.set(k, Array.isArray(v) ? v.join(', ') : v);
  const snippet = await readSnippet(res, 512);
  return classifyHttpResponse(res.statusCode ?? 0, resHeaders, snippet);
}

/** A dns.lookup stand-in that answers with the checked address only. */
function pinnedLookup(pinned: PinnedAddress): LookupFunction {
  return ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
    if (options?.all) cb(null, [{ address: pinned.address, family: pinned.family }]);
    else cb(null, pinned.address, pinned.family);
  }) as unknown as LookupFunction;
}

/** An HTTP status (and Retry-After) → a DeliveryResult. */
export function classifyHttpResponse(status: number, headers: Headers, bodySnippet = '', nowMs = Date.now()): DeliveryResult {
  if (status >= 200 && status < 300) return { ok: true, status };
  const detail = bodySnippet ? `: ${bodySnippet}` : '';
  if (status >= 300 && status < 400) {
    return { ok: false, retryable: false, status, error: `HTTP ${status} redirect (to ${headers.get('location') ?? '?'}) is not followed` };
  }
  if (status === 429 || status === 408 || status >= 500) {
    const retryAfterMs = parseRetryAfter(headers.get('retry-after'), nowMs);
    return { ok: false, retryable: true, status, error: `HTTP ${status}${detail}`, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }
  return { ok: false, retryable: false, status, error: `HTTP ${status}${detail}` };
}

/** Retry-After as delta-seconds or an HTTP date → milliseconds from now (≥ 0, capped), or undefined. */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (value == null) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS);
  if (!/[a-z]/i.test(v)) return undefined; // not an HTTP date either (e.g. "1.5", "-3")
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - nowMs), MAX_RETRY_AFTER_MS);
}

function classifyRequestError(err: unknown, timeoutMs: number): DeliveryResult {
  const e = err as Error & { code?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
    return { ok: false, retryable: true, error: `timed out after ${timeoutMs} ms` };
  }
  return { ok: false, retryable: true, error: `network error: ${`${e?.code ? e.code + ' ' : ''}${e?.message ?? String(err)}`.trim()}` };
}

/** First few hundred characters of a response body (for error messages), then the rest is dropped. */
async function readSnippet(res: http.IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of res) {
      chunks.push(c as Buffer);
      size += (c as Buffer).length;
      if (size >= max * 4) break;
    }
  } catch {
    // a body that fails mid-way (timeout, reset) does not change the status we already have
  } finally {
    res.destroy();
  }
  const text = Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function headerSafe(v: string): string {
  return v.replace(/[\r\n\x00]/g, ' ');
}

// ---- senders --------------------------------------------------------------------------------

/** Sends a notification to a generic webhook (URL already guarded by the caller). */
export async function sendWebhook(cfg: WebhookConfig, n: Notification, opts: { timeoutMs?: number; pinned?: PinnedAddress } = {}): Promise<DeliveryResult> {
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(cfg.headers ?? {})) {
    const problem = headerProblem(k, v);
    if (problem) return { ok: false, retryable: false, error: problem };
    extra[k] = v;
  }
  const body = JSON.stringify(buildWebhookPayload(n));
  return postJson(cfg.url, body, { timeoutMs: opts.timeoutMs, pinned: opts.pinned, headers: { ...extra, ...deliveryHeaders(n, body, cfg.secret) } });
}

/** Sends a notification to the Feedback Loop engine (URL already guarded by the caller). */
export async function sendFeedbackLoop(cfg: FeedbackLoopConfig, n: Notification, opts: { timeoutMs?: number; pinned?: PinnedAddress } = {}): Promise<DeliveryResult> {
  const body = JSON.stringify(buildFeedbackPayload(n));
  return postJson(cfg.url, body, { timeoutMs: opts.timeoutMs, pinned: opts.pinned, headers: deliveryHeaders(n, body, cfg.secret) });
}
