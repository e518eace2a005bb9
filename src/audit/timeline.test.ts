import { describe, expect, it } from 'vitest';
import { changeInfo, clientAddress, toTimelineEntry } from './timeline.js';
import { csvCell, csvHeader, csvLine, entryToCsv, CSV_COLUMNS } from './csv.js';
import { row } from './test-rows.js';

describe('timeline entries', () => {
  it('say who, what, when, from where and with what outcome', () => {
    const e = toTimelineEntry(row({
      id: 'e1', timestamp: Date.parse('2025-07-25T14:01:00Z'), user_id: 'alice', session_id: 's1', event_type: 'flow_run',
      action: 'send_message', platform: 'Slack', flow_id: 'f1', engine: 'execution', triggered_by: 'execution_engine',
      status: 'error', error_type: 'token_expired', message: 'Failed', fingerprint: 'fp1', duration_ms: 12,
      attrs: { client_ip: '203.0.113.9', region: 'eu' },
    }));
    expect(e).toEqual({
      id: 'e1', project_id: 'pf', when: '2025-07-25T14:01:00.000Z',
      who: { user_id: 'alice', session_id: 's1' },
      what: { event_type: 'flow_run', action: 'send_message', platform: 'Slack', flow_id: 'f1', trace_id: '', message: 'Failed' },
      from: { engine: 'execution', triggered_by: 'execution_engine', address: '203.0.113.9' },
      outcome: { status: 'error', severity: '', duration_ms: 12, error: { error_type: 'token_expired', message: 'Failed', fingerprint: 'fp1' } },
      attributes: { client_ip: '203.0.113.9', region: 'eu' },
    });
    expect(toTimelineEntry(row({ status: 'success' })).outcome.error).toBeNull();
  });

  it('reads the client address from client_ip, ip or remote_addr', () => {
    expect(clientAddress({ ip: '10.0.0.1', remote_addr: '10.0.0.2' })).toBe('10.0.0.1');
    expect(clientAddress({ remote_addr: '2001:db8::1' })).toBe('2001:db8::1');
    expect(clientAddress({})).toBeNull();
  });

  it('shows what a config change changed, with the difference when before/after are carried', () => {
    const c = toTimelineEntry(row({
      event_type: 'config_change', engine: 'platform_builder', message: 'changed Slack settings',
      attrs: { target: 'slack_block', before: '{"timeout":30,"channel":"#a"}', after: '{"timeout":10,"channel":"#a"}', editor: 'ui' },
    }));
    expect(c.change).toEqual({
      kind: 'config_change', target: 'slack_block', version: null, summary: 'changed Slack settings',
      before: { timeout: 30, channel: '#a' }, after: { timeout: 10, channel: '#a' },
      diff: [{ path: 'timeout', op: 'changed', before: 30, after: 10 }],
    });
    expect(c.attributes).toEqual({ target: 'slack_block', editor: 'ui' }); // before/after are shown once, in change
    // one named key with scalar values: the diff is under that key's name
    expect(changeInfo(row({ event_type: 'config_change', attrs: { key: 'max_retries', before: '3', after: '5' } }))!.diff)
      .toEqual([{ path: 'max_retries', op: 'changed', before: 3, after: 5 }]);
    // no before/after: the change is named, no diff
    const d = changeInfo(row({ event_type: 'deploy', attrs: { version: '2.4.1' }, message: 'deployed' }))!;
    expect(d).toEqual({ kind: 'deploy', target: null, version: '2.4.1', summary: 'deployed' });
    expect(changeInfo(row({ event_type: 'execution', attrs: { before: '1', after: '2' } }))).toBeNull();
  });
});

describe('CSV', () => {
  it('quotes per RFC 4180 and guards formula cells', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell('cr\rx')).toBe('"cr\rx"');
    expect(csvCell('=SUM(A1:A9)')).toBe("'=SUM(A1:A9)");
    expect(csvCell('+1')).toBe("'+1");
    expect(csvCell('-1')).toBe("'-1");
    expect(csvCell('@cmd')).toBe("'@cmd");
    expect(csvCell('\tx')).toBe("'\tx");
    expect(csvCell('=HYPERLINK("http://x","y")')).toBe('"\'=HYPERLINK(""http://x"",""y"")"');
    expect(csvCell(-5)).toBe('-5'); // numbers are numbers, not formulas
    expect(csvCell(null)).toBe('');
    expect(csvCell(undefined)).toBe('');
    expect(csvCell(true)).toBe('true');
    expect(csvLine(['a', 1, null])).toBe('a,1,\r\n');
  });

  it('writes one line per entry in the header order', () => {
    expect(csvHeader()).toBe(CSV_COLUMNS.join(',') + '\r\n');
    const line = entryToCsv(toTimelineEntry(row({ id: 'x', user_id: 'bob', message: 'a,"b"', attrs: { ip: '1.2.3.4' } })));
    const cells = line.trimEnd().match(/("([^"]|"")*"|[^,]*)(,|$)/g)!.map((c) => c.replace(/,$/, ''));
    expect(cells[CSV_COLUMNS.indexOf('id')]).toBe('x');
    expect(cells[CSV_COLUMNS.indexOf('user_id')]).toBe('bob');
    expect(cells[CSV_COLUMNS.indexOf('client_address')]).toBe('1.2.3.4');
    expect(cells[CSV_COLUMNS.indexOf('message')]).toBe('"a,""b"""');
  });
});
