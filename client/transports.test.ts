// The pino and winston transports as a user gets them: a temp project with puraify-monitoring in its
// node_modules (a link to this package, resolved through package.json `exports`), real pino 10 and
// winston 3 in a child process, the engine storing what they send.
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, removeDir, startEngine, tempDir, type TestEngine } from '../test/helpers.js';
import { pinoRecordToEvent } from './pino.js';
import { winstonInfoToEvent } from './winston.js';
import { severityFromLevel } from './logger-conventions.js';

const ROOT = join(import.meta.dirname, '..');
let eng: TestEngine;
let app: string;

/** A project that installed puraify-monitoring, pino and winston. */
function userProject(): string {
  const dir = tempDir('pm-user-app-');
  mkdirSync(join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'user-app', type: 'module', private: true }));
  symlinkSync(ROOT, join(dir, 'node_modules', 'puraify-monitoring'), 'dir');
  for (const dep of ['pino', 'winston']) symlinkSync(join(ROOT, 'node_modules', dep), join(dir, 'node_modules', dep), 'dir');
  for (const f of ['pino-app.mjs', 'pino-unreachable.mjs', 'winston-app.mjs']) copyFileSync(join(import.meta.dirname, 'fixtures', f), join(dir, f));
  return dir;
}

function run(script: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [join(app, script), ...args], { cwd: app, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

beforeAll(async () => {
  eng = await startEngine();
  app = userProject();
});
afterAll(async () => {
  await eng?.close();
  if (eng) removeDir(eng.dataDir);
  if (app) removeDir(app);
});

const byMessage = (logs: any[]): any[] => [...logs].sort((a, b) => a.message.localeCompare(b.message));
const stored = async (project: string): Promise<any[]> =>
  (await call(eng.url, 'GET', `/monitoring/logs?project_id=${project}&order=asc&limit=100`)).body.logs;

describe('pino transport (puraify-monitoring/pino)', () => {
  it('a real pino 10 app: levels, messages, times mapped; logger.error(err) lands as one grouped error with its stack', async () => {
    const t0 = Date.now();
    const r = await run('pino-app.mjs', [eng.url, eng.token, 'tp_pino']);
    expect(r).toEqual({ code: 0, stderr: '' });
    // records logged in the same millisecond come back in id order: compare by message
    const logs = byMessage(await stored('tp_pino'));
    expect(logs.map((l) => [l.severity, l.event_type, l.message])).toEqual([
      ['high', 'error', 'card declined for 101'],
      ['high', 'error', 'card declined for 202'],
      ['high', 'error', 'card declined for 303'],
      ['critical', 'error', 'giving up'],
      ['info', 'log', 'order placed'],
      ['warning', 'log', 'payment slow'],
    ]);
    for (const l of logs) {
      expect(l.engine).toBe('billing');
      // the log's own time, not the receive time; pino's fields are not kept twice
      expect(Date.parse(l.timestamp)).toBeGreaterThanOrEqual(t0);
      expect(Date.parse(l.timestamp)).toBeLessThanOrEqual(Date.parse(l.received_at));
      expect(l.attributes).not.toHaveProperty('msg');
      expect(l.attributes).not.toHaveProperty('level');
      expect(l.attributes).not.toHaveProperty('time');
      expect(l.attributes.pid).toMatch(/^\d+$/);
    }
    expect(logs[4].attributes.order).toBe('42');
    const errs = logs.slice(0, 3);
    expect(errs.map((e) => e.error_type)).toEqual(['TypeError', 'TypeError', 'TypeError']);
    expect(errs[0].stack).toMatch(/^TypeError: card declined for 101\n\s+at charge /);
    expect(new Set(errs.map((e) => e.fingerprint)).size).toBe(1);
    expect(logs[3]).toMatchObject({ error_type: 'RangeError' });
    expect(logs[3].stack).toMatch(/RangeError: out of funds/);

    const groups = (await call(eng.url, 'GET', '/monitoring/errors?project_id=tp_pino')).body.groups;
    const declined = groups.find((g: any) => g.fingerprint === errs[0].fingerprint);
    expect(declined).toMatchObject({ error_type: 'TypeError', count: 3, engine: 'billing' });
  });
});

describe('pino transport, engine unreachable', () => {
  it('gives up at closeTimeoutMs when the process exits and says what it dropped on stderr', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address() as AddressInfo;
    await new Promise<void>((r) => s.close(() => r())); // nothing listens there now
    const t0 = Date.now();
    const r = await run('pino-unreachable.mjs', [`http://127.0.0.1:${port}`]);
    expect(r.code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    expect(r.stderr).toMatch(/puraify-monitoring\/pino: 2 record\(s\) dropped: close\(\) timed out after 1500 ms/);
  });
});

describe('winston transport (puraify-monitoring/winston)', () => {
  it('a real winston 3 app: logger.error(err) lands as a grouped error with its stack; meta kept as attributes', async () => {
    const r = await run('winston-app.mjs', [eng.url, eng.token, 'tp_winston']);
    expect(r).toEqual({ code: 0, stderr: '' });
    const logs = byMessage(await stored('tp_winston'));
    expect(logs.map((l) => [l.severity, l.event_type, l.message])).toEqual([
      ['warning', 'log', 'carrier slow'],
      ['high', 'error', 'no route for parcel 2'],
      ['high', 'error', 'no route for parcel 3'],
      ['info', 'log', 'parcel received'],
      ['debug', 'log', 'routing table loaded'],
    ]);
    expect(logs.every((l) => l.engine === 'shipping')).toBe(true);
    expect(logs[3].attributes).toEqual({ parcel: '7' });
    expect(logs[0].attributes).toEqual({ carrier: 'dhl' });
    const errs = logs.slice(1, 3);
    expect(errs.map((e) => e.error_type)).toEqual(['RangeError', 'RangeError']);
    expect(errs[0].stack).toMatch(/^RangeError: no route for parcel 2\n\s+at ship /);
    expect(errs[0].fingerprint).toBe(errs[1].fingerprint);
    const groups = (await call(eng.url, 'GET', '/monitoring/errors?project_id=tp_winston')).body.groups;
    expect(groups).toEqual([expect.objectContaining({ fingerprint: errs[0].fingerprint, error_type: 'RangeError', count: 2 })]);
  });
});

describe('record mapping', () => {
  it('levels: pino numbers 10–60, their names and other loggers\' names onto our severities', () => {
    expect([10, 20, 30, 40, 50, 60].map(severityFromLevel)).toEqual(['debug', 'debug', 'info', 'warning', 'high', 'critical']);
    expect(['trace', 'silly', 'http', 'WARN', 'error', 'fatal', 'emerg', '50', 'custom'].map(severityFromLevel))
      .toEqual(['debug', 'debug', 'info', 'warning', 'high', 'critical', 'critical', 'high', 'custom']);
    expect([0, -1, '', {}, null].map(severityFromLevel)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('pino: a field the record sets itself wins; err extras stay', () => {
    const ev = pinoRecordToEvent(
      { level: 50, time: 1_750_000_000_000, msg: 'x', severity: 'low', err: { type: 'E', message: 'm', stack: 's', code: 'ECONN' } },
      { url: 'u', token: 't', project_id: 'p' },
    );
    expect(ev).toEqual({ level: 50, timestamp: 1_750_000_000_000, message: 'x', severity: 'low', error_type: 'E', stack: 's', err: { code: 'ECONN' }, project_id: 'p' });
  });

  it('winston: an Error as the info object, and a plain info with an Error in its meta', () => {
    const e = Object.assign(new SyntaxError('bad'), { level: 'error' });
    expect(winstonInfoToEvent(e as unknown as Record<string, unknown>, { url: 'u', token: 't' })).toMatchObject({
      severity: 'high', error_type: 'SyntaxError', message: 'bad', stack: expect.stringMatching(/^SyntaxError: bad/),
    });
    const ev = winstonInfoToEvent({ level: 'warn', message: 'retrying', cause: new TypeError('t') }, { url: 'u', token: 't' });
    expect(ev).toMatchObject({ severity: 'warning', message: 'retrying', cause: { type: 'TypeError', message: 't' } });
  });
});
