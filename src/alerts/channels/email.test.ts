import dns from 'node:dns';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildEmail, classifySmtpError, EmailSender } from './email.js';
import { createSenders } from './index.js';
import type { EmailConfig, Notification } from './types.js';

function notification(over: Partial<Notification> = {}): Notification {
  return {
    id: 'ntf_mail_1',
    state: 'firing',
    rule_id: 'rule_9',
    rule_name: 'Token failures',
    severity: 'critical',
    project_id: 'pf_123',
    title: 'Failed to send message – token expired',
    summary: 'Slack said invalid_auth 12 times.\nSecond line & more',
    count: 12,
    first_seen: '2025-01-01T10:00:00.000Z',
    last_seen: '2025-01-01T10:05:00.000Z',
    labels: { engine: 'execution', platform: 'Slack' },
    link: 'https://monitor.puraify.test/alerts/ntf_mail_1?x=1&y=2',
    ...over,
  };
}

// ---- a minimal MIME reader, enough for nodemailer's output ----

function splitMessage(raw: string): { headers: Map<string, string>; body: string } {
  const idx = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, idx).replace(/\r\n[ \t]+/g, ' '); // unfold
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const c = line.indexOf(':');
    headers.set(line.slice(0, c).trim().toLowerCase(), line.slice(c + 1).trim());
  }
  return { headers, body: raw.slice(idx + 4) };
}

function decodeWords(v: string): string {
  return v.replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=(\s+(?==\?))?/g, (_m, _cs, enc: string, text: string) => {
    if (enc.toUpperCase() === 'B') return Buffer.from(text, 'base64').toString('utf8');
    const bytes = text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  });
}

function decodeBody(body: string, cte: string | undefined): string {
  const enc = (cte ?? '7bit').toLowerCase();
  if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (enc === 'quoted-printable') {
    const bytes = body.replace(/=\r\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body;
}

function parts(raw: string): { type: string; text: string }[] {
  const { headers, body } = splitMessage(raw);
  const ct = headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(ct)?.[1];
  if (!ct.toLowerCase().startsWith('multipart/') || !boundary) {
    return [{ type: ct.split(';')[0].toLowerCase(), text: decodeBody(body, headers.get('content-transfer-encoding')) }];
  }
  const out: { type: string; text: string }[] = [];
  const pieces = body.split(`--${boundary}`).slice(1);
  for (const p of pieces) {
    if (p.startsWith('--')) break;
    out.push(...parts(p.replace(/^\r\n/, '').replace(/\r\n$/, '')));
  }
  return out;
}

// ---- servers ----

interface Captured {
  raw: string;
  from: string;
  to: string[];
}

async function startSmtp(
  extra: Partial<SMTPServerOptions> = {},
): Promise<{ server: SMTPServer; port: number; mails: Captured[]; connections: () => number }> {
  const mails: Captured[] = [];
  let connections = 0;
  const server = new SMTPServer({
    authOptional: true,
    onConnect(_session, cb) {
      connections++;
      cb();
    },
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          raw: Buffer.concat(chunks).toString('utf8'),
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
        });
        callback();
      });
    },
    ...extra,
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.server.address() as AddressInfo).port;
  return { server, port, mails, connections: () => connections };
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

