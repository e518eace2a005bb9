// The dashboard in a real browser against a real engine: token, logs search and filters, live
// tail, error groups and their state, performance charts, session replay, and event text that
// must stay text. Needs Debian's Chromium (scripts/install-system-deps.sh); skipped without it.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { call, removeDir, startEngine, tempDir, type TestEngine } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const P = 'dash_p';
const XSS = 'hello <img src=x onerror=alert(1)> world';
const STACK = 'Error: Notion did not answer in time\n    at callNotion (/app/src/notion.ts:42:11)\n    at runStep (/app/src/flow.ts:10:3)';

let te: TestEngine;
let browser: Browser;
let page: Page;
let shots: string;
const dialogs: string[] = [];
const pageErrors: string[] = [];

function seed(now: number) {
  const error = (user: string, session: string, t: number) => ({
    project_id: P, session_id: session, user_id: user, engine: 'execution', flow_id: 'lead_submit', platform: 'Notion',
    action: 'create_page', status: 'error', error_type: 'api_timeout', message: 'Notion did not answer in time', stack: STACK,
    duration_ms: 4232, timestamp: t,
  });
  const s0 = now - 10 * 60_000;
  return [
    ...Array.from({ length: 12 }, (_, i) => ({
      project_id: P, event_type: 'execution', engine: 'execution', platform: 'Slack', action: 'send_message', status: 'success',
      duration_ms: 200 + i * 40, timestamp: now - (40 - i) * 60_000, message: `sent message ${i}`, attributes: { region: i % 2 ? 'eu' : 'us' },
    })),
    { project_id: P, session_id: 'sess_dash_1', user_id: 'u_1', event_type: 'flow_run', engine: 'execution', flow_id: 'lead_submit', action: 'start', status: 'success', timestamp: s0, message: 'flow started' },
    { project_id: P, session_id: 'sess_dash_1', user_id: 'u_1', event_type: 'execution', engine: 'execution', flow_id: 'lead_submit', platform: 'Notion', action: 'draft_page', status: 'success', duration_ms: 900, timestamp: s0 + 1500, message: 'page drafted' },
    error('u_1', 'sess_dash_1', s0 + 9000),
    error('u_2', 'sess_dash_2', now - 5 * 60_000),
    { project_id: P, event_type: 'log', engine: 'validation', status: 'success', message: XSS, timestamp: now - 2 * 60_000 },
  ];
}
const SEEDED = 17;

/** Waits for what the page shows; queries and re-renders take a moment. */
function poll<T>(fn: () => Promise<T> | T) {
  return expect.poll(fn, { timeout: 10_000, interval: 50 });
}

async function nav(label: string): Promise<void> {
  await page.locator('nav.tabs a', { hasText: label }).click();
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
}

const haveChromium = existsSync(CHROMIUM);

