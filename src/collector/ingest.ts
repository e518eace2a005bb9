// The Structured Logs Collector: items in, durable rows out. Each event is validated on its own,
// checked against the caller's projects, then passed through the row processors (redaction,
// fingerprinting) before the group-commit writer stores it.
import { normalize, type EventRow, type FieldError } from '../event.js';
import { boundProject, mayAccessProject, type Principal } from '../auth/principal.js';
import { applyLoggerConventions } from './logger-conventions.js';
import type { GroupCommitWriter } from './writer.js';

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
}

export interface Prepared {
  rows: EventRow[];
  /** The item index of each row (rows skip the rejected items). */
  indexes: number[];
  ids: string[];
  rejected: IngestResult['rejected'];
  checkIds: boolean;
  droppedAttributes: number;
}

export class Collector {
  readonly stats = { accepted: 0, rejected: 0, droppedAttributes: 0 };

  constructor(
    private readonly writer: GroupCommitWriter,
    private readonly processors: readonly RowProcessor[],
  ) {}

  announce(): () => void {
    return this.writer.announce();
  }

  /** Validates and prepares rows; stores nothing. */
  prepare(items: readonly unknown[], principal: Principal, opts: IngestOptions = {}): Prepared {
    const receivedAt = Date.now();
    const rows: EventRow[] = [];
    const indexes: number[] = [];
    const ids: string[] = [];
    const rejected: IngestResult['rejected'] = [];
    let checkIds = false;
    let droppedAttributes = 0;
    // a key bound to one project names the project of every event that does not name one itself
    const keyProject = boundProject(principal);
    for (let i = 0; i < items.length; i++) {
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
      indexes.push(i);
      ids.push(row.id);
    }
    return { rows, indexes, ids, rejected, checkIds, droppedAttributes };
  }

  /** Validates, then stores; resolves once the accepted rows are durable. */
  ingest(items: readonly unknown[], principal: Principal, opts: IngestOptions = {}): Promise<IngestResult> {
    return this.store(this.prepare(items, principal, opts));
  }

  /** Stores prepared rows; resolves once they are durable. */
  async store(p: Prepared): Promise<IngestResult> {
    let duplicates = 0;
    let ids = p.ids;
    let rejected = p.rejected;
    if (p.rows.length > 0) {
      const w = await this.writer.write(p.rows, p.checkIds);
      duplicates = w.duplicates;
      if (w.refused.length > 0) ({ ids, rejected } = withRefused(p, w.refused));
    }
    const accepted = ids.length;
    this.stats.accepted += accepted;
    this.stats.rejected += rejected.length;
    this.stats.droppedAttributes += p.droppedAttributes;
    return { accepted, ids, rejected, duplicates, dropped_attributes: p.droppedAttributes };
  }
}

/** The column ClickHouse names in a data error, as the API calls it. */
function refusedField(error: unknown): string {
  const m = /value of key (\w+)|name: (\w+)[^\n]*ERROR/.exec(String((error as Error)?.message ?? error));
  const column = m?.[1] ?? m?.[2];
  if (!column) return '(event)';
  return column === 'attr_keys' || column === 'attr_values' ? 'attributes' : column;
}

/** The ids and rejections of a request after storage refused some of its rows. */
function withRefused(p: Prepared, refused: readonly { row: EventRow; error: unknown }[]): Pick<IngestResult, 'ids' | 'rejected'> {
  const byRow = new Map(refused.map((r) => [r.row, r.error]));
  const ids: string[] = [];
  const rejected = [...p.rejected];
  p.rows.forEach((row, k) => {
    if (!byRow.has(row)) {
      ids.push(row.id);
      return;
    }
    const reason = String((byRow.get(row) as Error)?.message ?? '').split('\n')[0].replace(/^Code: \d+\. DB::Exception: /, '').slice(0, 200);
    rejected.push({ index: p.indexes[k], errors: [{ field: refusedField(byRow.get(row)), message: `storage refused this value: ${reason}` }] });
  });
  rejected.sort((a, b) => a.index - b.index);
  return { ids, rejected };
}
