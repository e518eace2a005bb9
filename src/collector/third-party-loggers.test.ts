// Third-party logger transports, unchanged, against the engine over HTTP: pino-opentelemetry-transport
// (OTLP /v1/logs), pino-http-send (POST /monitoring/logs, its JSON `{logs: […]}` and NDJSON bodies,
// as a pino destination and as the CLI it documents) and winston's built-in transports.Http (a JSON
// record per request, or arrays when batching). Each runs as a user's app in a child process, with a
// key bound to one project, so no record names its project.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, useEngine } from '../../test/helpers.js';

const t = useEngine();
const FIXTURES = join(import.meta.dirname, 'fixtures');
const ROOT = join(import.meta.dirname, '..', '..');

interface Run { code: number | null; stderr: string }

function run(script: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [join(FIXTURES, script), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

/** `node app | pino-http-send <args>`, as pino-http-send's README shows it. */
function runPiped(script: string, cliArgs: string[]): Promise<[Run, Run]> {
  const app = spawn(process.execPath, [join(FIXTURES, script)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const cli = spawn(process.execPath, [join(ROOT, 'node_modules/pino-http-send/dist/bin.js'), ...cliArgs], { cwd: ROOT, stdio: ['pipe', 'ignore', 'pipe'] });
  app.stdout.pipe(cli.stdin);
  const done = (p: typeof app | typeof cli): Promise<Run> => {
    let stderr = '';
    p.stderr!.on('data', (d) => { stderr += d; });
    return new Promise((resolve, reject) => {
      p.on('error', reject);
      p.on('exit', (code) => resolve({ code, stderr }));
    });
  };
  return Promise.all([done(app), done(cli)]);
}

const byMessage = (logs: any[]): any[] => [...logs].sort((a, b) => a.message.localeCompare(b.message));

/** A fresh project and a key bound to it. */
async function project(name: string): Promise<{ project: string; token: string }> {
  return { project: name, token: (await t.key(name)).token };
}

/** Waits until `n` records of the project are stored (senders that do not wait for their answer). */
async function storedN(project: string, n: number): Promise<any[]> {
  for (let i = 0; i < 100; i++) {
    const logs = (await t.logs({ project_id: project })).filter((l) => l.event_type !== 'audit'); // creating the key is audited there
    if (logs.length >= n) return logs;
    await new Promise((r) => setTimeout(r, 50));
  }
  return (await t.logs({ project_id: project })).filter((l) => l.event_type !== 'audit');
}

/**
 * What the pino apps log (fixtures/pino-*.mjs): info, warn, three caught TypeErrors thrown at the
 * same place, and fatal with a RangeError; each stored with its severity, message, pino's time and
 * the error grouped with its stack.
 */
async function expectPinoApp(project: string, t0: number, extra: (log: any) => void): Promise<void> {
  const logs = byMessage(await storedN(project, 6));
  expect(logs.map((l) => [l.severity, l.event_type, l.message])).toEqual([
    ['high', 'error', 'card declined for 101'],
    ['high', 'error', 'card declined for 202'],
    ['high', 'error', 'card declined for 303'],
    ['critical', 'error', 'giving up'],
    ['info', 'log', 'order placed'],
    ['warning', 'log', 'payment slow'],
  ]);
  for (const l of logs) {
    expect(l.project_id).toBe(project);
    // pino's own time, not the receive time
    expect(Date.parse(l.timestamp)).toBeGreaterThanOrEqual(t0);
    expect(Date.parse(l.timestamp)).toBeLessThanOrEqual(Date.parse(l.received_at));
    extra(l);
  }
  expect(logs[4].attributes.order).toBe('42');
  const errs = logs.slice(0, 3);
  expect(errs.map((e) => e.error_type)).toEqual(['TypeError', 'TypeError', 'TypeError']);
  expect(errs[0].stack).toMatch(/^TypeError: card declined for 101\n\s+at charge \(file:\/\/.*pino-[a-z-]+-app\.mjs:\d+:\d+\)/);
  expect(new Set(errs.map((e) => e.fingerprint)).size).toBe(1);
  for (const e of errs) for (const k of ['err', 'err.type', 'err.message', 'err.stack']) expect(e.attributes).not.toHaveProperty([k]);
  expect(logs[3]).toMatchObject({ error_type: 'RangeError' });
  expect(logs[3].stack).toMatch(/^RangeError: out of funds\n\s+at /);

  const groups = (await call(t.url, 'GET', `/monitoring/errors?project_id=${project}`)).body.groups;
  expect(groups.map((g: any) => [g.error_type, g.count]).sort()).toEqual([['RangeError', 1], ['TypeError', 3]]);
  expect(groups.find((g: any) => g.error_type === 'TypeError').fingerprint).toBe(errs[0].fingerprint);
}

describe('pino-opentelemetry-transport → POST /v1/logs', () => {
  const otelEnv = (token: string, extra: Record<string, string> = {}): Record<string, string> => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: t.url,
    OTEL_EXPORTER_OTLP_HEADERS: `Authorization=Bearer%20${token}`,
    OTEL_SERVICE_NAME: 'billing',
    ...extra,
  });
  for (const [name, extra] of [
    ['protobuf (its default)', {}],
    ['http/json + gzip', { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' }],
  ] as const) {
    it(`${name}: levels, messages, times; logger.error(err) grouped with its stack; the project from the key`, async () => {
      const { project: p, token } = await project(`tl_otel_${name.startsWith('proto') ? 'pb' : 'json'}`);
      const t0 = Date.now();
      const r = await run('pino-otel-app.mjs', [], otelEnv(token, extra));
      expect(r).toEqual({ code: 0, stderr: '' });
      await expectPinoApp(p, t0, (l) => {
        expect(l.engine).toBe('billing');
        expect(l.attributes).toMatchObject({ 'otel.scope.name': 'billing-logger', 'otel.scope.version': '1.4.0' });
        expect(l.attributes['process.pid']).toMatch(/^\d+$/);
      });
    });
  }
});

describe('pino-http-send → POST /monitoring/logs', () => {
  for (const bodyType of ['json', 'ndjson']) {
    it(`createWriteStream, bodyType ${bodyType}: the same records, mapped the same way`, async () => {
      const { project: p, token } = await project(`tl_phs_${bodyType}`);
      const t0 = Date.now();
      const r = await run('pino-http-send-app.mjs', [`${t.url}/monitoring/logs`, token, bodyType]);
      expect(r).toEqual({ code: 0, stderr: '' });
      await expectPinoApp(p, t0, (l) => {
        expect(l.attributes.pid).toMatch(/^\d+$/);
        expect(l.attributes).not.toHaveProperty('logs');
      });
    });
  }

  it('the CLI, `node app | pino-http-send --url … -b ndjson -u … -p <key>` (basic auth)', async () => {
    const { project: p, token } = await project('tl_phs_cli');
    const t0 = Date.now();
    const [app, cli] = await runPiped('pino-http-send-app.mjs', ['--url', `${t.url}/monitoring/logs`, '-b', 'ndjson', '-u', 'pino', '-p', token, '-t', '200']);
    expect(app).toEqual({ code: 0, stderr: '' });
    expect(cli).toEqual({ code: 0, stderr: '' });
    await expectPinoApp(p, t0, () => {});
  });
});

describe('winston transports.Http → POST /monitoring/logs', () => {
  for (const mode of ['one record a request', 'batch']) {
    it(`${mode}: levels, messages, winston's timestamp; logger.error(err) grouped with its stack`, async () => {
      const { project: p, token } = await project(`tl_winston_${mode === 'batch' ? 'batch' : 'single'}`);
      const t0 = Date.now();
      const r = await run('winston-http-app.mjs', [t.url, token, mode === 'batch' ? 'batch' : '']);
      expect(r).toEqual({ code: 0, stderr: '' });
      const logs = byMessage(await storedN(p, 5));
      expect(logs.map((l) => [l.severity, l.event_type, l.message])).toEqual([
        ['warning', 'log', 'carrier slow'],
        ['high', 'error', 'no route for parcel 2'],
        ['high', 'error', 'no route for parcel 3'],
        ['info', 'log', 'parcel received'],
        ['debug', 'log', 'routing table loaded'],
      ]);
      for (const l of logs) {
        expect(l).toMatchObject({ project_id: p, engine: 'shipping' });
        expect(Date.parse(l.timestamp)).toBeGreaterThanOrEqual(t0);
        expect(Date.parse(l.timestamp)).toBeLessThanOrEqual(Date.parse(l.received_at));
      }
      expect(logs[3].attributes).toEqual({ parcel: '7' });
      expect(logs[0].attributes).toEqual({ carrier: 'dhl' });
      const errs = logs.slice(1, 3);
      expect(errs.map((e) => e.error_type)).toEqual(['RangeError', 'RangeError']);
      expect(errs[0].stack).toMatch(/^RangeError: no route for parcel 2\n\s+at ship \(file:\/\/.*winston-http-app\.mjs:\d+:\d+\)/);
      expect(errs[0].fingerprint).toBe(errs[1].fingerprint);
      expect(errs[0].attributes).toEqual({});
      const groups = (await call(t.url, 'GET', `/monitoring/errors?project_id=${p}`)).body.groups;
      expect(groups).toEqual([expect.objectContaining({ fingerprint: errs[0].fingerprint, error_type: 'RangeError', count: 2, engine: 'shipping' })]);
    });
  }
});
