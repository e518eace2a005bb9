import { describe, expect, it } from 'vitest';
import { createSenders, maskedFields, maskSecrets, mergeSecrets, validateChannelConfig } from './index.js';
import type { Notification } from './types.js';

const SLACK_URL = 'https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX';

describe('maskSecrets / mergeSecrets', () => {
  it('slack: masks the webhook path and keeps it on a masked round trip', () => {
    const stored = { webhook_url: SLACK_URL };
    const masked = maskSecrets('slack', stored);
    expect(masked).toEqual({ webhook_url: 'https://hooks.slack.com/services/T00…***' });
    expect(JSON.stringify(masked)).not.toContain('XXXXXXXX');
    expect(stored.webhook_url).toBe(SLACK_URL); // a copy, not mutated
    expect(mergeSecrets('slack', masked, stored)).toEqual(stored);
    const changed = { webhook_url: 'https://hooks.slack.com/services/T1/B1/NEW' };
    expect(mergeSecrets('slack', changed, stored)).toEqual(changed);
  });

  it('email: masks the password only', () => {
    const stored = { host: 'smtp.example.com', port: 587, user: 'alerts', password: 'correct-horse-battery-staple', from: 'a@b.test', to: ['x@y.test'] };
    const masked = maskSecrets('email', stored);
    expect(masked).toEqual({ ...stored, password: '***le' });
    expect(mergeSecrets('email', masked, stored)).toEqual(stored);
    expect(mergeSecrets('email', { ...masked, password: 'new-password' }, stored)).toEqual({ ...stored, password: 'new-password' });
    const short = { ...stored, password: 'pw' };
    expect(maskSecrets('email', short).password).toBe('***');
    expect(mergeSecrets('email', maskSecrets('email', short), short)).toEqual(short);
    const { password: _p, ...withoutPassword } = stored;
    expect(mergeSecrets('email', withoutPassword, stored)).toEqual(withoutPassword); // left out = removed
  });

  it('webhook: masks url, secret and header values; merges per header', () => {
    const stored = {
      url: 'https://hooks.example.com/ingest/abcdef123456?token=zzzzzzzz',
      secret: 'whsec_0123456789abcdef',
      headers: { Authorization: 'Bearer very-secret-token-value', 'X-Env': 'prod' },
    };
    const masked = maskSecrets('webhook', stored);
    expect(masked.url).toMatch(/^https:\/\/hooks\.example\.com\/.{1,13}…\*\*\*$/);
    expect(masked.secret).toBe('***ef');
    expect(masked.headers).toEqual({ Authorization: '***ue', 'X-Env': '***' });
    expect(JSON.stringify(masked)).not.toMatch(/zzzz|very-secret|0123456789/);
    expect(mergeSecrets('webhook', masked, stored)).toEqual(stored);
    // header names compare case-insensitively; new values and new headers win; dropped headers go
    const update = { ...masked, headers: { authorization: '***ue', 'X-New': 'v' } };
    expect(mergeSecrets('webhook', update, stored)).toEqual({ ...stored, headers: { authorization: 'Bearer very-secret-token-value', 'X-New': 'v' } });
    expect(maskedFields('webhook', mergeSecrets('webhook', masked, stored))).toEqual([]);
    expect(maskedFields('webhook', mergeSecrets('webhook', masked, {}))).toEqual(['url', 'secret', 'headers.Authorization', 'headers.X-Env']);
  });

  it('feedback_loop and ui', () => {
    const stored = { url: 'https://feedback.puraify.test/v1/alerts', secret: 'fb_secret_abcdefghij' };
    const masked = maskSecrets('feedback_loop', stored);
    expect(masked.url).toBe('https://feedback.puraify.test/v1…***');
    expect(mergeSecrets('feedback_loop', masked, stored)).toEqual(stored);
    expect(maskSecrets('feedback_loop', { url: 'https://feedback.puraify.test/' }).url).toBe('https://feedback.puraify.test/');
    expect(maskSecrets('ui', {})).toEqual({});
    expect(maskSecrets('slack', null)).toEqual({});
  });
});

describe('validateChannelConfig', () => {
  it('accepts valid configs', () => {
    expect(validateChannelConfig('slack', { webhook_url: SLACK_URL }).ok).toBe(true);
    expect(validateChannelConfig('email', { host: 'smtp.example.com', port: 465, secure: true, from: 'Alerts <a@b.test>', to: ['x@y.test'] }).ok).toBe(true);
    expect(validateChannelConfig('webhook', { url: 'https://x.test/h', headers: { 'X-Key': 'v' }, secret: 's' }).ok).toBe(true);
    expect(validateChannelConfig('feedback_loop', { url: 'http://feedback:8080/alerts' }).ok).toBe(true);
    expect(validateChannelConfig('ui', {}).ok).toBe(true);
  });
  it('refuses invalid ones with reasons', () => {
    const bad: [Parameters<typeof validateChannelConfig>[0], unknown][] = [
      ['slack', { webhook_url: 'ftp://x.test/' }],
      ['slack', { webhook_url: SLACK_URL, extra: 1 }],
      ['email', { host: 'h', port: 0, from: 'a@b.test', to: ['x@y.test'] }],
      ['email', { host: 'h', port: 25, from: 'a@b.test', to: [] }],
      ['email', { host: 'h', port: 25, from: 'a@b.test', to: ['nope'] }],
      ['email', { host: 'h', port: 25.5, from: 'a@b.test', to: ['x@y.test'] }],
      ['webhook', { url: 'https://x.test/h', headers: { 'bad name': 'v' } }],
      ['webhook', { url: 'https://x.test/h', headers: { Connection: 'close' } }],
      ['webhook', { url: 'https://x.test/h', headers: { 'X-A': 'a\r\nX-B: b' } }],
      ['webhook', { url: 'http://u:p@x.test/h' }],
      ['ui', { anything: true }],
    ];
    for (const [type, cfg] of bad) {
      const r = validateChannelConfig(type, cfg);
      expect(r.ok, JSON.stringify(cfg)).toBe(false);
      expect(r.ok === false && r.errors.length).toBeGreaterThan(0);
    }
  });
});

describe('createSenders', () => {
  const n: Notification = {
    id: 'n1', state: 'test', rule_id: 'r', rule_name: 'r', severity: 'info', project_id: 'p',
    title: 't', summary: '', count: 1, first_seen: '2025-01-01T00:00:00Z', last_seen: '2025-01-01T00:00:00Z', labels: {}, link: '',
  };
  it('refuses metadata targets permanently and fails after close()', async () => {
    const s = createSenders({ allowPrivate: false, timeoutMs: 300 });
    expect(await s.send('webhook', { url: 'http://169.254.169.254/latest/meta-data/' }, n)).toMatchObject({ ok: false, retryable: false });
    expect(await s.send('feedback_loop', { url: 'http://[::ffff:127.0.0.1]:8080/' }, n)).toMatchObject({ ok: false, retryable: false });
    expect(await s.send('ui' as never, {}, n)).toMatchObject({ ok: false, retryable: false });
    s.close();
    expect(await s.send('webhook', { url: 'http://8.8.8.8/' }, n)).toMatchObject({ ok: false, retryable: true, error: 'senders are closed' });
  });
});
