// The Structured Logs Collector: items in, durable rows out. Each event is validated on its own,
// checked against the caller's projects, then passed through the row processors (redaction,
// fingerprinting) before the write-ahead log makes it durable (src/wal/).
import { normalize, type EventRow, type FieldError } from '../event.js';
import { boundProject, mayAccessProject, type Principal } from '../auth/principal.js';
import { applyLoggerConventions } from './logger-conventions.js';
import { UNSLICED, type Slicer } from '../wal/wake.js';

/** Where accepted rows go: resolves once they are durable (WritePath implements it). */
export interface EventSink {
  accept(rows: EventRow[], opts: AcceptOptions): Promise<{ duplicates: number }>;
}

export interface AcceptOptions {
  /** The rows carry client-supplied ids: resends are looked for. */
  clientIds: boolean;
  alert?: boolean;
  /** Whose writes these are, for read-your-writes (a principal's name). */
  writer?: string;
  /** How the log's encoding of the rows gives the event loop back (the request's turns). */
  turn?: Slicer;
}

/** A step every accepted row goes through before it is stored. Mutates the row in place. */
export type RowProcessor = (row: EventRow) => void;

export interface IngestResult {
  accepted: number;
  ids: string[];
  rejected: { index: number; errors: FieldError[] }[];
  duplicates: number;
  dropped_attributes: number;
}

export interface IngestOptions {
  lineErrors?: Map<number, FieldError[]>;
  /** Marks every row as an engine-raised alert (POST /monitoring/alert). */
  alert?: boolean;
  /** How the wire format names the project, for the error when an event has none (default project_id). */
  projectField?: string;
  /** Whose writes these count as for read-your-writes (default: the principal's name). */
  writer?: string;
  /** The request's turns on the event loop (Admission.turnOf): validation runs in their slices. */
  turn?: Slicer;
}

export interface Prepared {
  rows: EventRow[];
  ids: string[];
  rejected: IngestResult['rejected'];
  checkIds: boolean;
  droppedAttributes: number;
  alert: boolean;
  writer: string;
  turn: Slicer;
}

export class Collector {
  readonly stats = { accepted: 0, rejected: 0, droppedAttributes: 0 };

  constructor(
    private readonly sink: EventSink,
    private readonly processors: readonly RowProcessor[],
  ) {}

  /** Validates and prepares rows; stores nothing. */
  async prepare(items: readonly unknown[], principal: Principal, opts: IngestOptions = {}): Promise<Prepared> {
    const receivedAt = Date.now();
    const turn = opts.turn ?? UNSLICED;
    const rows: EventRow[] = [];
    const ids: string[] = [];
    const rejected: IngestResult['rejected'] = [];
    let checkIds = false;
    let droppedAttributes = 0;
    // a key bound to one project names the project of every event that does not name one itself
    const keyProject = boundProject(principal);
    for (let i = 0; i < items.length; i++) {
      if ((i & 15) === 15 && turn.due()) await turn.next();
      const lineErr = opts.lineErrors?.get(i);
      if (lineErr) {
        rejected.push({ index: i, errors: lineErr });
        continue;
      }
      const item = items[i];
      if (typeof item === 'object' && item !== null && !Array.isArray(item)) {
        const ev = item as Record<string, unknown>;
        applyLoggerConventions(ev);
        if (ev.project_id === undefined || ev.project_id === '') {
          if (keyProject === undefined) {
            rejected.push({ index: i, errors: [{ field: opts.projectField ?? 'project_id', message: 'is required (or send with a key bound to one project)' }] });
            continue;
          }
          ev.project_id = keyProject;
        }
      }
      const res = normalize(item, receivedAt);
      if (!res.ok) {
        rejected.push({ index: i, errors: res.errors });
        continue;
      }
      const row = res.row;
      if (!mayAccessProject(principal, row.project_id)) {
        rejected.push({ index: i, errors: [{ field: 'project_id', message: `this key may not write to project ${row.project_id}` }] });
        continue;
      }
      if (opts.alert) row.alert = 1;
      for (const p of this.processors) p(row);
      if ((items[i] as { id?: unknown }).id !== undefined) checkIds = true;
      droppedAttributes += res.droppedAttributes;
      rows.push(row);
      ids.push(row.id);
    }
    return { rows, ids, rejected, checkIds, droppedAttributes, alert: opts.alert === true, writer: opts.writer ?? principal.name, turn };
  }

  /** Validates, then stores; resolves once the accepted rows are durable. */
  async ingest(items: readonly unknown[], principal: Principal, opts: IngestOptions = {}): Promise<IngestResult> {
    return this.store(await this.prepare(items, principal, opts));
  }

  /** Stores prepared rows; resolves once they are durable. */
  async store(p: Prepared): Promise<IngestResult> {
    let duplicates = 0;
    if (p.rows.length > 0) duplicates = (await this.sink.accept(p.rows, { clientIds: p.checkIds, alert: p.alert, writer: p.writer, turn: p.turn })).duplicates;
    this.stats.accepted += p.rows.length;
    this.stats.rejected += p.rejected.length;
    this.stats.droppedAttributes += p.droppedAttributes;
    return { accepted: p.rows.length, ids: p.ids, rejected: p.rejected, duplicates, dropped_attributes: p.droppedAttributes };
  }
}
