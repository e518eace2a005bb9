// E-mail sender: SMTP via nodemailer, one pooled transport per distinct server/credentials.
// Bodies come in plain text and HTML; every interpolated value in the HTML is escaped, since
// titles and summaries carry text from events (i.e. from end users).
// Errors: connection problems, timeouts and 4xx SMTP replies are retryable; 5xx replies
// (except 503, a session-state problem) and authentication/configuration failures are not.
import { createHash } from 'node:crypto';
import nodemailer from 'nodemailer';
import type { DeliveryResult, EmailConfig, Notification } from './types.js';
import type { PinnedAddress } from './url-guard.js';
import { DEFAULT_TIMEOUT_MS } from './webhook.js';

type Transporter = ReturnType<typeof nodemailer.createTransport>;

export interface EmailContent {
  subject: string;
  text: string;
  html: string;
  messageId: string;
  headers: Record<string, string>;
}

// ---- content --------------------------------------------------------------------------------

/** Pure: subject, bodies and headers of the message for one notification. */
export function buildEmail(n: Notification, cfg?: Pick<EmailConfig, 'from'>): EmailContent {
  const sev = (n.severity || 'unknown').toUpperCase();
  const tag = n.state === 'resolved' ? 'RESOLVED' : n.state === 'test' ? 'TEST' : sev;
  const title = oneLine(n.title) || '(no title)';
  const subject = truncate(`[${tag}] project ${oneLine(n.project_id)}: ${title}`, 250);
  const labels = Object.entries(n.labels ?? {});
  const facts: [string, string][] = [
    ['Severity', sev],
    ['State', n.state],
    ['Project', n.project_id],
    ['Rule', n.rule_name ? `${n.rule_name} (${n.rule_id})` : n.rule_id],
    ['Count', String(n.count)],
    ['First seen', n.first_seen],
    ['Last seen', n.last_seen],
    ...labels.map(([k, v]): [string, string] => [k, v]),
  ];
  const hasLink = /^https?:\/\//i.test(n.link ?? '');

  const text = [
    `[${tag}] ${title}`,
    '',
    ...facts.map(([k, v]) => `${k}: ${oneLine(v)}`),
    '',
    ...(n.summary ? [n.summary.trim(), ''] : []),
    ...(hasLink ? [`Open in dashboard: ${n.link}`] : []),
    `Notification id: ${n.id}`,
    '',
  ].join('\n');

  const color = n.state === 'resolved' ? '#2e7d32' : n.state === 'test' ? '#546e7a' : (SEVERITY_COLOR[sev.toLowerCase()] ?? '#546e7a');
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(subject)}</title></head>
<body style="font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#222;margin:0;padding:16px">
<div style="border-left:4px solid ${color};padding:4px 12px;margin-bottom:12px">
<div style="font-size:12px;color:${color};font-weight:bold">${esc(tag)}</div>
<h2 style="margin:4px 0 0;font-size:18px">${esc(title)}</h2>
</div>
<table style="border-collapse:collapse;font-size:14px">
${facts.map(([k, v]) => `<tr><td style="padding:2px 12px 2px 0;color:#666">${esc(k)}</td><td style="padding:2px 0">${esc(oneLine(v))}</td></tr>`).join('\n')}
</table>
${n.summary ? `<pre style="white-space:pre-wrap;font-family:Menlo,Consolas,monospace;font-size:13px;background:#f5f5f5;padding:8px;border-radius:4px">${esc(n.summary.trim())}</pre>` : ''}
${hasLink ? `<p><a href="${esc(n.link)}" style="display:inline-block;background:#1a73e8;color:#fff;padding:8px 14px;border-radius:4px;text-decoration:none">Open in dashboard</a></p>` : ''}
<p style="font-size:11px;color:#999">Notification id ${esc(n.id)} · PURAIFY Monitoring</p>
</body></html>
`;

  const messageId = `<${idForHeader(n.id)}@${domainOf(cfg?.from)}>`;
  const headers: Record<string, string> = {
    'X-Puraify-Notification-Id': headerSafe(n.id),
    'X-Puraify-Rule-Id': headerSafe(n.rule_id),
    'X-Puraify-Project-Id': headerSafe(n.project_id),
    'X-Puraify-Severity': headerSafe(n.severity),
    'X-Puraify-State': n.state,
    'Auto-Submitted': 'auto-generated',
    'X-Auto-Response-Suppress': 'All',
  };
  return { subject, text, html, messageId, headers };
}

const SEVERITY_COLOR: Record<string, string> = {
  critical: '#b71c1c',
  high: '#e65100',
  medium: '#f9a825',
  warning: '#f9a825',
  low: '#1565c0',
  info: '#0277bd',
  debug: '#757575',
};

export function escapeHtml(s: string): string {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
const esc = escapeHtml;

function oneLine(s: string | undefined): string {
  return String(s ?? '').replace(/\s+/g, ' ').trim();
}

function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = s.slice(0, max - 1);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

function headerSafe(v: string): string {
  return String(v ?? '').replace(/[\r\n\x00]/g, ' ').slice(0, 900);
}

/** Message-ID local part: the id itself when it is dot-atom text, else a hash of it (same id → same Message-ID). */
function idForHeader(id: string): string {
  return /^[A-Za-z0-9._-]{1,200}$/.test(id) && !/^\.|\.$|\.\./.test(id) ? id : createHash('sha256').update(id).digest('hex').slice(0, 40);
}

function domainOf(from: string | undefined): string {
  const m = /@([A-Za-z0-9.-]+)>?\s*$/.exec(from ?? '');
  return m && /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(m[1]) ? m[1].toLowerCase() : 'puraify-monitoring.invalid';
}

// ---- errors ---------------------------------------------------------------------------------

const RETRYABLE_CODES = new Set([
  'ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'EPROTOCOL', 'EMAXLIMIT',
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ETIMEOUT',
]);

/** Maps a nodemailer/SMTP error to a DeliveryResult (`status` carries the SMTP reply code). */
export function classifySmtpError(err: unknown): DeliveryResult {
  const e = (err ?? {}) as { code?: string; responseCode?: number; response?: string; message?: string; command?: string };
  const message = oneLine(e.response || e.message || String(err)).slice(0, 500);
  const rc = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const where = e.command ? ` (${e.command})` : '';
  if (rc !== undefined && rc >= 400 && rc < 600) {
    const retryable = rc < 500 || rc === 503;
    return { ok: false, retryable, status: rc, error: `SMTP ${rc}${where}: ${message}` };
  }
  const code = e.code ?? '';
  if (RETRYABLE_CODES.has(code)) return { ok: false, retryable: true, error: `${code}: ${message}` };
  // EAUTH without a code, ENOAUTH, ETLS (certificate/handshake), EENVELOPE, EMESSAGE, ECONFIG, …
  return { ok: false, retryable: false, error: `${code || 'error'}: ${message}` };
}

// ---- sender ---------------------------------------------------------------------------------

export interface EmailSenderOptions {
  /** Connection and greeting timeout, ms (default 10 s); socket inactivity timeout is 3× that, at least 30 s. */
  timeoutMs?: number;
  /** Transports kept at most (least recently used closed first). */
  maxTransports?: number;
  /** A transport unused this long is closed. */
  idleMs?: number;
}

/** Sends e-mail notifications; keeps one pooled SMTP transport per server/credentials. */
export class EmailSender {
  private readonly transports = new Map<string, { t: Transporter; lastUsed: number }>();
  private readonly timeoutMs: number;
  private readonly maxTransports: number;
  private readonly idleMs: number;

  constructor(opts: EmailSenderOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxTransports = opts.maxTransports ?? 20;
    this.idleMs = opts.idleMs ?? 10 * 60_000;
  }

  /**
   * With `pinned` (the address the URL guard checked for cfg.host), the connection goes to that
   * address; TLS still presents and verifies cfg.host as the server name.
   */
  async send(cfg: EmailConfig, n: Notification, opts: { pinned?: PinnedAddress } = {}): Promise<DeliveryResult> {
    const content = buildEmail(n, cfg);
    let transport: Transporter;
    try {
      transport = this.transportFor(cfg, opts.pinned);
    } catch (err) {
      return { ok: false, retryable: false, error: `invalid SMTP settings: ${(err as Error).message}` };
    }
    try {
      const info = await transport.sendMail({
        from: cfg.from,
        to: cfg.to,
        subject: content.subject,
        text: content.text,
        html: content.html,
        messageId: content.messageId,
        headers: content.headers,
        disableFileAccess: true,
        disableUrlAccess: true,
      });
      const accepted = (info.accepted ?? []).length;
      if (accepted === 0 && (info.rejected ?? []).length > 0) {
        return { ok: false, retryable: false, error: `all recipients rejected: ${(info.rejected ?? []).join(', ')}` };
      }
      return { ok: true };
    } catch (err) {
      return classifySmtpError(err);
    }
  }

  /** Closes every cached transport (and its pooled connections). */
  close(): void {
    for (const { t } of this.transports.values()) t.close();
    this.transports.clear();
  }

  private transportFor(cfg: EmailConfig, pinned: PinnedAddress | undefined): Transporter {
    const now = Date.now();
    for (const [k, v] of this.transports) {
      if (now - v.lastUsed > this.idleMs) {
        v.t.close();
        this.transports.delete(k);
      }
    }
    const key = createHash('sha256')
      .update(JSON.stringify([cfg.host.toLowerCase(), pinned?.address ?? '', cfg.port, !!cfg.secure, cfg.user ?? '', cfg.password ?? '']))
      .digest('hex');
    const hit = this.transports.get(key);
    if (hit) {
      hit.lastUsed = now;
      this.transports.delete(key); // re-insert: Map order is the LRU order
      this.transports.set(key, hit);
      return hit.t;
    }
    const t = nodemailer.createTransport({
      pool: true,
      maxConnections: 2,
      maxMessages: 100,
      maxRequeues: 1,
      idleTimeout: 60_000,
      // the checked address, not the name: nodemailer would resolve the name again (DNS rebinding)
      host: pinned?.address ?? cfg.host,
      ...(pinned ? { tls: { servername: cfg.host } } : {}),
      port: cfg.port,
      secure: !!cfg.secure,
      auth: cfg.user ? { user: cfg.user, pass: cfg.password ?? '' } : undefined,
      connectionTimeout: this.timeoutMs,
      greetingTimeout: this.timeoutMs,
      socketTimeout: Math.max(this.timeoutMs * 3, 30_000),
      dnsTimeout: this.timeoutMs,
      disableFileAccess: true,
      disableUrlAccess: true,
    });
    // pooled transports report background connection errors as events; a send sees its own error
    t.on('error', () => {});
    this.transports.set(key, { t, lastUsed: now });
    while (this.transports.size > this.maxTransports) {
      const [oldKey, old] = this.transports.entries().next().value as [string, { t: Transporter; lastUsed: number }];
      old.t.close();
      this.transports.delete(oldKey);
    }
    return t;
  }
}
