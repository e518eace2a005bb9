// Names a copy of an event in a cluster's id registry (src/storage/id-claims.ts): this node's
// identity and the position of the log record holding the copy. The identity is kept in the log's
// directory, so it lives exactly as long as the records it names: a node restarted on its data dir
// replays its log under the same names and finds its own claims; a node given a new (empty) log is
// a new claimant. Positions are never reused while a record may still be unloaded (a cut tail is
// followed by a new segment), so one name is one copy. The same name marks the node's alert-outbox
// leases (src/alerts/store.ts), so a restarted node knows which ones its last run held.
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Pos } from './record.js';

const FILE = 'node-id';

/** This log's node identity, made (durably) on first use. */
export function nodeIdentity(walDir: string): string {
  const file = join(walDir, FILE);
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f-]{36}$/.test(id)) return id;
  } catch {
    // not made yet
  }
  mkdirSync(walDir, { recursive: true });
  const id = randomUUID();
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, `${id}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dirFd = openSync(walDir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return id;
}

export const claimantOf = (node: string, pos: Pos): string => `${node}:${pos.seg}:${pos.off}`;
