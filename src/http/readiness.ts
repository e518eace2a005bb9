// Readiness: can the engine write right now? Answered from a probe that runs in the background
// (so /ready never waits on a frozen store longer than it allows): storage answers a ping within
// its deadline, and the data dir takes a small synced write and has the configured free space.
import { closeSync, fsyncSync, openSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { withDeadline } from '../storage/transport.js';

export interface ReadyState {
  ready: boolean;
  /** Why not, when not ready. */
  reason?: 'storage_unavailable' | 'disk_full' | 'starting';
  message?: string;
  free_disk_bytes?: number;
}

const PROBE_BYTES = Buffer.alloc(4096, 0x2e);
/** A probe slower than this counts as storage not answering (/ready must answer within 1 s). */
export const READY_PROBE_MS = 700;

export class Readiness {
  private inFlight: Promise<void> | undefined;
  private inFlightSince = 0;
  private last: { ok: boolean; at: number; message?: string } = { ok: false, at: 0 };
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ping: () => Promise<boolean>,
    private readonly dataDir: string,
    private readonly minFreeBytes: number,
    private readonly probeTimeoutMs = READY_PROBE_MS,
  ) {}

  start(everyMs = 500): void {
    this.probe();
    this.timer = setInterval(() => this.probe(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private probe(): void {
    if (this.inFlight) return;
    this.inFlightSince = Date.now();
    this.inFlight = withDeadline(this.ping(), this.probeTimeoutMs, 'the readiness ping')
      .then((ok) => {
        this.last = ok ? { ok, at: Date.now() } : { ok, at: Date.now(), message: 'event storage answered the ping wrongly' };
      }, (e: unknown) => {
        this.last = { ok: false, at: Date.now(), message: `event storage does not answer: ${(e as Error)?.message ?? String(e)}`.slice(0, 300) };
      })
      .finally(() => (this.inFlight = undefined));
  }

  /** The state now; waits at most for the first probe (bounded by its deadline). */
  async check(): Promise<ReadyState> {
    const disk = this.checkDisk();
    if (disk) return disk;
    if (this.last.at === 0 && this.inFlight) await this.inFlight;
    const now = Date.now();
    if (this.inFlight && now - this.inFlightSince > this.probeTimeoutMs) {
      return { ready: false, reason: 'storage_unavailable', message: `event storage has not answered for ${now - this.inFlightSince} ms` };
    }
    if (this.last.at === 0) return { ready: false, reason: 'starting', message: 'the first storage probe has not finished' };
    if (!this.last.ok) return { ready: false, reason: 'storage_unavailable', message: this.last.message };
    return { ready: true };
  }

  /** Free space, and a small synced write into the data dir (a full or read-only disk fails it). */
  private checkDisk(): ReadyState | undefined {
    let free: number;
    try {
      const st = statfsSync(this.dataDir);
      free = st.bavail * st.bsize;
    } catch (e) {
      return { ready: false, reason: 'disk_full', message: `cannot read the data dir's disk: ${(e as Error).message}` };
    }
    if (free < this.minFreeBytes) {
      return { ready: false, reason: 'disk_full', message: `the data dir's disk has ${free} bytes free, below the ${this.minFreeBytes} required`, free_disk_bytes: free };
    }
    const file = join(this.dataDir, '.ready-probe');
    try {
      const fd = openSync(file, 'w');
      try {
        writeSync(fd, PROBE_BYTES);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
        unlinkSync(file);
      }
    } catch (e) {
      return { ready: false, reason: 'disk_full', message: `the data dir does not take a write: ${(e as Error).message}`, free_disk_bytes: free };
    }
    return undefined;
  }
}
