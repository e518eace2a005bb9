import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildQuery, formatEvent, OptionError, pointAt, resolveToken, SseParser } from './remote.js';
import { call, removeDir, startEngine, type TestEngine } from '../../test/helpers.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');

describe('buildQuery', () => {
  it('maps options onto the /monitoring/logs parameters', () => {
    const q = new URLSearchParams(buildQuery({
      project: 'pf_123', status: 'error', engine: 'execution', platform: 'Slack', q: 'token expired',
      from: '2025-07-25T00:00:00Z', to: '1753488000000', attr: ['region=eu', 'k=a=b'], limit: '50',
    }));
    expect([...q]).toEqual([
      ['project_id', 'pf_123'], ['status', 'error'], ['engine', 'execution'], ['platform', 'Slack'], ['q', 'token expired'],
      ['from', '2025-07-25T00:00:00Z'], ['to', '1753488000000'], ['attr.region', 'eu'], ['attr.k', 'a=b'], ['limit', '50'],
    ]);
    expect(buildQuery({})).toBe('');
    expect(buildQuery({ project: 'p', limit: '5' }, { withLimit: false, cursor: 'abc' })).toBe('project_id=p&cursor=abc');
  });
  it('sends the query expression as query=', () => {
    expect(buildQuery({ query: 'status:error "token expired"', project: 'p' })).toBe('project_id=p&query=status%3Aerror+%22token+expired%22');
  });
  it('points at the column of a query error', () => {
    expect(pointAt('status:error AND (x', 18)).toBe('  status:error AND (x\n                   ^');
    expect(pointAt('日本 foo:x', 4)).toBe('  日本 foo:x\n     ^');
  });
  it('rejects bad options', () => {
    expect(() => buildQuery({ limit: '0' })).toThrow(OptionError);
    expect(() => buildQuery({ limit: '1001' })).toThrow(OptionError);
    expect(() => buildQuery({ from: 'yesterday' })).toThrow(/--from/);
    expect(() => buildQuery({ attr: ['novalue'] })).toThrow(/--attr/);
  });
  it('takes the token from --token, then MONITORING_TOKEN, then the data dir', () => {
    expect(resolveToken({ token: 'a' }, { MONITORING_TOKEN: 'b' })).toBe('a');
    expect(resolveToken({}, { MONITORING_TOKEN: 'b' })).toBe('b');
    expect(resolveToken({ dataDir: '/d' }, {}, (f) => (f === join('/d', 'admin-token') ? 'c\n' : ''))).toBe('c');
    expect(() => resolveToken({ dataDir: '/nowhere' }, {}, () => { throw new Error('ENOENT'); })).toThrow(OptionError);
  });
});

describe('formatEvent', () => {
  const ev = {
    timestamp: '2025-07-25T14:01:00.000Z', project_id: 'pf_123', event_type: 'execution', status: 'error',
    platform: 'Slack', action: 'send_message', error_type: 'api_timeout', message: 'message',
  };
  it('prints one line', () => {
    expect(formatEvent(ev)).toBe('2025-07-25T14:01:00.000Z pf_123 execution error Slack/send_message api_timeout: message');
    expect(formatEvent({ ...ev, platform: null, action: null, error_type: null, status: null, message: 'a\n  b' }))
      .toBe('2025-07-25T14:01:00.000Z pf_123 execution a b');
  });
  it('prints JSON with --json', () => {
    expect(JSON.parse(formatEvent(ev, true))).toEqual(ev);
  });
});

describe('SseParser', () => {
  it('parses blocks split across chunks, skipping comments', () => {
    const p = new SseParser();
    expect(p.push(': live tail open\n\nid: 1\nevent: lo')).toEqual([]);
    expect(p.push('g\ndata: {"a":1}\n\n: heartbeat\n\nevent: missed\r\ndata: {"count":2}\r\n\r\n'))
      .toEqual([{ event: 'log', data: '{"a":1}' }, { event: 'missed', data: '{"count":2}' }]);
  });
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, MONITORING_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('query and tail against a running engine', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine();
    const events = [1, 2, 3].map((i) => ({
      project_id: 'p', event_type: 'execution', status: i === 2 ? 'error' : 'success', platform: 'Slack',
      action: 'send_message', message: `m${i}`, timestamp: `2025-07-25T14:0${i}:00Z`,
    }));
    const res = await call(t.url, 'POST', '/monitoring/logs', { token: t.token, body: [...events, { project_id: 'other', message: 'x' }] });
    expect(res.body.accepted).toBe(4);
  });
  afterAll(async () => {
    await t?.close();
    if (t) removeDir(t.dataDir);
  });

  it('query --json prints the project\'s events as NDJSON', async () => {
    const r = await run(['query', '--url', t.url, '--token', t.token, '--project', 'p', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((e) => e.message)).toEqual(['m3', 'm2', 'm1']);
    expect(lines.every((e) => e.project_id === 'p')).toBe(true);
  });

  it('query follows the cursor with --all and prints lines', async () => {
    const r = await run(['query', '--url', t.url, '--token', t.token, '--project', 'p', '--limit', '1', '--all']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([
      '2025-07-25T14:03:00.000Z p execution success Slack/send_message m3',
      '2025-07-25T14:02:00.000Z p execution error Slack/send_message m2',
      '2025-07-25T14:01:00.000Z p execution success Slack/send_message m1',
    ]);
    const one = await run(['query', '--url', t.url, '--token', t.token, '--project', 'p', '--status', 'error']);
    expect(one.stdout.trim()).toBe('2025-07-25T14:02:00.000Z p execution error Slack/send_message m2');
  });

  it('query takes an expression, --count counts it, and a bad one is shown with a caret', async () => {
    const r = await run(['query', '--url', t.url, '--token', t.token, 'platform:Slack -status:error (m1 OR m3)']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([
      '2025-07-25T14:03:00.000Z p execution success Slack/send_message m3',
      '2025-07-25T14:01:00.000Z p execution success Slack/send_message m1',
    ]);
    const c = await run(['query', '--url', t.url, '--token', t.token, '--count', 'platform:Slack']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout.trim()).toBe('3');
    const bad = await run(['query', '--url', t.url, '--token', t.token, 'platform:Slack AND (m1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('400 query: column 20: missing ) for the ( here');
    expect(bad.stderr).toContain('  platform:Slack AND (m1\n                     ^');
  });

  it('exits 1 with the API\'s message, 2 on bad options', async () => {
    const denied = await run(['query', '--url', t.url, '--token', 'wrong-token-0123456789']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/401/);
    const bad = await run(['query', '--url', t.url, '--token', t.token, '--limit', 'many']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--limit/);
  });

  it('tail prints an event posted after it connects', async () => {
    const child: ChildProcess = spawn(process.execPath, [CLI, 'tail', '--url', t.url, '--token', t.token, '--project', 'p'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => (stdout += d));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`tail did not connect: ${stderr}`)), 5000);
        child.stderr!.on('data', (d) => {
          stderr += d;
          if (stderr.includes('tailing')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const res = await call(t.url, 'POST', '/monitoring/logs', {
        token: t.token,
        body: { project_id: 'p', event_type: 'execution', status: 'error', platform: 'Notion', error_type: 'api_timeout', message: 'live one', timestamp: '2025-07-25T18:45:00Z' },
      });
      expect(res.status).toBe(200);
      const deadline = Date.now() + 5000;
      while (!stdout.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(stdout.trim()).toBe('2025-07-25T18:45:00.000Z p execution error Notion api_timeout: live one');
    } finally {
      child.kill('SIGINT');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
  });
});
