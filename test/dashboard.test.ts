// The dashboard in a real browser against a real engine, driven as a person would (roles and
// labels, not CSS): token, logs with the volume histogram (drag to zoom), search, columns, live
// tail; error groups paged, searched and resolved in bulk, one group's events stepped through;
// performance charts; a session replayed step by step; keyboard, a narrow screen, the theme; a
// read-only key. Fails on any console error, page error, dialog or failed request.
import type { Locator, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, removeDir, startEngine, type TestEngine } from './helpers.js';
import { expectNoProblems, haveChromium, openBrowser, poll, type Watched } from './browser.js';

const P = 'dash_p';
const BULK = 'dash_bulk';
const XSS = 'hello <img src=x onerror=alert(1)> world';
const STACK = 'Error: Notion did not answer in time\n    at callNotion (/app/src/notion.ts:42:11)\n    at runStep (/app/src/flow.ts:10:3)';

let te: TestEngine;
let w: Watched;

function seed(now: number) {
  const error = (user: string, session: string, t: number) => ({
    project_id: P, session_id: session, user_id: user, engine: 'execution', flow_id: 'lead_submit', platform: 'Notion',
    action: 'create_page', status: 'error', error_type: 'api_timeout', message: 'Notion did not answer in time', stack: STACK,
    duration_ms: 4232, timestamp: t, attributes: { notion_region: user === 'u_1' ? 'eu-1' : 'us-1', workspace: 'acme' },
  });
  const s0 = now - 10 * 60_000;
  const letters = (i: number) => String.fromCharCode(65 + (i % 26)) + String.fromCharCode(65 + Math.floor(i / 26));
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
    // 60 error groups in another project: more than one page
    ...Array.from({ length: 60 }, (_, i) => ({
      project_id: BULK, engine: 'execution', platform: 'Stripe', status: 'error', error_type: `Failure${letters(i)}`,
      message: `charge failed ${letters(i)}`, timestamp: now - (i + 1) * 30_000,
    })),
    // and 110 successes: more log rows than one page
    ...Array.from({ length: 110 }, (_, i) => ({ project_id: BULK, engine: 'execution', platform: 'Stripe', status: 'success', message: `charge ok ${i}`, timestamp: now - i * 20_000 })),
  ];
}
const SEEDED = 17;

const page = () => w.page;
const tab = (name: string) => page().getByRole('navigation', { name: 'views' }).getByRole('link', { name, exact: false }).first();
/** A table's body rows: every row but the one of column headers. */
const bodyRows = (table: Locator) => table.getByRole('row').filter({ hasNot: page().getByRole('columnheader') });
/** The log list's event rows (each expands; the detail row under an open one does not count). */
const eventRows = (p: Page) => {
  const table = p.getByRole('table', { name: 'Events, newest first' });
  return table.getByRole('row', { expanded: false }).or(table.getByRole('row', { expanded: true }));
};
const logRows = () => eventRows(page());
const groupRows = () => bodyRows(page().getByRole('table', { name: 'Error groups' }));
const total = () => page().getByRole('status', { name: 'Total events' });
const pickProject = async (p: string) => {
  await page().getByRole('combobox', { name: 'Project' }).fill(p);
  await page().getByRole('combobox', { name: 'Project' }).press('Enter');
};
/** The page's hash parameters (range, from, to…). */
const hashParams = () => new URLSearchParams(new URL(page().url()).hash.split('?')[1] ?? '');

/** Holds the page's requests to `path` until released: what the page shows while an answer is on its way. */
async function hold(p: Page, path: string) {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let seen!: () => void;
  const arrived = new Promise<void>((r) => (seen = r));
  const match = (u: URL) => u.pathname === path;
  const handler = async (route: Route) => {
    seen();
    await gate;
    // the page may have given up on it (a newer request): nothing to answer then
    await route.continue().catch(() => undefined);
  };
  await p.route(match, handler);
  return { arrived, release: async () => { open(); await p.unroute(match, handler); } };
}

/** Drags across a uPlot chart from one fraction of its width to another. */
async function drag(chart: Locator, from: number, to: number) {
  // uPlot's drag surface (.u-over) is the chart's inside: no role of its own
  const box = (await chart.locator('.u-over').boundingBox())!;
  await page().mouse.move(box.x + box.width * from, box.y + box.height / 2);
  await page().mouse.down();
  await page().mouse.move(box.x + box.width * to, box.y + box.height / 2, { steps: 5 });
  await page().mouse.up();
}