describe('email channel against a real SMTP server', () => {
  const servers: SMTPServer[] = [];
  const senders = createSenders({ allowPrivate: true, timeoutMs: 2000 });
  let ok: Awaited<ReturnType<typeof startSmtp>>;
  let rejecting550: Awaited<ReturnType<typeof startSmtp>>;
  let rejecting451: Awaited<ReturnType<typeof startSmtp>>;
  let closedPort: number;

  const cfg = (port: number, over: Partial<EmailConfig> = {}): EmailConfig => ({
    host: '127.0.0.1',
    port,
    secure: false,
    from: '"PURAIFY Alerts" <alerts@puraify.test>',
    to: ['ops@example.com', 'oncall@example.com'],
    ...over,
  });

  beforeAll(async () => {
    ok = await startSmtp();
    rejecting550 = await startSmtp({
      onRcptTo(_addr, _session, cb) {
        cb(smtpError(550, 'mailbox unavailable'));
      },
    });
    rejecting451 = await startSmtp({
      onData(stream, _session, cb) {
        stream.resume();
        stream.on('end', () => cb(smtpError(451, 'try again later')));
      },
    });
    servers.push(ok.server, rejecting550.server, rejecting451.server);
    const tmp = net.createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    closedPort = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
  });
  afterAll(async () => {
    senders.close();
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  });

  it('delivers subject, recipients, plain and HTML parts with escaping', async () => {
    const n = notification({ title: 'Failed to send message – token expired <script>alert(1)</script>' });
    const res = await senders.send('email', cfg(ok.port), n);
    expect(res).toEqual({ ok: true });
    expect(ok.mails).toHaveLength(1);
    const mail = ok.mails[0];
    expect(mail.from).toBe('alerts@puraify.test');
    expect(mail.to).toEqual(['ops@example.com', 'oncall@example.com']);

    const { headers } = splitMessage(mail.raw);
    expect(decodeWords(headers.get('subject')!)).toBe('[CRITICAL] project pf_123: Failed to send message – token expired <script>alert(1)</script>');
    expect(headers.get('to')).toContain('ops@example.com');
    expect(headers.get('to')).toContain('oncall@example.com');
    expect(headers.get('x-puraify-notification-id')).toBe('ntf_mail_1');
    expect(headers.get('message-id')).toBe('<ntf_mail_1@puraify.test>');
    expect(headers.get('auto-submitted')).toBe('auto-generated');

    const ps = parts(mail.raw);
    const plain = ps.find((p) => p.type === 'text/plain')!;
    const html = ps.find((p) => p.type === 'text/html')!;
    expect(plain).toBeDefined();
    expect(html).toBeDefined();
    expect(plain.text).toContain('[CRITICAL] Failed to send message – token expired <script>alert(1)</script>');
    expect(plain.text).toContain('Project: pf_123');
    expect(plain.text).toContain('Count: 12');
    expect(plain.text).toContain('platform: Slack');
    expect(plain.text).toContain('Second line & more');
    expect(plain.text).toContain(`Open in dashboard: ${n.link}`);
    expect(html.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html.text).not.toContain('<script>');
    expect(html.text).toContain('Second line &amp; more');
    expect(html.text).toContain('href="https://monitor.puraify.test/alerts/ntf_mail_1?x=1&amp;y=2"');
    expect(html.text).toContain('2025-01-01T10:05:00.000Z');
  });

  it('reuses the cached transport for the same config', async () => {
    const before = ok.mails.length;
    const r1 = await senders.send('email', cfg(ok.port), notification({ id: 'a1', state: 'resolved' }));
    const r2 = await senders.send('email', cfg(ok.port), notification({ id: 'a2', state: 'test' }));
    expect(r1.ok && r2.ok).toBe(true);
    expect(ok.mails.length).toBe(before + 2);
    expect(ok.connections()).toBe(1); // one pooled connection carried all three messages
    expect(decodeWords(splitMessage(ok.mails.at(-2)!.raw).headers.get('subject')!)).toMatch(/^\[RESOLVED\] project pf_123: /);
    expect(decodeWords(splitMessage(ok.mails.at(-1)!.raw).headers.get('subject')!)).toMatch(/^\[TEST\] project pf_123: /);
  });

  it('550 is permanent', async () => {
    const res = await senders.send('email', cfg(rejecting550.port), notification());
    expect(res).toMatchObject({ ok: false, retryable: false, status: 550 });
  });

  it('451 is retryable', async () => {
    const res = await senders.send('email', cfg(rejecting451.port), notification());
    expect(res).toMatchObject({ ok: false, retryable: true, status: 451 });
  });

  it('connection refused is retryable', async () => {
    const res = await senders.send('email', cfg(closedPort), notification());
    expect(res).toMatchObject({ ok: false, retryable: true });
  });

  it('refuses a loopback SMTP host when private targets are not allowed', async () => {
    const guarded = createSenders({ allowPrivate: false });
    const before = ok.mails.length;
    const res = await guarded.send('email', cfg(ok.port), notification());
    guarded.close();
    expect(res).toMatchObject({ ok: false, retryable: false });
    expect(ok.mails.length).toBe(before);
  });

  it('rejects invalid e-mail configs', async () => {
    expect(await senders.send('email', cfg(ok.port, { to: [] }), notification())).toMatchObject({ ok: false, retryable: false });
    expect(await senders.send('email', cfg(ok.port, { to: ['not-an-address'] }), notification())).toMatchObject({ ok: false, retryable: false });
  });
});

describe('email content and error classification (pure)', () => {
  it('hashes ids that are not valid Message-ID text', () => {
    const e = buildEmail(notification({ id: 'a b<c>' }), { from: 'x@y.test' });
    expect(e.messageId).toMatch(/^<[0-9a-f]{40}@y\.test>$/);
    expect(buildEmail(notification({ id: 'a b<c>' }), { from: 'x@y.test' }).messageId).toBe(e.messageId);
  });
  it('keeps the subject on one line', () => {
    expect(buildEmail(notification({ title: 'a\r\nBcc: evil@x.test' })).subject).toBe('[CRITICAL] project pf_123: a Bcc: evil@x.test');
  });
  it('classifies SMTP errors', () => {
    expect(classifySmtpError(Object.assign(new Error('x'), { responseCode: 421 }))).toMatchObject({ retryable: true });
    expect(classifySmtpError(Object.assign(new Error('x'), { responseCode: 452 }))).toMatchObject({ retryable: true });
    expect(classifySmtpError(Object.assign(new Error('x'), { responseCode: 554 }))).toMatchObject({ retryable: false });
    expect(classifySmtpError(Object.assign(new Error('x'), { code: 'EAUTH', responseCode: 535 }))).toMatchObject({ retryable: false });
    expect(classifySmtpError(Object.assign(new Error('x'), { code: 'ETIMEDOUT' }))).toMatchObject({ retryable: true });
    expect(classifySmtpError(Object.assign(new Error('x'), { code: 'ECONNECTION' }))).toMatchObject({ retryable: true });
    expect(classifySmtpError(Object.assign(new Error('x'), { code: 'EENVELOPE' }))).toMatchObject({ retryable: false });
  });
});

