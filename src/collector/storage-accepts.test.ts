// Property: whatever event validation accepts, storage accepts too, and stores it as validated.
// Since the write-ahead log acknowledges before the loader inserts, a row storage refuses can no
// longer be answered 4xx to its sender (the loader quarantines it, src/wal/loader.ts); so
// validation has to leave storage nothing to refuse. Generated here: arbitrary UTF-16 (lone
// surrogates, NUL and control characters, every plane), huge and tiny numbers, odd ids and keys.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../../test/helpers.js';
import { normalize, type EventRow } from '../event.js';
import { ChdbTransport } from '../storage/chdb-transport.js';
import { EventStore } from '../storage/event-store.js';
import { EVENTS_TABLE } from '../storage/schema.js';

let dir = '';
let store: EventStore;

beforeAll(async () => {
  dir = tempDir('pm-accepts-');
  store = new EventStore(new ChdbTransport(dir));
  await store.init();
});

afterAll(async () => {
  await store?.close();
  removeDir(dir);
});

// fast-check's 'binary' unit makes only whole code points: lone surrogates and the characters JSON
// and SQL escape are mixed in by hand
const char = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\u0000', '\u001f', '\u007f', '\\', '"', "'", '\n', '\r', '\t', '\u2028', '\ufeff', '\uffff') },
);
const anyText = fc.string({ unit: char, maxLength: 40 });
const short = fc.string({ unit: char, maxLength: 12 });
const idLike = fc.oneof(short, fc.integer(), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(-0));
const number = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.constant(1e308), fc.constant(5e-324));
const attrValue = fc.oneof(anyText, number, fc.boolean(), fc.constant(null), fc.array(anyText, { maxLength: 3 }), fc.dictionary(short, anyText, { maxKeys: 3 }));
const now = Date.now();

const inputArb = fc.record(
  {
    id: fc.string({ unit: char, minLength: 1, maxLength: 30 }),
    timestamp: fc.oneof(fc.integer({ min: 946_684_800_000, max: now }), fc.date({ min: new Date(2000, 0, 2), max: new Date(now), noInvalidDate: true }).map((d) => d.toISOString())),
    event_type: short, engine: short, triggered_by: short, platform: short, action: short, status: short, severity: short, error_type: short,
    flow_id: idLike, session_id: idLike, user_id: idLike, trace_id: idLike, span_id: idLike,
    message: anyText, stack: anyText, fingerprint: short,
    duration_ms: fc.double({ min: 0, max: 1e12, noNaN: true }),
    retries: fc.integer({ min: 0, max: 1_000_000 }),
    attributes: fc.dictionary(fc.string({ unit: char, minLength: 1, maxLength: 20 }), attrValue, { maxKeys: 6 }),
  },
  { requiredKeys: ['id'] },
);

describe('storage accepts every event validation accepts', () => {
  it('generated events with arbitrary UTF-16 and numbers: one insert each run, nothing refused, stored as validated', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(inputArb, { minLength: 1, maxLength: 40 }), async (inputs) => {
        const project = `acc${run++}`;
        const rows: EventRow[] = [];
        inputs.forEach((input, i) => {
          // ids made unique per run: the property is about content, not deduplication
          const r = normalize({ ...input, id: `${i}:${input.id}`, project_id: project }, now);
          if (r.ok) rows.push(r.row);
        });
        if (rows.length === 0) return;
        await store.insert(rows); // throws if storage refuses any row
        const stored = await store.query<{ id: string; message: string; stack: string; user_id: string; attr_keys: string[]; attr_values: string[] }>(
          `SELECT id, message, stack, user_id, attr_keys, attr_values FROM ${EVENTS_TABLE} WHERE project_id = {p:String} ORDER BY id`, { p: project },
        );
        const want = rows.map((r) => ({ id: r.id, message: r.message, stack: r.stack, user_id: r.user_id, attr_keys: r.attr_keys, attr_values: r.attr_values }))
          .sort((a, b) => (Buffer.compare(Buffer.from(a.id), Buffer.from(b.id))));
        expect(stored).toEqual(want);
      }),
      { numRuns: 25, seed: Number(process.env.ACCEPTS_SEED ?? 20261202) },
    );
  }, 120_000);
});
