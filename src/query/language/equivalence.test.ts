// Property: for generated events and generated queries, the SQL path (whereClause → chDB) and the
// in-memory path (matchesFilter) select exactly the same events. Each query is printed to text and
// parsed again, so the lexer and parser are exercised too, and goes through parseFilter (lifting
// of top-level equalities included), as a request's `query=` does.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventArb, printQuery, queryArb } from '../../../test/query-arbitraries.js';
import { removeDir, tempDir } from '../../../test/helpers.js';
import type { EventRow, FieldError } from '../../event.js';
import { ChdbTransport } from '../../storage/chdb-transport.js';
import { EventStore } from '../../storage/event-store.js';
import { EVENTS_TABLE } from '../../storage/schema.js';
import { ParamBag, parseFilter, whereClause, type EventFilter } from '../filters.js';
import { matchesFilter } from '../match.js';
import { evaluate } from './evaluate.js';
import { parseQuery } from './parser.js';

let dir = '';
let store: EventStore;

beforeAll(async () => {
  dir = tempDir('pm-qlang-');
  store = new EventStore(new ChdbTransport(dir));
  await store.init();
});

afterAll(async () => {
  await store?.close();
  removeDir(dir);
});

async function sqlIds(f: EventFilter): Promise<string[]> {
  const bag = new ParamBag();
  const rows = await store.query<{ id: string }>(`SELECT id FROM ${EVENTS_TABLE} WHERE ${whereClause(f, bag)} ORDER BY id`, bag.params);
  return rows.map((r) => r.id);
}

function filterOf(text: string, projects: string | string[]): EventFilter {
  const errors: FieldError[] = [];
  const f = parseFilter({ query: text }, [], errors);
  expect(errors, text).toEqual([]);
  f.projects = Array.isArray(projects) ? projects : [projects];
  return f;
}

describe('SQL and in-memory evaluation of one AST agree', () => {
  // Inserting is the slow part (a part and two views a batch), so the events are generated once,
  // as 40 independent sets under projects q0…q39, and each run checks its queries against all
  // of them in one statement. The seed is printed on failure and fixed here for the events.
  const SEED = Number(process.env.QUERY_PROPERTY_SEED ?? 20261201);
  const sets = fc.sample(fc.array(eventArb, { minLength: 1, maxLength: 25 }), { seed: SEED, numRuns: 40 });
  const rows: EventRow[] = sets.flatMap((set, s) => set.map((e, i) => ({ ...e, id: `e${String(i).padStart(3, '0')}`, project_id: `q${s}` })));
  const projects = sets.map((_, s) => `q${s}`);
  const key = (r: { project_id: string; id: string }) => `${r.project_id}/${r.id}`;

  it('on generated events and queries (chDB)', async () => {
    await store.insert(rows);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(queryArb, fc.nat(31)), { minLength: 1, maxLength: 16 }), async (queries) => {
        const texts = queries.map(([ast, style]) => printQuery(ast, style));
        const filters = texts.map((text, i) => {
          const parsed = parseQuery(text)!;
          // the printed text means what the generated AST means
          expect(rows.filter((r) => evaluate(parsed, r) !== evaluate(queries[i][0], r)).map(key), text).toEqual([]);
          return filterOf(text, projects);
        });
        // one statement per run: every query's WHERE as a column
        const bag = new ParamBag();
        const columns = filters.map((f, i) => `(${whereClause(f, bag)}) AS m${i}`).join(', ');
        const res = await store.query<Record<string, unknown> & { project_id: string; id: string }>(
          `SELECT project_id, id, ${columns} FROM ${EVENTS_TABLE} WHERE project_id IN ${bag.add(projects, 'Array(String)')} ORDER BY project_id, id`,
          bag.params,
        );
        expect(res.length).toBe(rows.length);
        filters.forEach((f, i) => {
          const inMemory = rows.filter((r) => matchesFilter(f, r)).map(key).sort();
          expect(res.filter((r) => Number(r[`m${i}`]) === 1).map(key).sort(), texts[i]).toEqual(inMemory);
        });
      }),
      { numRuns: Number(process.env.QUERY_PROPERTY_RUNS ?? 100) },
    );
  });

  it('on hand-picked hostile values (quotes, LIKE metacharacters, placeholders, newlines)', async () => {
    const project = 'hostile';
    const base = {
      timestamp: 1_753_400_000_000, received_at: 1_753_400_000_000, project_id: project, event_type: 'log', engine: '', triggered_by: '',
      flow_id: '', session_id: '', trace_id: '', span_id: '', platform: '', action: '', status: '', severity: '', error_type: '', stack: '',
      duration_ms: null, retries: null, fingerprint: '', alert: 0, sampled: 0, attr_keys: [], attr_values: [],
    };
    const values = ["it's", '50%', 'a_b', 'back\\slash', '{p0:String}', "'; DROP TABLE events; --", 'line\nbreak', 'x*y', 'ДАННЫЕ', '日本語 😀'];
    const rows: EventRow[] = values.map((v, i) => ({ ...base, id: `h${i}`, user_id: v, message: `msg ${v} end`, attr_keys: ['v'], attr_values: [v] }));
    await store.insert(rows);
    const esc = (v: string) => `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`;
    for (const [i, v] of values.entries()) {
      for (const text of [`user_id:${esc(v)}`, `attr.v:${esc(v)}`, esc(v), `message:${esc(v)}`, `-user_id:${esc(v)}`]) {
        const f = filterOf(text, project);
        const inMemory = rows.filter((r) => matchesFilter(f, r)).map((r) => r.id);
        expect(await sqlIds(f), text).toEqual(inMemory);
        if (!text.startsWith('-')) expect(inMemory, text).toContain(`h${i}`);
      }
    }
    // % and _ are literal unless written as *
    expect(await sqlIds(filterOf('user_id:50%', project))).toEqual(['h1']);
    expect(await sqlIds(filterOf('user_id:a?b user_id:a_b', project))).toEqual([]);
    expect(await sqlIds(filterOf('user_id:a*b', project))).toEqual(['h2']);
    expect(await sqlIds(filterOf('"%"', project))).toEqual(['h1']);
    expect(await sqlIds(filterOf('line*break', project))).toEqual(['h6']);
    expect(await sqlIds(filterOf('данные', project))).toEqual(['h8']);
  });
});