describe.skipIf(!haveChromium)('dashboard', () => {
  beforeAll(async () => {
    // DASHBOARD_SHOTS=<dir> keeps the screenshots there for a look; otherwise they go with the temp dir
    shots = process.env.DASHBOARD_SHOTS ?? tempDir('pm-dashboard-shots-');
    mkdirSync(shots, { recursive: true });
    const [engine, b] = await Promise.all([
      startEngine(),
      chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
      }),
    ]);
    te = engine;
    browser = b;
    const r = await call(te.url, 'POST', '/monitoring/logs', { body: seed(Date.now()) });
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(SEEDED);
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    // a stuck step fails with its own message, well before the test's timeout
    page.setDefaultTimeout(10_000);
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      // the browser logs every 4xx answer ("Failed to load resource"); those are expected here
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await te?.close();
    if (te) removeDir(te.dataDir);
    if (shots && !process.env.DASHBOARD_SHOTS) removeDir(shots);
  });

  it('serves the page at / with a strict content security policy', async () => {
    const res = await fetch(`${te.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await res.text()).toContain('<div id="app">');
    // the API keeps its own JSON 404s beside the static files
    const missing = await call(te.url, 'GET', '/monitoring/no-such-route');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  it('asks for the token, rejects a wrong one, and searches, filters and tails logs', async () => {
    await page.goto(`${te.url}/`);
    const token = page.locator('input[name=token]');
    await token.fill('not-the-right-token-at-all');
    await page.getByRole('button', { name: 'Connect' }).click();
    await poll(() => page.locator('.token-card .notice.error').textContent()).toContain('unknown');
    await token.fill(te.token);
    await page.getByRole('button', { name: 'Connect' }).click();

    await page.locator('#project').fill(P);
    await page.locator('#project').press('Enter');
    const rows = page.locator('table.logs tr.row');
    await poll(() => rows.count()).toBe(SEEDED);

    // the hostile message is shown as text, never as markup
    await poll(() => page.locator('table.logs td.msg', { hasText: XSS }).count()).toBe(1);
    expect(await page.locator('img').count()).toBe(0);

    // a row expands to its attributes
    await page.locator('table.logs tr.row', { hasText: 'sent message 11' }).click();
    await poll(() => page.locator('tr.detail .event-detail').textContent()).toContain('region');

    // filters narrow the table: status, then an attribute
    await page.locator('select[name=status]').selectOption('error');
    await poll(() => rows.count()).toBe(2);
    await rows.first().click();
    await poll(() => page.locator('tr.detail pre.stack').textContent()).toContain('callNotion');
    await shot('logs');
    await page.locator('select[name=status]').selectOption('');
    await page.locator('input[name=attrs]').fill('region=eu');
    await page.getByRole('button', { name: 'Search' }).click();
    await poll(() => rows.count()).toBe(6);
    await page.locator('input[name=attrs]').fill('');
    await page.locator('input[name=q]').fill('did not answer');
    await page.getByRole('button', { name: 'Search' }).click();
    await poll(() => rows.count()).toBe(2);
    await page.locator('input[name=q]').fill('');
    await page.getByRole('button', { name: 'Search' }).click();
    await poll(() => rows.count()).toBe(SEEDED);

    // live tail over fetch-streamed SSE, when the engine serves it
    const live = page.locator('button.live');
    if (await live.count()) {
      await live.click();
      await poll(() => live.textContent()).toContain('Live ·');
      const r = await call(te.url, 'POST', '/monitoring/logs', { body: { project_id: P, message: 'arrived while watching', engine: 'execution' } });
      expect(r.status).toBe(200);
      await poll(() => page.locator('table.logs tr.row.fresh', { hasText: 'arrived while watching' }).count()).toBe(1);
      await live.click();
    }
  });

  it('lists the error group, shows its stack, and resolves it through the API', async () => {
    await nav('Errors');
    const group = page.locator('table.groups tr.row', { hasText: 'api_timeout' });
    await poll(() => group.count()).toBe(1);
    expect(await group.locator('svg.spark').count()).toBe(1);
    await group.click();
    const pane = page.locator('.detail-pane');
    await poll(() => pane.locator('pre.stack').textContent()).toContain('at callNotion (/app/src/notion.ts:42:11)');
    await poll(() => pane.locator('.group-state').textContent()).toContain('open');
    await poll(() => pane.locator('.top', { hasText: 'Users' }).textContent()).toContain('u_2');
    await shot('errors');

    const fp = new URL(page.url()).hash.match(/fp=([^&]+)/)![1];
    await pane.getByRole('button', { name: 'Resolve' }).click();
    await poll(() => pane.locator('.group-state').textContent()).toContain('resolved');
    const r = await call(te.url, 'GET', `/monitoring/errors/${decodeURIComponent(fp)}?project_id=${P}`);
    expect(r.status).toBe(200);
    expect(r.body.state).toBe('resolved');
    // the open list no longer holds it; Reopen puts it back
    await poll(() => group.count()).toBe(0);
    await pane.getByRole('button', { name: 'Reopen' }).click();
    await poll(() => group.count()).toBe(1);
    expect((await call(te.url, 'GET', `/monitoring/errors/${decodeURIComponent(fp)}?project_id=${P}`)).body.state).toBe('open');
  });

  it('charts performance with uPlot and lists the platform/action table', async () => {
    await nav('Performance');
    await poll(() => page.locator('.uplot canvas').count()).toBeGreaterThanOrEqual(2);
    const slack = page.locator('table.perf tr.row', { hasText: 'send_message' });
    await poll(() => slack.count()).toBe(1);
    expect(await slack.textContent()).toContain('Slack');
    await shot('performance');
  });

  it('replays a session with its first error and what led to it', async () => {
    await nav('Sessions');
    const row = page.locator('table.sessions tr.row', { hasText: 'sess_dash_1' });
    await poll(() => row.count()).toBe(1);
    await row.locator('a').click();
    await poll(() => page.locator('.first-error-box').textContent()).toContain('api_timeout');
    expect(await page.locator('ol.timeline li.step').count()).toBe(3);
    expect(await page.locator('ol.timeline li.step.first-error').count()).toBe(1);
    expect(await page.locator('ol.led-to li').count()).toBe(2);
    await shot('sessions');
  });

  it('shows the alerts view, and asks for the token again on a 401', async () => {
    if (await page.locator('nav.tabs a', { hasText: 'Alerts' }).count()) {
      await nav('Alerts');
      await poll(() => page.locator('.alerts-view').count()).toBe(1);
      await poll(() => page.locator('.alerts-view .loading').count()).toBe(0);
      await shot('alerts');
    }
    await page.evaluate(() => localStorage.setItem('puraify.monitoring.token', 'revoked-token-0123456789'));
    await page.reload();
    await poll(() => page.locator('.token-card .notice.error').textContent()).toContain('unknown');

    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
