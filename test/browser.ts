// Shared by the dashboard's browser tests: one headless Chromium per test file, a page that
// records every console error and failed request (a test fails on any), and screenshots written
// under test-results/dashboard/ (git-ignored) for a person to look at.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';

export const CHROMIUM = '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);
export const SHOTS = join(import.meta.dirname, '..', 'test-results', 'dashboard');

export interface Watched {
  browser: Browser;
  page: Page;
  /** Console errors, uncaught exceptions, dialogs and 4xx/5xx answers seen so far. */
  problems: string[];
  shot(name: string): Promise<void>;
}

export async function openBrowser(viewport = { width: 1400, height: 900 }): Promise<Watched> {
  mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  const page = await browser.newPage({ viewport, acceptDownloads: true });
  page.setDefaultTimeout(10_000);
  const problems: string[] = [];
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('pageerror', (e) => problems.push(`page error: ${String(e)}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`); });
  return {
    browser, page, problems,
    shot: async (name) => { await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false }); },
  };
}

/** Waits for what the page shows; queries and re-renders take a moment. */
export function poll<T>(fn: () => Promise<T> | T, timeout = 10_000) {
  return expect.poll(fn, { timeout, interval: 50 });
}

/** Asserts nothing went wrong so far, except problems matching `expected` (then forgotten). */
export function expectNoProblems(w: Watched, expected: RegExp[] = []): void {
  const left = w.problems.filter((p) => !expected.some((r) => r.test(p)));
  w.problems.length = 0;
  expect(left).toEqual([]);
}
