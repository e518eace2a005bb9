// Alert management in a real browser against a real engine and real receivers on loopback, driven
// as a person would: channels made with their forms (secrets masked, "send test"), a rule made in
// the editor with its 24 h preview, its alert received on a webhook and its link followed into the
// page; acknowledge; a silence made from the alert silencing the next one; a Slack payload's link
// landing on its error group; notifications marked read; audit and project settings. Fails on any
// console error, page error, dialog or failed request.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, removeDir, startEngine, type TestEngine } from './helpers.js';
import { expectNoProblems, haveChromium, openBrowser, poll, type Watched } from './browser.js';
import { verifySignature } from '../src/alerts/channels/webhook.js';

const PA = 'alerts_p';
let te: TestEngine;
let w: Watched;
type Got = { path: string; json: any; raw: string; headers: http.IncomingHttpHeaders };
let rx: { url: string; got: Got[]; close(): Promise<void> };
let smtp: { port: number; mails: { to: string[]; raw: string }[]; close(): Promise<void> };

async function receiver() {
  const got: Got[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      let json: unknown = body;
      try { json = JSON.parse(body); } catch { /* text */ }
      got.push({ path: req.url ?? '', json, raw: body, headers: req.headers });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A real SMTP server on loopback (no TLS, no auth), keeping what it was sent. */
async function smtpServer() {
  const mails: { to: string[]; raw: string }[] = [];
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS'], logger: false,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => { mails.push({ raw: Buffer.concat(chunks).toString('utf8'), to: session.envelope.rcptTo.map((r) => r.address) }); cb(); });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.server.address() as AddressInfo).port, mails, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const page = () => w.page;
const tab = (name: string) => page().getByRole('navigation', { name: 'views' }).getByRole('link', { name }).first();
const hooks = (path: string) => rx.got.filter((g) => g.path === path);

describe.skipIf(!haveChromium)('dashboard: alert management', () => {
  beforeAll(async () => {
    [te, w, rx, smtp] = await Promise.all([startEngine({ MONITORING_ALERT_EVAL_INTERVAL_MS: '200' }), openBrowser(), receiver(), smtpServer()]);
    // three bursts of Stripe failures over the last day, in separate windows: a preview sees three firings
    const now = Date.now();
    const burst = (hoursAgo: number) => [0, 1].map((i) => ({ project_id: PA, engine: 'billing', platform: 'Stripe', status: 'error', message: 'card declined', timestamp: now - hoursAgo * 3600_000 + i * 1000 }));
    const r = await call(te.url, 'POST', '/monitoring/logs', { body: [...burst(20), ...burst(10), ...burst(3)] });
    expect(r.body.accepted).toBe(6);
    await page().goto(`${te.url}/#/channels?project=${PA}`);
    await page().getByLabel('Token').fill(te.token);
    await page().getByRole('button', { name: 'Connect' }).click();
    await page().getByRole('heading', { name: 'Channels' }).waitFor();
  });

  afterAll(async () => {
    await w?.browser.close();
    await te?.close();
    if (te) removeDir(te.dataDir);
    await rx?.close();
    await smtp?.close();
  });

  it('channels: a webhook, a Slack and an in-app channel from their forms; secrets masked; send test', async () => {
    const make = async (name: string, type: string, fields: Record<string, string>) => {
      await page().getByRole('button', { name: 'New channel' }).click();
      const form = page().getByRole('form', { name: 'new channel' });
      await form.getByLabel('Name', { exact: true }).fill(name);
      await form.getByLabel('Type').selectOption(type);
      for (const [label, v] of Object.entries(fields)) await form.getByLabel(label).fill(v);
      await form.getByRole('button', { name: 'Create channel' }).click();
      await poll(() => page().getByRole('row', { name: new RegExp(name) }).count()).toBe(1);
    };
    await make('ops hook', 'webhook', { URL: `${rx.url}/hook`, 'Signing secret (HMAC-SHA256)': 'a-very-long-signing-secret-42' });
    const row = page().getByRole('row', { name: /ops hook/ });
    expect(await row.textContent()).toContain('secret=***42');
    expect(await row.textContent()).not.toContain('a-very-long-signing-secret');
    await make('ops slack', 'slack', { 'Incoming webhook URL': `${rx.url}/slack` });
    await make('in-app', 'ui', {});

    await page().getByRole('button', { name: 'Send test to ops hook' }).click();
    await poll(() => page().getByRole('status').textContent()).toContain('Test message sent to ops hook');
    expect(hooks('/hook').at(-1)!.json.notification.title).toContain('Test message for channel ops hook');
    // an in-app test is an unread notification: the Alerts tab counts it
    await page().getByRole('button', { name: 'Send test to in-app' }).click();
    await page().getByRole('button', { name: 'Refresh' }).click();
    await poll(() => tab('Alerts').textContent()).toContain('1');
    await w.shot('channels');
    expectNoProblems(w);
  });

  it('channels: an e-mail channel from its form, its test mail through a real SMTP server; Edit changes channels', async () => {
    await page().getByRole('button', { name: 'New channel' }).click();
    const form = page().getByRole('form', { name: 'new channel' });
    await form.getByLabel('Name', { exact: true }).fill('ops mail');
    await form.getByLabel('Type').selectOption('email');
    await form.getByLabel('SMTP host').fill('127.0.0.1');
    await form.getByLabel('SMTP port').fill(String(smtp.port));
    await form.getByLabel('From').fill('monitoring@puraify.test');
    await form.getByLabel('To (comma-separated)').fill('oncall@puraify.test');
    await form.getByRole('button', { name: 'Create channel' }).click();
    const row = page().getByRole('row', { name: /ops mail/ });
    await poll(() => row.count()).toBe(1);
    expect(await row.textContent()).toContain('E-mail');
    const mail = async () => (await call(te.url, 'GET', `/monitoring/channels?project_id=${PA}`)).body.channels.find((c: any) => c.name === 'ops mail');
    expect((await mail()).config).toMatchObject({ host: '127.0.0.1', port: smtp.port, from: 'monitoring@puraify.test', to: ['oncall@puraify.test'] });

    await page().getByRole('button', { name: 'Send test to ops mail' }).click();
    await poll(() => page().getByRole('status').textContent()).toContain('Test message sent to ops mail');
    await poll(() => smtp.mails.length).toBe(1);
    expect(smtp.mails[0].to).toEqual(['oncall@puraify.test']);
    expect(smtp.mails[0].raw).toContain('Test message for channel ops mail');

    // Edit: the recipients change in the engine, in the list, and where the next test goes
    await page().getByRole('button', { name: 'Edit ops mail' }).click();
    const edit = page().getByRole('form', { name: 'edit channel' });
    await poll(() => edit.getByLabel('To (comma-separated)').inputValue()).toBe('oncall@puraify.test');
    await edit.getByLabel('To (comma-separated)').fill('payments@puraify.test, oncall@puraify.test');
    await edit.getByRole('button', { name: 'Save channel' }).click();
    await poll(() => edit.count()).toBe(0);
    await poll(async () => (await mail()).config.to).toEqual(['payments@puraify.test', 'oncall@puraify.test']);
    await poll(() => row.textContent()).toContain('payments@puraify.test');
    await page().getByRole('button', { name: 'Send test to ops mail' }).click();
    await poll(() => smtp.mails.length).toBe(2);
    expect(smtp.mails[1].to.sort()).toEqual(['oncall@puraify.test', 'payments@puraify.test']);

    // Edit the webhook: a header added; its secret, shown masked in the form, is kept (the test is still signed with it)
    await page().getByRole('button', { name: 'Edit ops hook' }).click();
    const hook = page().getByRole('form', { name: 'edit channel' });
    await poll(() => hook.getByLabel('Signing secret (HMAC-SHA256)').inputValue()).toBe('***42');
    await hook.getByLabel('Headers (one "Name: value" a line)').fill('X-Team: payments');
    await hook.getByRole('button', { name: 'Save channel' }).click();
    await poll(() => page().getByRole('row', { name: /ops hook/ }).textContent()).toContain('X-Team');
    expect(await page().getByRole('row', { name: /ops hook/ }).textContent()).toContain('secret=***42');
    const before = hooks('/hook').length;
    await page().getByRole('button', { name: 'Send test to ops hook' }).click();
    await poll(() => hooks('/hook').length).toBe(before + 1);
    const got = hooks('/hook').at(-1)!;
    expect(got.headers['x-team']).toBe('payments');
    expect(verifySignature('a-very-long-signing-secret-42', String(got.headers['x-puraify-timestamp']), got.raw, String(got.headers['x-puraify-signature']))).toBe(true);
    expectNoProblems(w);
  });

  let link = '';
  it('rules: the editor previews the last 24 h, saves, and the rule fires to the webhook', async () => {
    await tab('Rules').click();
    await page().getByRole('button', { name: 'New rule' }).click();
    const form = page().getByRole('form', { name: 'rule editor' });
    await form.getByLabel('Name', { exact: true }).fill('Stripe failures');
    await form.getByLabel('Kind').selectOption('event');
    await form.getByLabel('Query').fill('platform:Stripe status:error');
    await form.getByLabel('Group by').fill('engine');
    await form.getByRole('checkbox', { name: /ops hook/ }).check();
    const preview = form.getByRole('region', { name: 'Preview of the last 24 hours' });
    await poll(() => preview.getByText(/^Would (not )?have fired/).textContent()).toContain('Would have fired 3 times');
    // the chart of the value against the threshold is drawn (its canvas is the chart's inside)
    expect(await preview.getByRole('img', { name: /per window.*chart$/ }).locator('canvas').count()).toBeGreaterThan(0);
    await w.shot('rules-editor');
    await form.getByRole('button', { name: 'Save rule' }).click();
    await poll(() => page().getByRole('row', { name: /Stripe failures/ }).count()).toBe(1);
    await w.shot('rules');

    const before = hooks('/hook').length;
    await call(te.url, 'POST', '/monitoring/logs', { body: { project_id: PA, engine: 'billing', platform: 'Stripe', status: 'error', message: 'card declined again' } });
    await poll(() => hooks('/hook').length).toBe(before + 1);
    const n = hooks('/hook').at(-1)!.json.notification;
    expect(n).toMatchObject({ rule_name: 'Stripe failures', project_id: PA, labels: { engine: 'billing' } });
    link = n.link;
    expect(link).toMatch(new RegExp(`^${te.url}/#/alerts\\?project=${PA}&group=grp_`));
    expectNoProblems(w);
  });

  it("the webhook payload's link lands on its alert group; acknowledge it", async () => {
    await page().goto(link);
    const pane = page().getByRole('complementary', { name: 'Stripe failures' });
    await poll(() => pane.count()).toBe(1);
    await poll(() => pane.textContent()).toContain('billing');
    await poll(() => pane.textContent()).toContain(PA);
    await pane.getByRole('button', { name: 'Acknowledge Stripe failures' }).click();
    await poll(() => pane.getByRole('button', { name: /Acknowledge/ }).textContent()).toBe('Acknowledged');
    const group = new URL(link.replace('#/alerts', 'alerts')).searchParams.get('group')!;
    expect((await call(te.url, 'GET', `/monitoring/alert-groups/${group}`)).body.acknowledged_by).toBe('admin-token');
    await w.shot('alert-group');
    expectNoProblems(w);
  });

  it('a silence made from the alert silences the next one', async () => {
    const pane = page().getByRole('complementary', { name: 'Stripe failures' });
    await pane.getByRole('link', { name: 'Silence…' }).click();
    const form = page().getByRole('form', { name: 'new silence' });
    await poll(() => form.count()).toBe(1);
    // filled in from the group: its project and rule
    expect(await form.getByLabel('Value 1').inputValue()).toBe(PA);
    expect(await form.getByLabel('Value 2').inputValue()).toMatch(/^rule_/);
    expect(await form.getByLabel('Value 3').inputValue()).toBe('billing');
    // widen it from this group (engine=billing) to the whole rule
    await form.getByRole('button', { name: 'Remove matcher 3' }).click();
    await form.getByLabel('Comment').fill('card network incident');
    await form.getByRole('button', { name: 'Create silence' }).click();
    await poll(() => page().getByRole('row', { name: /card network incident/ }).count()).toBe(1);
    await w.shot('silences');

    const before = hooks('/hook').length;
    await call(te.url, 'POST', '/monitoring/logs', { body: { project_id: PA, engine: 'payments', platform: 'Stripe', status: 'error', message: 'card declined in payments' } });
    await tab('Alerts').click();
    const silenced = page().getByRole('table', { name: 'Alert history' }).getByRole('row', { name: /card declined in payments/ });
    // each Refresh aborts the list's request in flight: wait for its answer before the next one,
    // or on a busy machine no answer ever lands (what made this case fail on CI)
    await poll(async () => {
      const answered = page().waitForResponse((r) => new URL(r.url()).pathname === '/monitoring/alerts', { timeout: 5000 });
      await page().getByRole('button', { name: 'Refresh' }).click();
      await answered.catch(() => undefined);
      return silenced.waitFor({ timeout: 1000 }).then(() => 1, () => 0);
    }, 20_000).toBe(1);
    expect(await silenced.textContent()).toContain('silenced, not sent');
    expect(hooks('/hook').length).toBe(before);

    // expire it from the list
    await tab('Silences').click();
    await page().getByRole('button', { name: /^Expire / }).click();
    await page().getByRole('button', { name: /^Confirm expire/ }).click();
    await poll(() => page().getByText('No active silences.').count()).toBe(1);
    expectNoProblems(w);
  });

  it("a Slack payload's link lands on its error group", async () => {
    const slack = (await call(te.url, 'GET', `/monitoring/channels?project_id=${PA}`)).body.channels.find((c: any) => c.name === 'ops slack').id;
    const r = await call(te.url, 'POST', '/monitoring/alert-rules', { body: { name: 'New errors', project_id: PA, kind: 'new_group', channels: [slack], severity: 'high' } });
    expect(r.status).toBe(201);
    await call(te.url, 'POST', '/monitoring/logs', { body: { project_id: PA, engine: 'execution', platform: 'Notion', status: 'error', error_type: 'NotionQuotaError', message: 'workspace over quota' } });
    await poll(() => hooks('/slack').filter((h) => JSON.stringify(h.json).includes('NotionQuotaError') || JSON.stringify(h.json).includes('workspace over quota')).length).toBe(1);
    const msg = hooks('/slack').at(-1)!.json;
    const url = msg.blocks.find((b: any) => b.type === 'actions').elements[0].url as string;
    expect(url).toMatch(new RegExp(`^${te.url}/#/errors\\?project=${PA}&fp=`));
    await page().goto(url);
    const pane = page().getByRole('complementary', { name: 'error group' });
    await poll(() => pane.getByRole('heading', { level: 2 }).first().textContent()).toBe('NotionQuotaError');
    await poll(() => pane.textContent()).toContain('workspace over quota');
    await w.shot('slack-link-errors');
    expectNoProblems(w);
  });

  it('notifications: mark all read clears the badge', async () => {
    await tab('Alerts').click();
    await poll(() => tab('Alerts').textContent()).toMatch(/Alerts\d/);
    await page().getByRole('button', { name: 'Mark all read' }).click();
    await poll(() => tab('Alerts').textContent()).toBe('Alerts');
    await w.shot('alerts');
    expectNoProblems(w);
  });

  it('rules list: disable, duplicate into the editor, delete', async () => {
    await tab('Rules').click();
    const toggle = page().getByRole('switch', { name: 'Enabled: Stripe failures' });
    await toggle.uncheck();
    await poll(async () => (await call(te.url, 'GET', `/monitoring/alert-rules?project_id=${PA}`)).body.rules.find((r: any) => r.name === 'Stripe failures').enabled).toBe(false);
    await page().getByRole('button', { name: 'Duplicate Stripe failures' }).click();
    await poll(() => page().getByRole('form', { name: 'rule editor' }).getByLabel('Name', { exact: true }).inputValue()).toBe('Stripe failures (copy)');
    await page().keyboard.press('Escape');
    await page().getByRole('main').press('Escape');
    await poll(() => page().getByRole('form', { name: 'rule editor' }).count()).toBe(0);
    await page().getByRole('button', { name: 'Delete New errors' }).click();
    await page().getByRole('button', { name: 'Confirm delete: New errors' }).click();
    await poll(() => page().getByRole('row', { name: /New errors/ }).count()).toBe(0);
    expectNoProblems(w);
  });

  it('rules: Edit changes an existing rule in the engine and in the list', async () => {
    const rule = async () => (await call(te.url, 'GET', `/monitoring/alert-rules?project_id=${PA}`)).body.rules.find((r: any) => r.name === 'Stripe failures');
    expect((await rule()).severity).toBe('high');
    await page().getByRole('button', { name: 'Edit Stripe failures' }).click();
    const form = page().getByRole('form', { name: 'rule editor' });
    await poll(() => form.getByRole('heading', { name: 'Edit rule Stripe failures' }).count()).toBe(1);
    expect(await form.getByLabel('Query').inputValue()).toBe('platform:Stripe status:error');
    await form.getByLabel('Severity').selectOption('critical');
    await form.getByLabel('Repeat every (s)').fill('600');
    await form.getByRole('button', { name: 'Save rule' }).click();
    await poll(() => form.count()).toBe(0);
    await poll(async () => (await rule()).severity).toBe('critical');
    const r = await rule();
    expect(r.repeat_interval_s).toBe(600);
    // the rest of the rule is as it was: the same one, changed, not a new one
    expect(r).toMatchObject({ query: 'platform:Stripe status:error', group_by: ['engine'], enabled: false });
    expect((await call(te.url, 'GET', `/monitoring/alert-rules?project_id=${PA}`)).body.rules.filter((x: any) => x.name === 'Stripe failures')).toHaveLength(1);
    await poll(() => page().getByRole('row', { name: /Stripe failures/ }).textContent()).toContain('critical');
    expectNoProblems(w);
  });

  it('audit: the timeline of these changes, and an export', async () => {
    await tab('Audit').click();
    const timeline = page().getByRole('list', { name: 'Audit timeline' });
    await poll(() => timeline.getByRole('listitem').count()).toBeGreaterThan(3);
    expect(await timeline.textContent()).toContain('alert_rule');
    const [dl] = await Promise.all([page().waitForEvent('download'), page().getByRole('button', { name: 'Export CSV' }).click()]);
    const text = readFileSync((await dl.path())!, 'utf8');
    expect(text.split('\n')[0]).toContain('time,project_id');
    expect(text).toContain('alert_rule');
    await w.shot('audit');
    expectNoProblems(w);
  });

  it('audit: the filters narrow the timeline; the NDJSON export holds what they match', async () => {
    const timeline = page().getByRole('list', { name: 'Audit timeline' });
    const entries = timeline.getByRole('listitem');
    await poll(() => entries.count()).toBeGreaterThan(8);
    const all = await entries.count();
    const filters = page().getByRole('form', { name: 'Audit filters' });
    // the six seeded Stripe failures and the one that fired the rule came from the billing engine
    await filters.getByLabel('Engine').fill('billing');
    await filters.getByRole('button', { name: 'Filter' }).click();
    await poll(() => entries.count()).toBe(7);
    for (const t of await entries.allTextContents()) expect(t).toContain('billing');
    // the admin actions: event type audit, by the admin token
    await filters.getByLabel('Engine').fill('');
    await filters.getByLabel('Event type').fill('audit');
    await filters.getByRole('button', { name: 'Filter' }).click();
    await poll(async () => { const n = await entries.count(); return n > 3 && n < all; }).toBe(true);
    for (const t of await entries.allTextContents()) expect(t).toMatch(/admin-token \w+ /);
    const shown = await entries.count();
    await filters.getByLabel('User').fill('admin-token');
    await filters.getByLabel('Event type').fill('');
    await filters.getByRole('button', { name: 'Filter' }).click();
    await poll(() => entries.count()).toBe(shown);

    // the NDJSON export: one JSON line per entry the filters match
    const [dl] = await Promise.all([page().waitForEvent('download'), page().getByRole('button', { name: 'Export NDJSON' }).click()]);
    expect(dl.suggestedFilename()).toBe('audit.ndjson');
    const lines = readFileSync((await dl.path())!, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(lines).toHaveLength(shown);
    for (const l of lines) expect(JSON.stringify(l)).toContain('admin-token');
    expect(lines.some((l) => JSON.stringify(l).includes('alert_channel'))).toBe(true);
    await filters.getByLabel('User').fill('');
    await filters.getByRole('button', { name: 'Filter' }).click();
    await poll(() => entries.count()).toBe(all);
    expectNoProblems(w);
  });

  it('settings: the sections the engine returns; the flood ceiling saved', async () => {
    await tab('Settings').click();
    await poll(() => page().getByRole('group', { name: 'Redaction' }).count()).toBe(1);
    expect(await page().getByRole('group', { name: 'Flood protection' }).count()).toBe(1);
    await page().getByLabel(/Flood ceiling/).fill('500');
    await page().getByRole('button', { name: 'Save settings' }).click();
    await poll(() => page().getByRole('status').textContent()).toContain('Saved');
    expect((await call(te.url, 'GET', `/monitoring/projects/${PA}/settings`)).body.flood_ceiling_per_minute).toBe(500);
    // forwarding, served by this engine: its section appears
    await poll(() => page().getByRole('group', { name: 'Forwarding' }).count()).toBe(1);
    expect(await page().getByLabel('Targets (JSON)').inputValue()).toContain('"sentry": null');
    await w.shot('settings');
    expectNoProblems(w);
  });

  it('settings: retention days saved and read back after a reload; usage shows the project\'s events', async () => {
    const days = page().getByLabel(/Retention days/);
    await poll(() => days.count()).toBe(1);
    expect(await days.inputValue()).toBe(''); // unset: the engine default
    await days.fill('45');
    await page().getByRole('button', { name: 'Save settings' }).click();
    await poll(() => page().getByRole('status').first().textContent()).toContain('Saved');
    expect((await call(te.url, 'GET', `/monitoring/projects/${PA}/settings`)).body.retention_days).toBe(45);
    await page().reload();
    await poll(() => page().getByLabel(/Retention days/).inputValue()).toBe('45');
    // the seeded bursts (6) and the events later tests sent: the summary shows the engine's count
    const usage = (await call(te.url, 'GET', `/monitoring/projects/${PA}/usage`)).body;
    expect(usage.total.events).toBeGreaterThanOrEqual(6);
    await poll(() => page().getByLabel('Usage').textContent()).toContain(`${usage.total.events.toLocaleString('en-US')} events`);
    expect(await page().getByLabel('Usage').textContent()).toContain('in force: 45 days');
    expectNoProblems(w);
  });

  it('every view has its heading; every table header has its scope', async () => {
    const views: [string, RegExp, boolean][] = [
      ['Logs', /^Logs$/, true], ['Errors', /^Errors$/, true], ['Performance', /^Performance$/, true], ['Sessions', /^Sessions$/, false],
      ['Alerts', /^Alerts$/, true], ['Rules', /^Alert rules$/, true], ['Channels', /^Channels$/, true], ['Silences', /^Silences$/, false],
      ['Audit', /^Audit trail$/, false], ['Settings', /^Project settings/, false],
    ];
    for (const [name, heading, hasTable] of views) {
      await tab(name).click();
      await poll(() => page().getByRole('heading', { level: 1, name: heading }).count()).toBe(1);
      if (hasTable) await poll(() => page().getByRole('columnheader').count()).toBeGreaterThan(0);
      const scopes = await page().getByRole('columnheader').evaluateAll((ths) => ths.map((th) => th.getAttribute('scope')));
      expect(scopes.every((s) => s === 'col'), `${name}: ${JSON.stringify(scopes)}`).toBe(true);
      // markup check: no header cell anywhere without a scope (a header the roles above might not count)
      expect(await page().evaluate(() => document.querySelectorAll('th:not([scope])').length), name).toBe(0);
    }
    expectNoProblems(w);
  });
});
