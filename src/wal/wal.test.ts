// The log on its own: framing, group commit, segments, torn and corrupted tails, cursors.
import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, tempDir } from '../../test/helpers.js';
import { crc32 } from 'node:zlib';
import { normalize, type EventRow } from '../event.js';
import { compactLine, lineStarts } from '../storage/compact-row.js';
import { decodeRecord, encodeRecord, FLAG_CLIENT_IDS, FLAG_COMPACT, HeldRecord } from './record.js';
import { WriteAheadLog } from './log.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));
function dir(): string {
  const d = tempDir('pm-wal-');
  dirs.push(d);
  return d;
}

const row = (id: string, extra: Partial<EventRow> = {}) => ({ id, project_id: 'p', message: `m ${id}`, ...extra }) as unknown as EventRow;
const rows = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => row(`${prefix}-${i}`));

async function readAll(log: WriteAheadLog, which: 'loader' | 'observer' = 'loader'): Promise<string[]> {
  const c = log[which];
  const ids: string[] = [];
  for (;;) {
    const recs = await c.peek(1_000_000, 1 << 30);
    if (recs.length === 0) return ids;
    for (const r of recs) ids.push(...r.rows.map((x) => x.id));
    c.commit(recs[recs.length - 1]);
  }
}

const segmentFiles = (d: string) => readdirSync(d).filter((n) => n.endsWith('.wal')).sort();

describe('record framing', () => {
  it('round-trips and refuses a flipped bit or a cut frame', () => {
    const buf = encodeRecord(FLAG_CLIENT_IDS, [row('a', { message: 'héllo \u{1F600}' })]);
    const d = decodeRecord(buf, 0);
    expect(d.ok && d.flags === (FLAG_CLIENT_IDS | FLAG_COMPACT) && d.rows()[0].message === 'héllo \u{1F600}' && d.bytes === buf.length).toBe(true);
    const flipped = Buffer.from(buf);
    flipped[buf.length - 3] ^= 0x20;
    expect(decodeRecord(flipped, 0)).toMatchObject({ ok: false, reason: 'corrupt', detail: 'checksum mismatch' });
    expect(decodeRecord(buf.subarray(0, buf.length - 1), 0)).toMatchObject({ ok: false, reason: 'incomplete' });
    expect(decodeRecord(Buffer.alloc(16), 0)).toMatchObject({ ok: false, reason: 'corrupt' });
  });
});

describe('record payload', () => {
  it('holds the rows in storage\'s insert format, one line each, and gives the same rows back', () => {
    const full = normalize({ project_id: 'p', id: 'line\nbreak', message: 'a "quoted"\nmessage', duration_ms: 12.5, attributes: { k: 'v' } }, 1_700_000_000_000);
    if (!full.ok) throw new Error('bad test event');
    const buf = encodeRecord(FLAG_CLIENT_IDS, [full.row, row('b')]);
    const d = decodeRecord(buf, 0);
    if (!d.ok) throw new Error(d.detail);
    expect(d.flags & FLAG_COMPACT).toBe(FLAG_COMPACT);
    expect(d.flags & FLAG_CLIENT_IDS).toBe(FLAG_CLIENT_IDS);
    expect(d.rows()[0]).toEqual(full.row);
    expect(d.rows()[1].id).toBe('b');
    // exactly the bytes EventStore.insert sends: one compact line per row, newline-terminated
    expect(d.lines!.toString('utf8')).toBe(`${compactLine(full.row)}\n${compactLine(d.rows()[1])}\n`);
    expect(lineStarts(d.lines!)).toEqual([0, Buffer.byteLength(compactLine(full.row)) + 1, d.lines!.length]);
  });

  it('parses each row\'s key alone, the same as parsing the whole row, whatever its id holds', () => {
    const odd = ['plain', 'quote " and \\ backslash', 'line\nbreak\ttab', 'nul \u0000 and \u2028', 'é \u{1F600}', ''];
    const made = odd.map((id, i) => normalize({ project_id: `proj_${i}`, id: id || 'x', timestamp: 1_700_000_000_000 + i, message: 'm' }, 1_700_000_000_500));
    const rows = made.map((m) => {
      if (!m.ok) throw new Error('bad test event');
      return m.row;
    });
    const d = decodeRecord(encodeRecord(FLAG_CLIENT_IDS, rows), 0);
    if (!d.ok) throw new Error(d.detail);
    expect(d.keys).toEqual(rows.map((r) => ({ id: r.id, timestamp: r.timestamp, received_at: r.received_at, project_id: r.project_id })));
    expect(d.rows()).toEqual(rows);
    // a line this version would not write (no timestamp) is parsed whole: its key is the row's
    const partial = decodeRecord(encodeRecord(0, [row('no-time')]), 0);
    expect(partial.ok && partial.keys[0].id === 'no-time' && partial.keys[0].timestamp === null).toBe(true);
    // a payload that is not rows at all is corrupt, as before
    const notRows = Buffer.from('["x", 1, 2\n');
    const payload = Buffer.concat([Buffer.from([FLAG_COMPACT]), notRows]);
    const frame = Buffer.alloc(8 + payload.length);
    frame.writeUInt32LE(payload.length, 0);
    payload.copy(frame, 8);
    frame.writeUInt32LE(crc32(payload), 4);
    expect(decodeRecord(frame, 0)).toMatchObject({ ok: false, reason: 'corrupt' });
  });

  it('still reads a record an earlier version wrote (the JSON array of rows)', () => {
    const json = Buffer.from(JSON.stringify([row('old-1'), row('old-2')]));
    const payload = Buffer.concat([Buffer.from([FLAG_CLIENT_IDS]), json]);
    const frame = Buffer.alloc(8 + payload.length);
    frame.writeUInt32LE(payload.length, 0);
    payload.copy(frame, 8);
    frame.writeUInt32LE(crc32(payload), 4);
    const d = decodeRecord(frame, 0);
    expect(d.ok && d.flags === FLAG_CLIENT_IDS && d.lines === undefined && d.rows().map((r) => r.id).join() === 'old-1,old-2' && d.keys.length === 2).toBe(true);
  });
});

