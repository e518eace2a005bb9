import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSlackMessage, SLACK_LIMITS } from './slack.js';
import { createSenders } from './index.js';
import type { Notification } from './types.js';

function notification(over: Partial<Notification> = {}): Notification {
  return {
    id: 'ntf_01HZX5',
    state: 'firing',
    rule_id: 'rule_7',
    rule_name: 'Slack delivery failures',
    severity: 'critical',
    project_id: 'pf_123',
    title: 'Failed to send message – token expired',
    summary: '12 events from execution/Slack in the last 5 minutes.\nLast error: invalid_auth',
    count: 12,
    first_seen: '2025-01-01T10:00:00.000Z',
    last_seen: '2025-01-01T10:05:00.000Z',
    labels: { engine: 'execution', platform: 'Slack' },
    link: 'https://monitor.puraify.test/projects/pf_123/alerts/ntf_01HZX5',
    ...over,
  };
}

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Structural Block Kit check, with Slack's documented limits. */
function assertValidBlockKit(msg: Json): void {
  expect(typeof msg.text).toBe('string');
  expect(msg.text.length).toBeGreaterThan(0);
  expect(msg.text.length).toBeLessThanOrEqual(SLACK_LIMITS.fallbackText);
  expect(Array.isArray(msg.blocks)).toBe(true);
  expect(msg.blocks.length).toBeGreaterThan(0);
  expect(msg.blocks.length).toBeLessThanOrEqual(50);
  const textObj = (t: Json, types: string[], max: number) => {
    expect(types).toContain(t.type);
    expect(typeof t.text).toBe('string');
    expect(t.text.length).toBeGreaterThanOrEqual(1);
    expect(t.text.length).toBeLessThanOrEqual(max);
    if (t.type === 'mrkdwn') expect(t.emoji).toBeUndefined();
  };
  for (const b of msg.blocks) {
    expect(['header', 'section', 'context', 'actions', 'divider']).toContain(b.type);
    switch (b.type) {
      case 'header':
        textObj(b.text, ['plain_text'], 150);
        break;
      case 'section':
        expect(b.text !== undefined || b.fields !== undefined).toBe(true);
        if (b.text) textObj(b.text, ['plain_text', 'mrkdwn'], 3000);
        if (b.fields) {
          expect(b.fields.length).toBeGreaterThanOrEqual(1);
          expect(b.fields.length).toBeLessThanOrEqual(10);
          for (const f of b.fields) textObj(f, ['plain_text', 'mrkdwn'], 2000);
        }
        break;
      case 'context':
        expect(b.elements.length).toBeGreaterThanOrEqual(1);
        expect(b.elements.length).toBeLessThanOrEqual(10);
        for (const e of b.elements) textObj(e, ['plain_text', 'mrkdwn'], 3000);
        break;
      case 'actions':
        expect(b.elements.length).toBeGreaterThanOrEqual(1);
        expect(b.elements.length).toBeLessThanOrEqual(25);
        for (const e of b.elements) {
          expect(e.type).toBe('button');
          textObj(e.text, ['plain_text'], 75);
          expect(typeof e.url).toBe('string');
          expect(e.url.length).toBeLessThanOrEqual(3000);
          expect(e.url).toMatch(/^https?:\/\//);
          expect(e.action_id.length).toBeLessThanOrEqual(255);
          if (e.style !== undefined) expect(['primary', 'danger']).toContain(e.style);
        }
        break;
    }
  }
}

const allText = (msg: Json): string => JSON.stringify(msg);

describe('slack channel against a loopback receiver', () => {
  let server: http.Server;
  let base: string;
  const received: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  const senders = createSenders({ allowPrivate: true, timeoutMs: 2000 });
  const guarded = createSenders({ allowPrivate: false, timeoutMs: 2000 });

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        if (req.url?.includes('/gone')) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('no_service');
        } else if (req.url?.includes('/limited')) {
          res.writeHead(429, { 'retry-after': '30' }).end('rate_limited');
        } else {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    senders.close();
    guarded.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('posts a valid Block Kit message that carries the facts', async () => {
    const n = notification();
    const res = await senders.send('slack', { webhook_url: `${base}/services/T000/B000/XXXX` }, n);
    expect(res).toEqual({ ok: true, status: 200 });
    const got = received.at(-1)!;
    expect(got.path).toBe('/services/T000/B000/XXXX');
    expect(got.headers['content-type']).toMatch(/^application\/json/);
    const msg = JSON.parse(got.body);
    assertValidBlockKit(msg);

    expect(msg.blocks.map((b: Json) => b.type)).toEqual(['header', 'section', 'section', 'context', 'actions']);
    expect(msg.blocks[0].text.text).toContain('Failed to send message – token expired');
    const fields: string[] = msg.blocks[1].fields.map((f: Json) => f.text);
    expect(fields).toContain('*Severity*\nCRITICAL');
    expect(fields).toContain('*Project*\npf_123');
    expect(fields).toContain('*Count*\n12');
    expect(fields).toContain('*First seen*\n2025-01-01T10:00:00.000Z');
    expect(fields).toContain('*Last seen*\n2025-01-01T10:05:00.000Z');
    expect(fields).toContain('*platform*\nSlack');
    expect(msg.blocks[2].text.type).toBe('mrkdwn');
    expect(msg.blocks[2].text.text).toContain('Last error: invalid_auth');
    expect(msg.blocks[4].elements[0].url).toBe(n.link);
    expect(msg.text).toContain('pf_123');
    expect(msg.text).toContain('token expired');
    expect(allText(msg)).toContain('Slack delivery failures');
  });

  it('truncates oversized content to Slack limits', async () => {
    const labels: Record<string, string> = {};
    for (let i = 0; i < 20; i++) labels[`label_${i}`] = 'v'.repeat(3000);
    const n = notification({
      title: '😀'.repeat(200),
      summary: 'x&'.repeat(4000),
      labels,
      link: `https://monitor.puraify.test/${'a'.repeat(5000)}`,
      rule_name: 'r'.repeat(5000),
    });
    const res = await senders.send('slack', { webhook_url: `${base}/big` }, n);
    expect(res.ok).toBe(true);
    const msg = JSON.parse(received.at(-1)!.body);
    assertValidBlockKit(msg);
    expect(msg.blocks[1].fields).toHaveLength(10);
    // no lone surrogate left at the cut
    expect(msg.blocks[0].text.text).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    expect(msg.blocks[2].text.text.endsWith('…')).toBe(true);
    expect(msg.blocks[2].text.text).not.toMatch(/&[a-z]*…$/);
  });

  it('escapes mrkdwn control characters from event text', () => {
    const msg = buildSlackMessage(notification({ title: '<!channel> boom & <https://evil|click>', summary: 'see <@U123>' }));
    assertValidBlockKit(msg);
    expect(msg.text).toContain('&lt;!channel&gt; boom &amp; &lt;https://evil|click&gt;');
    const mrkdwnTexts = msg.blocks.flatMap((b: Json) => [b.text, ...(b.fields ?? []), ...(b.elements ?? [])]).filter((t: Json) => t?.type === 'mrkdwn');
    for (const t of mrkdwnTexts) expect(t.text).not.toMatch(/<[!@#]/);
    expect((msg.blocks[2] as Json).text.text).toBe('see &lt;@U123&gt;');
  });

  it('omits the summary block and button when empty / not a URL', () => {
    const msg = buildSlackMessage(notification({ summary: '  ', link: '', state: 'resolved' }));
    assertValidBlockKit(msg);
    expect(msg.blocks.map((b) => b.type)).toEqual(['header', 'section', 'context']);
    expect(msg.blocks[0].type === 'header' && msg.blocks[0].text.text).toMatch(/^✅ Resolved: /);
  });

  it('classifies Slack error responses', async () => {
    const gone = await senders.send('slack', { webhook_url: `${base}/gone` }, notification());
    expect(gone).toMatchObject({ ok: false, retryable: false, status: 404 });
    expect(gone.ok === false && gone.error).toContain('no_service');
    const limited = await senders.send('slack', { webhook_url: `${base}/limited` }, notification());
    expect(limited).toMatchObject({ ok: false, retryable: true, status: 429, retryAfterMs: 30_000 });
  });

  it('refuses a loopback webhook when private targets are not allowed, without sending', async () => {
    const before = received.length;
    const res = await guarded.send('slack', { webhook_url: `${base}/services/x` }, notification());
    expect(res).toMatchObject({ ok: false, retryable: false });
    expect(res.ok === false && res.error).toMatch(/loopback/);
    expect(received.length).toBe(before);
  });

  it('rejects an invalid config as permanent', async () => {
    const res = await senders.send('slack', { webhook_url: 'ftp://example.com/x' }, notification());
    expect(res).toMatchObject({ ok: false, retryable: false });
    const res2 = await senders.send('slack', {}, notification());
    expect(res2).toMatchObject({ ok: false, retryable: false });
  });
});