// The SMTP host is per-channel user input: the connection goes to the address the URL guard checked,
// TLS still names the host (SNI and certificate), so a DNS-rebinding name cannot point it elsewhere.
describe('email connection pinned to the checked address', () => {
  const NAME = 'smtp.pinned.invalid'; // `.invalid` never resolves: mail can only arrive through the pin
  const mailCfg = (port: number, over: Partial<EmailConfig> = {}): EmailConfig => ({ host: NAME, port, secure: false, from: 'alerts@puraify.test', to: ['ops@example.com'], ...over });
  afterEach(() => { vi.restoreAllMocks(); });

  it('delivers to the pinned address for a host name that does not resolve', async () => {
    const smtp = await startSmtp();
    const sender = new EmailSender({ timeoutMs: 2000 });
    try {
      const res = await sender.send(mailCfg(smtp.port), notification(), { pinned: { address: '127.0.0.1', family: 4 } });
      expect(res).toEqual({ ok: true });
      expect(smtp.mails).toHaveLength(1);
    } finally {
      sender.close();
      await new Promise<void>((r) => smtp.server.close(() => r()));
    }
  });

  it('presents the host name, not the address, as the TLS server name', async () => {
    const names: string[] = [];
    // the built-in self-signed certificate: the client refuses it, after the name was sent
    const smtp = await startSmtp({ secure: true, disabledCommands: [], SNICallback: (name: string, cb: (err: Error | null, ctx?: undefined) => void) => { names.push(name); cb(null); } });
    smtp.server.on('error', () => {}); // the refused handshake, seen from the server
    const sender = new EmailSender({ timeoutMs: 2000 });
    try {
      const res = await sender.send(mailCfg(smtp.port, { secure: true }), notification(), { pinned: { address: '127.0.0.1', family: 4 } });
      expect(res.ok).toBe(false);
      expect(names).toEqual([NAME]);
      expect(smtp.mails).toHaveLength(0);
    } finally {
      sender.close();
      await new Promise<void>((r) => smtp.server.close(() => r()));
    }
  });

  it('a channel\'s send connects to the address checked, not to what the name resolves to later (DNS rebinding)', async () => {
    const smtp = await startSmtp();
    const REBIND = 'smtp.rebind.test';
    const PUBLIC = '2001:4860:4860::8888';
    const realPromisesLookup = dns.promises.lookup.bind(dns.promises);
    vi.spyOn(dns.promises, 'lookup').mockImplementation((async (host: string, opts: any) => {
      if (host === REBIND) return opts?.all ? [{ address: PUBLIC, family: 6 }] : { address: PUBLIC, family: 6 };
      return realPromisesLookup(host, opts);
    }) as typeof dns.promises.lookup);
    // every later resolution of the name (nodemailer's resolve4/resolve6/lookup) answers loopback
    const rebound: string[] = [];
    const loopback = (kind: string, answer: (cb: any) => void) => (host: string, ...rest: any[]) => {
      const cb = rest.at(-1);
      if (host === REBIND) { rebound.push(kind); return answer(cb); }
      return (dnsReal as any)[kind](host, ...rest);
    };
    const dnsReal = { resolve4: dns.resolve4, resolve6: dns.resolve6, lookup: dns.lookup };
    vi.spyOn(dns, 'resolve4').mockImplementation(loopback('resolve4', (cb) => cb(null, ['127.0.0.1'])) as any);
    vi.spyOn(dns, 'resolve6').mockImplementation(loopback('resolve6', (cb) => cb(Object.assign(new Error('none'), { code: 'ENODATA' }))) as any);
    vi.spyOn(dns, 'lookup').mockImplementation(loopback('lookup', (cb) => cb(null, [{ address: '127.0.0.1', family: 4 }])) as any);
    const senders = createSenders({ allowPrivate: false, timeoutMs: 500 });
    try {
      const res = await senders.send('email', { host: REBIND, port: smtp.port, secure: false, from: 'alerts@puraify.test', to: ['ops@example.com'] }, notification());
      // the attempt went to the public address (unreachable or timed out here), never to loopback
      expect(res.ok).toBe(false);
      expect(res.error).not.toMatch(/target refused/);
      expect(rebound).toEqual([]);
      expect(smtp.connections()).toBe(0);
    } finally {
      senders.close();
      await new Promise<void>((r) => smtp.server.close(() => r()));
    }
  });
});