describe('write-ahead log', () => {
  it('commits concurrent appends in groups: many requests per fdatasync', async () => {
    const d = dir();
    const log = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.append([row(`r${i}`)], { clientIds: true })));
    expect(log.stats.appendedRecords).toBe(200);
    expect(log.fsyncs).toBeLessThan(100);
    await log.stopAppends();
    const again = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    expect((await readAll(again)).sort()).toEqual(Array.from({ length: 200 }, (_, i) => `r${i}`).sort());
    expect(again.repairs).toEqual([]);
    await again.stopAppends();
  });

  it('encodes a request in slices when its turn says so, into the same record as at once', async () => {
    const d = dir();
    const log = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    const batch = rows('sl', 200);
    let turns = 0;
    const alwaysDue = { due: () => true, next: async () => void turns++ };
    const rec = await log.append(batch, { clientIds: true, turn: alwaysDue });
    // 200 rows, 64 at a time: the loop was given back before each of the 4 chunks
    expect(turns).toBe(4);
    expect(rec.lines!.equals(encodeRecord(FLAG_CLIENT_IDS, batch).subarray(9))).toBe(true);
    expect(await readAll(log)).toEqual(batch.map((r) => r.id));
    await log.stopAppends();
  });

  it('a consumer far behind reads back from disk only the records of one block, not the whole backlog', async () => {
    const d = dir();
    // nothing kept in memory: every peek reads the files
    const log = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20, memoryBytes: 1 });
    for (let i = 0; i < 50; i++) await log.append(rows(`b${i}`, 100), { clientIds: false });
    const files = (log as unknown as { files: { read(from: unknown, limit: unknown, maxBytes: number, maxRows?: number): Promise<{ rows: unknown[] }[]> } }).files;
    const recs = await files.read(log.loader.pos, undefined, 64 << 20, 250);
    // whole records up to 250 rows: two of 100, the third would pass the limit (and is not decoded)
    expect(recs.map((r) => r.rows.length)).toEqual([100, 100]);
    const block = await log.loader.peek(250, 64 << 20);
    expect(block.map((r) => r.rows.length)).toEqual([100, 100]);
    expect((await readAll(log)).length).toBe(5000);
    await log.stopAppends();
  });

  it('keeps the loader\'s backlog in memory as keys and lines: rows are let go once the observers pass them', async () => {
    const d = dir();
    // ~13 KB records: the observers' budget (rows, ~9× the bytes) holds one, the loader's (keys and lines) all five
    const log = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20, memoryBytes: 200_000 });
    const sent = Array.from({ length: 5 }, (_, i) => rows(`k${i}`, 100));
    for (const batch of sent) await log.append(batch, { clientIds: true });
    const block = await log.loader.peek(1000, 64 << 20);
    expect(block.every((r) => r instanceof HeldRecord)).toBe(true);
    // the observers hold the first record's rows; the others went to them from disk, so the loader's copies let go at once
    expect(block.map((r) => (r as HeldRecord).holdsRows)).toEqual([true, false, false, false, false]);
    expect(await readAll(log, 'observer')).toEqual(sent.flat().map((r) => r.id));
    expect(block.some((r) => (r as HeldRecord).holdsRows)).toBe(false);
    // what the loader uses stays: the keys, the lines, and the rows parsed again from the lines
    expect(block.flatMap((r) => r.keys.map((k) => [k.project_id, k.id]))).toEqual(sent.flat().map((r) => ['p', r.id]));
    expect(block[2].rows).toEqual(decodeRecord(encodeRecord(FLAG_CLIENT_IDS, sent[2]), 0).ok && decodeRecord(encodeRecord(FLAG_CLIENT_IDS, sent[2]), 0).rows());
    await log.stopAppends();
  });

  it('rotates segments, reads across them from disk, and deletes what both consumers passed', async () => {
    const d = dir();
    // 1 MB log → 128 KB segments; each record ~6 KB
    const log = await WriteAheadLog.open({ dir: d, maxBytes: 1 << 20, maxWaitingBytes: 1 << 20, memoryBytes: 20_000 });
    const big = 'x'.repeat(6000);
    for (let i = 0; i < 60; i++) await log.append([row(`s${i}`, { message: big })], { clientIds: false });
    expect(segmentFiles(d).length).toBeGreaterThan(2);
    // the memory budget held ~3 records; the rest comes back from the files, in order
    const ids = await readAll(log, 'loader');
    expect(ids).toEqual(Array.from({ length: 60 }, (_, i) => `s${i}`));
    await log.checkpoint();
    const before = segmentFiles(d).length;
    expect((await readAll(log, 'observer')).length).toBe(60);
    await log.checkpoint();
    expect(segmentFiles(d).length).toBe(1);
    expect(before).toBeGreaterThan(1);
    // the checkpoint is kept: a reopened log has nothing to replay
    await log.stopAppends();
    const again = await WriteAheadLog.open({ dir: d, maxBytes: 1 << 20, maxWaitingBytes: 1 << 20 });
    expect(await readAll(again)).toEqual([]);
    await again.stopAppends();
  });

  it('refuses appends past its size limit with a 503 and Retry-After, and takes them again once consumed', async () => {
    const d = dir();
    const log = await WriteAheadLog.open({ dir: d, maxBytes: 1 << 20, maxWaitingBytes: 1 << 20 });
    const big = 'y'.repeat(50_000);
    let refused: unknown;
    for (let i = 0; i < 40 && !refused; i++) await log.append([row(`f${i}`, { message: big })], { clientIds: false }).catch((e) => (refused = e));
    expect(refused).toMatchObject({ status: 503, retryAfterS: 5 });
    expect(log.usedBytes).toBeLessThanOrEqual(1 << 20);
    await readAll(log, 'loader');
    await readAll(log, 'observer');
    await log.checkpoint();
    // a new segment starts once the current one is full; then the old ones go
    await log.append([row('after', { message: big })], { clientIds: false }).catch(() => undefined);
    await readAll(log, 'loader');
    await readAll(log, 'observer');
    await log.checkpoint();
    await expect(log.append([row('after-2', { message: big })], { clientIds: false })).resolves.toBeTruthy();
    await log.stopAppends();
  });

  it('cuts a torn tail at the last valid record and reports it', async () => {
    const d = dir();
    const log = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    for (let i = 0; i < 10; i++) await log.append([row(`t${i}`)], { clientIds: true });
    await log.stopAppends();
    const seg = join(d, segmentFiles(d)[0]);
    const size = statSync(seg).size;
    // a crash mid-write: the last record is cut short, and garbage follows another one
    truncateSync(seg, size - 5);
    const a = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    expect(a.repairs).toHaveLength(1);
    expect(a.repairs[0].reason).toMatch(/cut short/);
    expect(await readAll(a)).toEqual(Array.from({ length: 9 }, (_, i) => `t${i}`));
    // new appends go to a new segment and are read after the repaired one
    await a.append([row('t-new')], { clientIds: true });
    expect((await readAll(a)).at(-1)).toBe('t-new');
    await a.stopAppends();
    appendFileSync(join(d, segmentFiles(d).at(-1)!), Buffer.from([0x10, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]));
    const b = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    expect(b.repairs.map((r) => r.cutBytes)).toEqual([11]);
    await b.stopAppends();
  });

  it('cuts a corrupted record (flipped bit) and keeps what came before it', async () => {
    const d = dir();
    const log = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    const recs = [];
    for (let i = 0; i < 5; i++) recs.push(await log.append([row(`c${i}`)], { clientIds: true }));
    await log.stopAppends();
    const seg = join(d, segmentFiles(d)[0]);
    const bytes = readFileSync(seg);
    bytes[recs[3].pos.off + 12] ^= 0xff;
    writeFileSync(seg, bytes);
    const a = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    expect(a.repairs[0]).toMatchObject({ validBytes: recs[3].pos.off, reason: 'checksum mismatch' });
    expect(await readAll(a)).toEqual(['c0', 'c1', 'c2']);
    await a.stopAppends();
  });

  it('starts from the oldest segment when the checkpoint file is unreadable', async () => {
    const d = dir();
    const log = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    await log.append(rows('k', 3), { clientIds: false });
    await readAll(log);
    await log.checkpoint();
    await log.stopAppends();
    writeFileSync(join(d, 'checkpoint.json'), '{"loaded": {"se');
    const a = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    expect(a.problems[0]).toMatch(/unreadable/);
    expect(await readAll(a)).toEqual(['k-0', 'k-1', 'k-2']);
    await a.stopAppends();
  });

  it('keeps no segment of loaded records after a clean stop, and replays what a consumer had not passed', async () => {
    const d = dir();
    const opts = { dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 };
    const log = await WriteAheadLog.open(opts);
    await log.append(rows('done', 20), { clientIds: false });
    await readAll(log, 'loader');
    await readAll(log, 'observer');
    await log.checkpoint();
    await log.stopAppends();
    expect(log.releaseConsumed()).toBeGreaterThan(0);
    // nothing on disk holds a record any more
    expect(segmentFiles(d).filter((f) => statSync(join(d, f)).size > 0)).toEqual([]);
    const again = await WriteAheadLog.open(opts);
    expect(await readAll(again)).toEqual([]);
    // positions go on after the deleted segment: new records are read, once
    await again.append(rows('next', 2), { clientIds: false });
    expect(await readAll(again)).toEqual(['next-0', 'next-1']);
    // the observer has not passed them: a stop keeps them, and the next start replays them to it
    await again.checkpoint();
    await again.stopAppends();
    expect(again.releaseConsumed()).toBe(0);
    const third = await WriteAheadLog.open(opts);
    expect(await readAll(third, 'observer')).toEqual(['next-0', 'next-1']);
    expect(await readAll(third, 'loader')).toEqual([]);
    await third.stopAppends();
  });

  it('deletes on open the segment the checkpoint has read to its end', async () => {
    const d = dir();
    const opts = { dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 };
    const log = await WriteAheadLog.open(opts);
    await log.append(rows('o', 5), { clientIds: false });
    await readAll(log, 'loader');
    await readAll(log, 'observer');
    await log.checkpoint();
    // a stop that did not release the segments (a crash after the checkpoint)
    await log.stopAppends();
    expect(segmentFiles(d).filter((f) => statSync(join(d, f)).size > 0)).toHaveLength(1);
    const again = await WriteAheadLog.open(opts);
    expect(segmentFiles(d).filter((f) => statSync(join(d, f)).size > 0)).toEqual([]);
    expect(await readAll(again)).toEqual([]);
    await again.stopAppends();
  });

  it('rolls a consumed last segment while idle, never one a consumer has not passed', async () => {
    const d = dir();
    const log = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    await log.append(rows('a', 10), { clientIds: false });
    await readAll(log, 'loader');
    // the observer is behind: the segment stays
    expect(await log.rollIfConsumed()).toBe(false);
    await readAll(log, 'observer');
    const before = log.end;
    expect(await log.rollIfConsumed()).toBe(true);
    expect(log.end.seg).toBe(before.seg + 1);
    expect(segmentFiles(d).filter((f) => statSync(join(d, f)).size > 0)).toEqual([]);
    // an empty segment is not rolled again
    expect(await log.rollIfConsumed()).toBe(false);
    // appends go on in the new segment and reach both consumers; a checkpoint taken now and a
    // reopen replay exactly them
    await log.append(rows('b', 3), { clientIds: false });
    await log.checkpoint();
    await log.stopAppends();
    const again = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    expect(await readAll(again, 'loader')).toEqual(['b-0', 'b-1', 'b-2']);
    expect(await readAll(again, 'observer')).toEqual(['b-0', 'b-1', 'b-2']);
    await again.stopAppends();
  });

  it('a roll racing appends loses none of them', async () => {
    const d = dir();
    const log = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    await log.append(rows('r', 5), { clientIds: false });
    await readAll(log, 'loader');
    await readAll(log, 'observer');
    const roll = log.rollIfConsumed();
    const appends = Promise.all(Array.from({ length: 20 }, (_, i) => log.append([row(`late-${i}`)], { clientIds: false })));
    await Promise.all([roll, appends]);
    expect((await readAll(log, 'loader')).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `late-${i}`).sort());
    await log.stopAppends();
    const again = await WriteAheadLog.open({ dir: d, maxBytes: 64 << 20, maxWaitingBytes: 64 << 20 });
    expect((await readAll(again, 'observer')).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `late-${i}`).sort());
    await again.stopAppends();
  });
});