describe.skipIf(!haveChromium)('dashboard', () => {
  beforeAll(async () => {
    [te, w] = await Promise.all([startEngine(), openBrowser()]);
    const r = await call(te.url, 'POST', '/monitoring/logs', { body: seed(Date.now()) });
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(SEEDED + 170);
  });

  afterAll(async () => {
    await w?.browser.close();
    await te?.close();
    if (te) removeDir(te.dataDir);
  });

  it('serves the page at / with a strict content security policy', async () => {
    const res = await fetch(`${te.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await res.text()).toContain('<div id="app">');
    const missing = await call(te.url, 'GET', '/monitoring/no-such-route');
    expect(missing.status).toBe(404);
  });

  it('asks for the token, rejects a wrong one, and makes no failing request once connected', async () => {
    await page().goto(`${te.url}/`);
    const token = page().getByLabel('Token');
    await token.fill('not-the-right-token-at-all');
    await page().getByRole('button', { name: 'Connect' }).click();
    await poll(() => page().getByRole('alert').textContent()).toContain('unknown');
    // the wrong token's 401 (and the browser's log line for it) is the one failure we caused
    expectNoProblems(w, [/HTTP 401 .*whoami/, /console: Failed to load resource.*401/]);
    await token.fill(te.token);
    await page().getByRole('button', { name: 'Connect' }).click();
    await poll(() => page().getByRole('heading', { name: 'Logs' }).count()).toBe(1);
    // uPlot drew into the volume chart (its canvas is the chart's inside)
    await poll(() => page().getByRole('img', { name: 'Events by level chart' }).locator('canvas').count()).toBeGreaterThan(0);
    // a fresh page load: no probe requests, nothing that answers 4xx
    await page().reload();
    await poll(() => logRows().count()).toBeGreaterThan(0);
    expectNoProblems(w);
  });

  it('logs: histogram with a total, search, a column, the zone, and zoom by dragging', async () => {
    await page().getByRole('combobox', { name: 'Project' }).fill(P);
    await page().getByRole('combobox', { name: 'Project' }).press('Enter');
    await poll(() => logRows().count()).toBe(SEEDED);
    await poll(() => total().textContent()).toBe(`${SEEDED} events`);
    // the hostile message is shown as text, never as markup
    await poll(() => page().getByRole('cell', { name: XSS }).count()).toBe(1);
    // markup check: no <img> element was made from the message (role img also names the charts)
    expect(await page().locator('img').count()).toBe(0);

    // a row opens on Enter; j/k move between rows; / focuses the search
    await page().keyboard.press('Escape');
    await page().getByRole('main').press('j');
    await page().keyboard.press('j');
    await page().keyboard.press('Enter');
    await poll(() => page().getByRole('row', { expanded: true }).count()).toBe(1);
    await page().keyboard.press('/');
    expect(await page().evaluate(() => (document.activeElement as HTMLInputElement).name)).toBe('query');

    await page().getByRole('searchbox', { name: 'Search' }).fill('did not answer');
    await page().getByRole('button', { name: 'Search', exact: true }).click();
    await poll(() => logRows().count()).toBe(2);
    // an engine without the query language refuses `query` once (400 naming the field); the page
    // then searches the text as plain text and says so
    expect(await page().getByText('does not know the query language').count()).toBe(0);
    // the query language: fields, quoted phrases, OR, negation
    const search = async (q: string, n: number) => {
      await page().getByRole('searchbox', { name: 'Search' }).fill(q);
      await page().getByRole('button', { name: 'Search', exact: true }).click();
      await poll(() => logRows().count()).toBe(n);
      await poll(() => total().textContent()).toBe(`${n} event${n === 1 ? '' : 's'}`);
    };
    await search('status:error platform:Notion', 2);
    await search('"sent message" attr.region:eu', 6);
    await search('platform:(Slack OR Notion) -status:success', 2);
    await search('duration_ms:>500', 7);
    // a query the engine cannot read: the error says where, and no rows of before stay
    await page().getByRole('searchbox', { name: 'Search' }).fill('status:(error');
    await page().getByRole('button', { name: 'Search', exact: true }).click();
    await poll(() => page().getByRole('alert').first().textContent()).toContain('invalid_query');
    expect(await logRows().count()).toBe(0);
    expectNoProblems(w, [/HTTP 400 GET .*query=status%3A%28error/, /console: Failed to load resource.*400/]);
    await page().getByRole('searchbox', { name: 'Search' }).fill('');
    await page().getByRole('button', { name: 'Search', exact: true }).click();
    await poll(() => logRows().count()).toBe(SEEDED);

    // a column from the picker: users
    await page().getByText('Columns', { exact: true }).click();
    await page().getByRole('checkbox', { name: 'User' }).check();
    await page().getByLabel('Attribute column').fill('region');
    await page().getByRole('button', { name: 'Add' }).click();
    await page().getByText('Columns', { exact: true }).click();
    await poll(() => page().getByRole('columnheader', { name: 'User' }).count()).toBe(1);
    await poll(() => page().getByRole('columnheader', { name: 'attr.region' }).count()).toBe(1);
    expect(await page().getByRole('cell', { name: 'u_2' }).count()).toBeGreaterThan(0);

    // times carry their zone; the UTC toggle switches it
    await page().getByRole('checkbox', { name: 'UTC' }).check();
    await poll(() => page().getByRole('columnheader', { name: /Time \(UTC\)/ }).count()).toBe(1);
    await w.shot('logs');

    // drag across the histogram: the range becomes that stretch, the list follows
    // uPlot's drag surface (.u-over) is the chart's inside: no role of its own
    const box = (await page().getByRole('figure', { name: /Events by level/ }).locator('.u-over').boundingBox())!;
    await page().mouse.move(box.x + box.width * 0.05, box.y + box.height / 2);
    await page().mouse.down();
    await page().mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
    await page().mouse.up();
    await poll(() => page().url()).toContain('range=custom');
    await poll(() => page().getByLabel('Range').inputValue()).toBe('custom');
    // a fixed range has nothing to refresh
    expect(await page().getByLabel('Auto-refresh').isDisabled()).toBe(true);
    await poll(() => logRows().count()).toBeLessThan(SEEDED);
    await page().getByLabel('Range').selectOption('24h');
    await poll(() => logRows().count()).toBe(SEEDED);
    await page().getByRole('checkbox', { name: 'UTC' }).uncheck();
    expectNoProblems(w);
  });

  it('logs: live tail', async () => {
    const live = page().getByRole('button', { name: /Live/ });
    await live.click();
    await poll(() => live.textContent()).toContain('Live ·');
    const r = await call(te.url, 'POST', '/monitoring/logs', { body: { project_id: P, message: 'arrived while watching', engine: 'execution' } });
    expect(r.status).toBe(200);
    await poll(() => logRows().filter({ hasText: 'arrived while watching' }).count()).toBe(1);
    await live.click();
    expectNoProblems(w);
  });

  it('logs: the next page loads when the end of the table scrolls into view', async () => {
    await page().getByRole('combobox', { name: 'Project' }).fill(BULK);
    await page().getByRole('combobox', { name: 'Project' }).press('Enter');
    await poll(() => logRows().count()).toBe(100);
    await poll(() => total().textContent()).toBe('170 events');
    await logRows().last().scrollIntoViewIfNeeded();
    await poll(() => logRows().count()).toBe(170);
    await poll(() => page().getByText('End of results').count()).toBe(1);
    expectNoProblems(w);
  });

  it('auto-refresh reloads a relative range on its timer (the page clock fast-forwarded)', async () => {
    const other = await w.browser.newPage({ viewport: { width: 1200, height: 800 } });
    const seen: string[] = [];
    other.on('console', (m) => { if (m.type() === 'error') seen.push(m.text()); });
    await other.addInitScript((t) => localStorage.setItem('puraify.monitoring.token', t), te.token);
    await other.clock.install();
    await other.goto(`${te.url}/#/logs?project=${P}&query=${encodeURIComponent('"auto refreshed"')}`);
    await other.getByText('No events match').waitFor();
    await other.getByLabel('Auto-refresh').selectOption('10s');
    expect((await call(te.url, 'POST', '/monitoring/logs', { body: { project_id: P, message: 'auto refreshed', engine: 'execution' } })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    await other.clock.fastForward(10_500);
    await poll(() => eventRows(other).count()).toBe(1);
    await other.close();
    expect(seen).toEqual([]);
  });

  it('a refresh of a relative range keeps the rows on screen until its answer replaces them; a failed refresh keeps them beside the error', async () => {
    const other = await w.browser.newPage({ viewport: { width: 1400, height: 900 } });
    const seen: string[] = [];
    other.on('console', (m) => { if (m.type() === 'error') seen.push(m.text()); });
    await other.addInitScript((t) => localStorage.setItem('puraify.monitoring.token', t), te.token);
    await other.goto(`${te.url}/#/logs?project=${P}&range=1h`);
    const loading = other.getByText('Loading…', { exact: true });
    // the seeded events and those earlier tests added
    await poll(() => other.getByText(/\d+ shown/).count()).toBe(1);
    const n = await eventRows(other).count();
    expect(n).toBeGreaterThanOrEqual(SEEDED);
    const refresh = other.getByRole('button', { name: 'Refresh', exact: true });

    // the engine's answer to the refresh is held: the rows of before stay, marked as loading
    let held = await hold(other, '/monitoring/logs');
    await refresh.click();
    await held.arrived;
    await poll(() => loading.count()).toBe(1);
    expect(await eventRows(other).count()).toBe(n);
    expect(await other.getByText(/No events match/).count()).toBe(0);
    await held.release();
    await poll(() => loading.count()).toBe(0);
    expect(await eventRows(other).count()).toBe(n);

    // a refresh the engine refuses (400: the request's range made unreadable on its way): the error is
    // shown and the last good rows stay
    const match = (u: URL) => u.pathname === '/monitoring/logs';
    const spoil = async (r: Route) => {
      const u = new URL(r.request().url());
      u.searchParams.set('from', 'not-a-time');
      await r.continue({ url: u.toString() });
    };
    await other.route(match, spoil);
    await refresh.click();
    await poll(() => other.getByRole('alert').count()).toBeGreaterThan(0);
    expect(await other.getByRole('alert').first().textContent()).toContain('400');
    expect(await eventRows(other).count()).toBe(n);
    await other.unroute(match, spoil);
    // the next good refresh clears the error
    await refresh.click();
    await poll(() => other.getByRole('alert').count()).toBe(0);
    expect(await eventRows(other).count()).toBe(n);

    // the error groups likewise
    await other.goto(`${te.url}/#/errors?project=${P}&range=1h`);
    const groups = other.getByRole('table', { name: 'Error groups' }).getByRole('row').filter({ hasNot: other.getByRole('columnheader') });
    await poll(() => groups.count()).toBeGreaterThan(0);
    await poll(() => loading.count()).toBe(0);
    const m = await groups.count();
    held = await hold(other, '/monitoring/errors');
    await refresh.click();
    await held.arrived;
    await poll(() => loading.count()).toBe(1);
    expect(await groups.count()).toBe(m);
    await held.release();
    await poll(() => loading.count()).toBe(0);
    expect(await groups.count()).toBe(m);
    await other.close();

    // auto-refresh (its own "now", not the Refresh button): the same
    const ticking = await w.browser.newPage({ viewport: { width: 1400, height: 900 } });
    ticking.on('console', (msg) => { if (msg.type() === 'error') seen.push(msg.text()); });
    await ticking.addInitScript((t) => localStorage.setItem('puraify.monitoring.token', t), te.token);
    await ticking.clock.install();
    await ticking.goto(`${te.url}/#/logs?project=${P}&range=1h`);
    await poll(() => eventRows(ticking).count()).toBe(n);
    await ticking.getByLabel('Auto-refresh').selectOption('10s');
    held = await hold(ticking, '/monitoring/logs');
    await ticking.clock.fastForward(10_500);
    await held.arrived;
    await poll(() => ticking.getByText('Loading…', { exact: true }).count()).toBe(1);
    expect(await eventRows(ticking).count()).toBe(n);
    await held.release();
    await poll(() => ticking.getByText('Loading…', { exact: true }).count()).toBe(0);
    expect(await eventRows(ticking).count()).toBe(n);
    await ticking.close();
    // the one refusal we caused
    expect(seen.filter((s) => !/Failed to load resource.*400/.test(s))).toEqual([]);
  });

  it('loading is distinct from empty: a held answer shows "Loading…", then rows or "No events"', async () => {
    await pickProject(BULK);
    await poll(() => total().textContent()).toBe('170 events');
    const loading = page().getByText('Loading…', { exact: true });
    const empty = page().getByText(/No events match/);
    // a search that matches nothing: while its answer is held, the page says it is loading, not that nothing matched
    let held = await hold(page(), '/monitoring/logs');
    await page().getByRole('searchbox', { name: 'Search' }).fill('"no such words anywhere"');
    await page().getByRole('button', { name: 'Search', exact: true }).click();
    await held.arrived;
    await poll(() => loading.count()).toBe(1);
    expect(await empty.count()).toBe(0);
    expect(await logRows().count()).toBe(0);
    expect(await page().getByText(/\d shown/).count()).toBe(0);
    await held.release();
    await poll(() => empty.count()).toBe(1);
    expect(await loading.count()).toBe(0);

    // and back to every event: loading (no "No events", no rows of the empty search), then the rows
    held = await hold(page(), '/monitoring/logs');
    await page().getByRole('searchbox', { name: 'Search' }).fill('');
    await page().getByRole('button', { name: 'Search', exact: true }).click();
    await held.arrived;
    await poll(() => loading.count()).toBe(1);
    expect(await empty.count()).toBe(0);
    await held.release();
    await poll(() => logRows().count()).toBe(100);
    expect(await empty.count()).toBe(0);

    // the error list likewise: loading, not "no error groups", until its answer lands
    held = await hold(page(), '/monitoring/errors');
    await tab('Errors').click();
    await held.arrived;
    await poll(() => page().getByText('Loading…', { exact: true }).count()).toBe(1);
    expect(await page().getByText(/No open error groups/).count()).toBe(0);
    expect(await groupRows().count()).toBe(0);
    await held.release();
    await poll(() => groupRows().count()).toBe(50);
    await tab('Logs').click();
    expectNoProblems(w);
  });

  it('errors: paged, searched, resolved in bulk; a group with its events stepped through', async () => {
    await page().getByRole('combobox', { name: 'Project' }).fill(BULK);
    await page().getByRole('combobox', { name: 'Project' }).press('Enter');
    await tab('Errors').click();
    await poll(() => page().getByRole('navigation', { name: 'pages' }).textContent()).toContain('1–50 of 60 groups');
    const rows = groupRows();
    expect(await rows.count()).toBe(50);
    await page().getByRole('button', { name: 'Next page' }).click();
    await poll(() => rows.count()).toBe(10);
    await page().getByRole('button', { name: 'Previous page' }).click();
    await poll(() => rows.count()).toBe(50);

    // select two and resolve them: they leave the open list
    await page().getByRole('checkbox', { name: 'Select FailureAA' }).check();
    await page().getByRole('checkbox', { name: 'Select FailureBA' }).check();
    await page().getByRole('button', { name: 'Resolve selected' }).click();
    await poll(() => page().getByRole('navigation', { name: 'pages' }).textContent()).toContain('of 58 groups');
    await w.shot('errors-list');

    // the search box: text or the query language, whichever the engine speaks
    await page().getByRole('searchbox', { name: 'Search errors' }).fill('FailureCA');
    await page().getByRole('button', { name: 'Search', exact: true }).click();
    await poll(() => rows.count()).toBe(1);
    await page().getByRole('searchbox', { name: 'Search errors' }).fill('');
    await page().getByRole('button', { name: 'Search', exact: true }).click();

    // one group, in project P: its stack, distributions, and every event with previous/next
    await page().getByRole('combobox', { name: 'Project' }).fill(P);
    await page().getByRole('combobox', { name: 'Project' }).press('Enter');
    const group = rows.filter({ hasText: 'api_timeout' });
    await poll(() => group.count()).toBe(1);
    await group.click();
    const pane = page().getByRole('complementary', { name: 'error group' });
    await poll(() => pane.getByRole('region', { name: 'Stack' }).textContent()).toContain('at callNotion (/app/src/notion.ts:42:11)');
    await poll(() => pane.getByText(/Event 1 of 2/).count()).toBe(1);
    await poll(() => pane.getByRole('region', { name: 'Users' }).textContent()).toContain('u_2');
    // attributes whose values vary across the samples get a distribution; a constant one does not
    const attrs = pane.getByLabel('Attributes that vary');
    await poll(() => attrs.getByRole('region', { name: 'attr.notion_region' }).textContent()).toContain('us-1');
    expect(await attrs.textContent()).toContain('eu-1');
    expect(await attrs.textContent()).not.toContain('workspace');
    await pane.getByRole('button', { name: 'Older event' }).click();
    await poll(() => pane.getByText(/Event 2 of 2/).count()).toBe(1);
    await poll(() => pane.getByRole('group', { name: 'Event details' }).textContent()).toContain('u_1');
    await w.shot('errors');

    await pane.getByRole('button', { name: 'Resolve' }).click();
    await poll(() => pane.getByRole('status', { name: 'Group state' }).textContent()).toContain('resolved');
    await poll(() => group.count()).toBe(0);
    await pane.getByRole('button', { name: 'Reopen' }).click();
    await poll(() => group.count()).toBe(1);
    // Esc closes the pane
    await page().getByRole('main').press('Escape');
    await poll(() => pane.count()).toBe(0);
    expectNoProblems(w);
  });

  it('errors: each sort orders the groups by it; Ignore selected ignores them in the engine', async () => {
    // three groups that every sort orders differently
    const SORTP = 'dash_sort';
    const now = Date.now();
    const ev = (type: string, user: string, minutesAgo: number) => ({ project_id: SORTP, engine: 'execution', status: 'error', error_type: type, message: `${type} happened`, user_id: user, timestamp: now - minutesAgo * 60_000 });
    const r = await call(te.url, 'POST', '/monitoring/logs', { body: [
      // BusyError: 4 events, 1 user, first seen 50 min ago, last seen 30 s ago
      ev('BusyError', 'u_a', 50), ev('BusyError', 'u_a', 49), ev('BusyError', 'u_a', 48), ev('BusyError', 'u_a', 0.5),
      // FreshError: 1 event, 1 user, first and last seen 1 min ago
      ev('FreshError', 'u_b', 1),
      // SpreadError: 3 events from 3 users, first seen 30 min ago, last 28
      ev('SpreadError', 'u_c1', 30), ev('SpreadError', 'u_c2', 29), ev('SpreadError', 'u_c3', 28),
    ] });
    expect(r.body.accepted).toBe(8);
    await pickProject(SORTP);
    await tab('Errors').click();
    const names = ['BusyError', 'FreshError', 'SpreadError'];
    const order = async () => (await groupRows().allTextContents()).map((t) => names.find((n) => t.includes(n)) ?? t);
    const sortBy = page().getByRole('combobox', { name: 'Sort' });
    await poll(order).toEqual(['BusyError', 'SpreadError', 'FreshError']); // most events (the default)
    await sortBy.selectOption('last_seen');
    await poll(order).toEqual(['BusyError', 'FreshError', 'SpreadError']);
    expect(hashParams().get('sort')).toBe('last_seen');
    await sortBy.selectOption('first_seen');
    await poll(order).toEqual(['FreshError', 'SpreadError', 'BusyError']);
    await sortBy.selectOption('users');
    await poll(async () => (await order())[0]).toBe('SpreadError');
    await sortBy.selectOption('count');
    await poll(order).toEqual(['BusyError', 'SpreadError', 'FreshError']);

    // ignore two at once: they leave the open list, and the engine has them ignored
    await page().getByRole('checkbox', { name: 'Select FreshError' }).check();
    await page().getByRole('checkbox', { name: 'Select SpreadError' }).check();
    await poll(() => page().getByRole('group', { name: 'bulk actions' }).textContent()).toContain('2 selected');
    await page().getByRole('button', { name: 'Ignore selected' }).click();
    await poll(order).toEqual(['BusyError']);
    const states = async (state: string) => (await call(te.url, 'GET', `/monitoring/errors?project_id=${SORTP}&state=${state}`)).body.groups
      .map((g: any) => `${g.error_type}:${g.state}`).sort();
    expect(await states('ignored')).toEqual(['FreshError:ignored', 'SpreadError:ignored']);
    expect(await states('open')).toEqual(['BusyError:open']);
    await page().getByRole('group', { name: 'state' }).getByRole('button', { name: 'Ignored' }).click();
    await poll(order).toEqual(['SpreadError', 'FreshError']);
    await page().getByRole('group', { name: 'state' }).getByRole('button', { name: 'Open' }).click();
    await poll(order).toEqual(['BusyError']);
    expectNoProblems(w);
  });

  it('zoom by dragging: the performance charts and an error group\'s chart narrow the range', async () => {
    await pickProject(P);
    await page().getByLabel('Range', { exact: true }).selectOption('24h');
    const span = () => Number(hashParams().get('to')) - Number(hashParams().get('from'));

    await tab('Performance').click();
    const sendRow = page().getByRole('row', { name: /send_message/ });
    await poll(() => sendRow.count()).toBe(1);
    // an early stretch of the day: the range is that stretch, and none of the events (all in the last 40 min) are in it
    const t0 = Date.now();
    await drag(page().getByRole('figure', { name: /^Events per/ }), 0.05, 0.5);
    await poll(() => hashParams().get('range')).toBe('custom');
    expect(await page().getByLabel('Range', { exact: true }).inputValue()).toBe('custom');
    expect(span()).toBeGreaterThan(0.3 * 86_400_000);
    expect(span()).toBeLessThan(0.6 * 86_400_000);
    expect(Number(hashParams().get('to'))).toBeLessThan(t0 - 0.4 * 86_400_000);
    await poll(() => page().getByText('No events in this range.').count()).toBe(1);
    expect(await sendRow.count()).toBe(0);
    // the p95 chart zooms too: the last part of the day, where the events are
    await page().getByLabel('Range', { exact: true }).selectOption('24h');
    await poll(() => sendRow.count()).toBe(1);
    await drag(page().getByRole('figure', { name: /^p95 duration/ }), 0.9, 0.999);
    await poll(() => hashParams().get('range')).toBe('custom');
    expect(span()).toBeLessThan(0.2 * 86_400_000);
    expect(Number(hashParams().get('from'))).toBeGreaterThan(t0 - 0.2 * 86_400_000);
    await poll(() => sendRow.count()).toBe(1);
    await w.shot('performance-zoomed');

    // an error group's chart: the range narrows, the group stays open with its events in that range
    await page().getByLabel('Range', { exact: true }).selectOption('24h');
    await tab('Errors').click();
    const group = groupRows().filter({ hasText: 'api_timeout' });
    await poll(() => group.count()).toBe(1);
    await group.click();
    const pane = page().getByRole('complementary', { name: 'error group' });
    const chart = pane.getByRole('figure', { name: /^Events per/ });
    await poll(() => chart.locator('canvas').count()).toBeGreaterThan(0);
    await drag(chart, 0.7, 0.999);
    await poll(() => hashParams().get('range')).toBe('custom');
    expect(span()).toBeLessThan(0.4 * 86_400_000);
    expect(Number(hashParams().get('from'))).toBeGreaterThan(t0 - 0.4 * 86_400_000);
    // the drag reached the right edge: the newest bucket, with both events, is in the range
    expect(Number(hashParams().get('to'))).toBeGreaterThan(t0);
    expect(hashParams().get('fp')).toBeTruthy();
    await poll(() => pane.getByRole('heading', { level: 2 }).textContent()).toBe('api_timeout');
    await poll(() => pane.getByRole('definition').first().textContent()).toBe('2');
    await page().getByLabel('Range', { exact: true }).selectOption('24h');
    await pane.getByRole('button', { name: 'close' }).click();
    expectNoProblems(w);
  });

  it('performance: two charts sharing a cursor, and the platform/action table', async () => {
    await tab('Performance').click();
    await poll(() => page().getByRole('img', { name: /chart$/ }).locator('canvas').count()).toBeGreaterThanOrEqual(2);
    await poll(() => page().getByRole('row', { name: /send_message/ }).count()).toBe(1);
    // hovering one chart moves the other's cursor (uPlot's drag surface and cursor line: canvas internals)
    const overs = page().locator('.u-over');
    const b = (await overs.nth(0).boundingBox())!;
    await page().mouse.move(b.x + b.width * 0.7, b.y + b.height / 2);
    await poll(() => page().locator('.u-cursor-x').nth(1).evaluate((el) => getComputedStyle(el).transform !== 'none' || (el as HTMLElement).style.transform !== '')).toBe(true);
    await w.shot('performance');
    expectNoProblems(w);
  });

  it('replays a session: waterfall, stepper with the keyboard, jump to the first error, play', async () => {
    await tab('Sessions').click();
    await page().getByRole('link', { name: 'sess_dash_1' }).click();
    const controls = page().getByRole('group', { name: 'replay controls' });
    // it opens on the first error
    await poll(() => controls.textContent()).toContain('Step 3 of 3');
    expect(await page().getByRole('list', { name: 'steps on a time axis' }).getByRole('listitem').filter({ hasText: 'first error' }).count()).toBe(1);
    const detail = page().getByLabel('current step');
    await poll(() => detail.textContent()).toContain('api_timeout');
    await page().keyboard.press('ArrowLeft');
    await poll(() => controls.textContent()).toContain('Step 2 of 3');
    await poll(() => detail.textContent()).toContain('page drafted');
    await page().keyboard.press('ArrowLeft');
    await poll(() => detail.textContent()).toContain('flow started');
    // the gap bars are drawn to scale: 1.5 s then 7.5 s
    // (the gap bars are drawing, hidden from assistive tech: measured by their class)
    const widths = await page().locator('.wf-gap').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().width));
    expect(widths).toHaveLength(2);
    expect(widths[1] / widths[0]).toBeGreaterThan(4);
    expect(widths[1] / widths[0]).toBeLessThan(6);
    await controls.getByRole('button', { name: 'Jump to the first error' }).click();
    await poll(() => controls.textContent()).toContain('Step 3 of 3');
    await controls.getByRole('button', { name: 'Previous step' }).click();
    await controls.getByRole('button', { name: 'Previous step' }).click();
    await controls.getByRole('button', { name: 'Play 16×' }).click();
    await poll(() => controls.textContent(), 5000).toContain('Step 3 of 3');
    await w.shot('sessions');
    expectNoProblems(w);
  });

  it('works at 390 px: the open pane covers the list; dark theme', async () => {
    await page().setViewportSize({ width: 390, height: 844 });
    await page().getByRole('combobox', { name: 'Theme' }).selectOption('dark');
    await poll(() => page().evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    await tab('Errors').click();
    const group = groupRows().filter({ hasText: 'api_timeout' });
    await poll(() => group.count()).toBe(1);
    await group.click();
    const pane = page().getByRole('complementary', { name: 'error group' });
    await poll(() => pane.getByRole('region', { name: 'Stack' }).count()).toBe(1);
    const box = (await pane.boundingBox())!;
    expect(box.width).toBeGreaterThan(380);
    expect(box.x).toBeLessThan(5);
    await w.shot('narrow-errors');
    await pane.getByRole('button', { name: 'close' }).click();
    await w.shot('narrow-errors-list');
    await page().getByRole('combobox', { name: 'Theme' }).selectOption('system');
    await page().setViewportSize({ width: 1400, height: 900 });
    await page().getByRole('link', { name: 'Skip to content' }).focus();
    await page().keyboard.press('Enter');
    expect(await page().evaluate(() => document.activeElement?.id)).toBe('main');
    expectNoProblems(w);
  });

  it('a read-only key: actions it cannot do are disabled with the reason; a 403 shows no rows of before', async () => {
    const key = (await te.engine.keys.create({ name: 'reader', scopes: ['read'], project_id: P })).token;
    await page().evaluate((k) => localStorage.setItem('puraify.monitoring.token', k), key);
    await page().goto(`${te.url}/#/errors?project=${P}`);
    await page().reload();
    const group = groupRows().filter({ hasText: 'api_timeout' });
    await poll(() => group.count()).toBe(1);
    await group.click();
    const resolve = page().getByRole('complementary', { name: 'error group' }).getByRole('button', { name: 'Resolve', exact: true });
    await w.shot('read-only-errors');
    await poll(() => resolve.isDisabled()).toBe(true);
    expect(await resolve.getAttribute('title')).toContain('no "admin" scope');
    await tab('Rules').click();
    await poll(() => page().getByRole('button', { name: 'New rule' }).isDisabled()).toBe(true);
    // another project: the key may not read it; the page says so and shows none of P's rows
    await tab('Logs').click();
    await poll(() => logRows().count()).toBeGreaterThan(0);
    // both refusals (the rows, and the Alerts tab's unread count) arrive before the problems are checked
    const refused = (p: string) => page().waitForResponse((r) => new URL(r.url()).pathname === p && r.url().includes('project_id=someone_else') && r.status() === 403);
    const both = Promise.all([refused('/monitoring/logs'), refused('/monitoring/notifications')]);
    await page().getByRole('combobox', { name: 'Project' }).fill('someone_else');
    await page().getByRole('combobox', { name: 'Project' }).press('Enter');
    await both;
    await poll(() => page().getByRole('alert').first().textContent()).toContain('403');
    expect(await logRows().count()).toBe(0);
    expectNoProblems(w, [/HTTP 403/, /console: Failed to load resource.*403/]);

    // a revoked token asks for a token again
    await page().evaluate(() => localStorage.setItem('puraify.monitoring.token', 'revoked-token-0123456789'));
    await page().reload();
    await poll(() => page().getByRole('alert').textContent()).toContain('unknown');
    expectNoProblems(w, [/HTTP 401/, /console: Failed to load resource.*401/]);
  });
});
