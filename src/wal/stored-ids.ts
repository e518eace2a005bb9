// Which (project, id) keys storage may hold, kept in memory so the loader looks for an id in storage
// only when it may be there (nearly every client id is new). An id filter (id-filter.ts) filled from
// a scan of the events table at start, in pages, and from every block the loader stores. It answers
// "not stored" only once that scan is complete; until then every id is looked for as before.
//
// Only for storage this engine alone writes to (embedded chDB): where other nodes insert into the
// same tables, their ids never reach this filter (the cluster's id registry decides there).
//
// Sized once, at start: for twice the stored events plus headroom, 10 bits per key (~1 % of new ids
// still looked for), at most 64 MB. Past that capacity it is not rebuilt: more new ids are answered
// "maybe" and looked for in storage (about 14 % at twice the capacity, 40 % at three times); the next
// start sizes it for what is stored then. Rows retention deletes stay in it: false "maybe"s, harmless.
import { IdFilter, MAX_BYTES } from './id-filter.js';
import { yieldTurn } from './wake.js';
import type { IdPage, IdPageKey } from '../storage/event-store.js';

/** What the scan reads (EventStore implements it). */
export interface IdSource {
  countAll(opts?: { timeoutMs?: number }): Promise<number>;
  idPartitions(opts?: { timeoutMs?: number }): Promise<string[]>;
  idPage(partition: string, from: IdPageKey | undefined, limit: number, opts?: { timeoutMs?: number }): Promise<IdPage>;
  idGroup(partition: string, key: { project_id: string; timestamp: number }, bucket: number, buckets: number, opts?: { timeoutMs?: number }): Promise<string[]>;
  idGroupSize(partition: string, key: { project_id: string; timestamp: number }, opts?: { timeoutMs?: number }): Promise<number>;
}

type Log = (level: 'warn' | 'error' | 'info', obj: object, msg: string) => void;

/** Rows per page of the scan: ~1.5 ms of parsing and ~10 ms of filter adds on the event loop each. */
export const PAGE_ROWS = 20_000;
/** Keys any filter is sized for at least: 10 MB. */
const MIN_CAPACITY = 8_000_000;
const QUERY_MS = 60_000;
const RETRY_MS = 5_000;

export class StoredIds {
  readonly filter: IdFilter;
  readonly stats = { complete: false, scannedRows: 0, scanMs: 0, scanFailures: 0 };
  private stopped = false;
  private warnedFull = false;
  private readonly pageRows: number;

  /** `storedRows`: how many events storage holds now (the filter is sized from it). */
  constructor(private readonly source: IdSource, storedRows: number, private readonly log: Log, opts: { pageRows?: number; minCapacity?: number } = {}) {
    this.filter = new IdFilter({ capacity: Math.max(opts.minCapacity ?? MIN_CAPACITY, 2 * storedRows), maxBytes: MAX_BYTES });
    this.pageRows = opts.pageRows ?? PAGE_ROWS;
  }

  /** Sized from storage's count of events (a storage that does not answer gets the smallest filter). */
  static async open(source: IdSource, log: Log, opts: { pageRows?: number; minCapacity?: number } = {}): Promise<StoredIds> {
    const rows = await source.countAll({ timeoutMs: 10_000 }).catch(() => 0);
    return new StoredIds(source, rows, log, opts);
  }

  get complete(): boolean {
    return this.stats.complete;
  }

  /** False: storage does not hold this id (it was never stored). True: it may (or the scan is not done). */
  mayBeStored(project: string, id: string): boolean {
    return !this.stats.complete || this.filter.mayHave(project, id);
  }

  /** An id storage holds, or may hold from now on (an insert is about to be tried). */
  add(project: string, id: string): void {
    this.filter.add(project, id);
    if (!this.warnedFull && this.filter.added > this.filter.size.capacity) {
      this.warnedFull = true;
      this.log('info', { capacity: this.filter.size.capacity, bytes: this.filter.bytes }, 'id filter: past its capacity; more new ids are checked in storage until the next start sizes it anew');
    }
  }

  /**
   * Reads every stored (project, id) into the filter, partition by partition, then marks it complete.
   * Retries after a failure until it succeeds or stop() is called. Rows the loader inserts meanwhile
   * are added by the loader, so what is stored before or during the scan is in the filter after it.
   */
  async fill(): Promise<void> {
    const started = performance.now();
    while (!this.stopped) {
      try {
        await this.scan();
        if (this.stopped) return;
        this.stats.complete = true;
        this.stats.scanMs = performance.now() - started;
        this.log('info', { rows: this.stats.scannedRows, ms: Math.round(this.stats.scanMs), bytes: this.filter.bytes }, 'id filter: filled from storage; new ids skip the storage check');
        return;
      } catch (e) {
        if (this.stopped) return;
        this.stats.scanFailures++;
        this.log('warn', { err: String((e as Error)?.message ?? e).slice(0, 300) }, 'id filter: the scan of stored ids failed; every id is checked in storage until it is retried and done');
        await new Promise((r) => setTimeout(r, RETRY_MS).unref());
      }
    }
  }

  stop(): void {
    this.stopped = true;
  }

  private async scan(): Promise<void> {
    const opts = { timeoutMs: QUERY_MS };
    for (const partition of await this.source.idPartitions(opts)) {
      let from: IdPageKey | undefined;
      while (!this.stopped) {
        const page = await this.source.idPage(partition, from, this.pageRows, opts);
        for (const g of page.groups) for (const id of g.ids) this.filter.add(g.project_id, id);
        this.stats.scannedRows += page.rows;
        if (page.rows < this.pageRows || !page.first || !page.last) break;
        const { first, last } = page;
        if (first.project_id === last.project_id && first.timestamp === last.timestamp) {
          // more events share this key than a page holds: read them by hash bucket, then go past it
          const key = { project_id: last.project_id, timestamp: last.timestamp };
          const buckets = Math.ceil((await this.source.idGroupSize(partition, key, opts)) / this.pageRows) + 1;
          for (let b = 0; b < buckets && !this.stopped; b++) {
            const ids = await this.source.idGroup(partition, key, b, buckets, opts);
            for (const id of ids) this.filter.add(key.project_id, id);
            this.stats.scannedRows += ids.length;
            await yieldTurn();
          }
          from = { ...key, strict: true };
        } else {
          // the last key may go on in the next page: it is read again from its start (adds repeat harmlessly)
          from = { project_id: last.project_id, timestamp: last.timestamp };
        }
        await yieldTurn();
      }
    }
  }
}
