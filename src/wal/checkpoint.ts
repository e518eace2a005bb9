// How far each consumer of the log has come, kept in one small file replaced atomically
// (write a temporary file, fdatasync it, rename it over the old one), as Prometheus and Loki
// replace their checkpoints. A missing or unreadable file means "from the oldest segment": the
// loader then checks every id against storage, so replaying too much never stores anything twice.
import { readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pos } from './record.js';

export interface Checkpoint {
  /** Everything before this is in storage. */
  loaded: Pos;
  /** Everything before this went through the alert rules, error groups and alert routing. */
  observed: Pos;
}

const FILE = 'checkpoint.json';

function isPos(p: unknown): p is Pos {
  const q = p as Pos;
  return !!q && Number.isSafeInteger(q.seg) && Number.isSafeInteger(q.off) && q.seg >= 0 && q.off >= 0;
}

export function readCheckpoint(dir: string): { checkpoint?: Checkpoint; problem?: string } {
  let text: string;
  try {
    text = readFileSync(join(dir, FILE), 'utf8');
  } catch {
    return {};
  }
  try {
    const c = JSON.parse(text) as Checkpoint;
    if (isPos(c.loaded) && isPos(c.observed)) return { checkpoint: { loaded: c.loaded, observed: c.observed } };
  } catch {
    // reported below
  }
  return { problem: `${FILE} is unreadable; replaying the whole log (ids keep it from being stored twice)` };
}

/**
 * Off the event loop: under load an fdatasync waits behind the log's own and storage's writes (it
 * held the loop for 0.8 s of a 10 s profile when this was synchronous). Callers serialise it.
 */
export async function writeCheckpoint(dir: string, c: Checkpoint): Promise<void> {
  const tmp = join(dir, `${FILE}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(c));
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, FILE));
}
