import { defineConfig } from 'vitest/config';

/** The suites that drive the control store (keys, rules, channels, silences, group states, settings, outbox). */
const CONTROL_STORE_SUITES = [
  'src/alerts/alerts.test.ts',
  'src/alerts/restart.test.ts',
  'src/auth/keys.test.ts',
  'src/auth/limits.test.ts',
  'src/auth/http.test.ts',
  'src/aggregator/http.test.ts',
  'src/retention/retention.test.ts',
  'src/forwarding/forwarding.test.ts',
  'test/route-auth.test.ts',
  'test/redaction-storage.test.ts',
  'src/alerts/manage.http.test.ts',
  'src/alerts/query-rules.test.ts',
  'src/alerts/ssrf.test.ts',
  'src/forwarding/replay.test.ts',
  'test/revocation.test.ts',
  'test/wal-alerts.test.ts',
];

/**
 * Suites that load the machine on purpose (2× overload, kill -9 loops, storage outages): they run after
 * the others, one file at a time, so their load never makes another suite's timing-bound wait fail.
 */
const LOAD_SUITES = ['test/wal-overload.test.ts', 'test/wal-crash.test.ts', 'test/wal-outage.test.ts'];

export default defineConfig({
  test: {
    // chDB is a process singleton per data path; each test file gets its own process and data dir.
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/control-db-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'default', include: ['src/**/*.test.ts', 'client/**/*.test.ts', 'test/**/*.test.ts'], exclude: LOAD_SUITES, sequence: { groupOrder: 0 } } },
      // the same suites again with the control state in PostgreSQL (127.0.0.1:5432, a database per data dir)
      { extends: true, test: { name: 'control-pg', include: CONTROL_STORE_SUITES, env: { PURAIFY_TEST_CONTROL_DB: 'postgres' }, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'load', include: LOAD_SUITES, sequence: { groupOrder: 1 }, maxWorkers: 1 } },
    ],
  },
});
