// Retention decisions, pure: which partitions go whole and which projects' rows are deleted inside
// the partitions that stay. A project's cutoff is its retention (its own, or the engine's default)
// before now, on a whole hour, so the hourly rollup and the events it summarises go together.
import { HOUR_MS } from '../storage/schema.js';

export const DAY_MS = 86_400_000;

export interface RetentionPolicy {
  /** The engine's MONITORING_RETENTION_DAYS. */
  defaultDays: number;
  /** Projects whose settings say otherwise. */
  overrides: ReadonlyMap<string, number>;
}

/** Rows with a time before this (ms) are past retention for the project. */
export function cutoff(policy: RetentionPolicy, project: string, now: number): number {
  const days = policy.overrides.get(project) ?? policy.defaultDays;
  return Math.floor((now - days * DAY_MS) / HOUR_MS) * HOUR_MS;
}

/** What one (partition, project) holds: its oldest and newest row times. */
export interface PartitionStat {
  partition: string;
  project_id: string;
  oldest: number;
  newest: number;
}

export interface RetentionPlan {
  /** Partitions whose every row is past its project's retention: dropped whole. */
  drop: string[];
  /** Projects with rows past retention in partitions that stay, with their cutoff: deleted row by row. */
  deletes: { project_id: string; before: number }[];
}

export function plan(stats: readonly PartitionStat[], policy: RetentionPolicy, now: number): RetentionPlan {
  const byPartition = new Map<string, PartitionStat[]>();
  for (const s of stats) {
    const list = byPartition.get(s.partition);
    if (list) list.push(s);
    else byPartition.set(s.partition, [s]);
  }
  const drop: string[] = [];
  const deleting = new Map<string, number>();
  for (const [partition, list] of byPartition) {
    if (list.every((s) => s.newest < cutoff(policy, s.project_id, now))) {
      drop.push(partition);
      continue;
    }
    for (const s of list) {
      const before = cutoff(policy, s.project_id, now);
      if (s.oldest < before) deleting.set(s.project_id, before);
    }
  }
  return {
    drop: drop.sort(),
    deletes: [...deleting].sort(([a], [b]) => (a < b ? -1 : 1)).map(([project_id, before]) => ({ project_id, before })),
  };
}

/** The latest cutoff of any project (the shortest retention): a partition with no row before it has nothing to remove. */
export function latestCutoff(policy: RetentionPolicy, now: number): number {
  const shortest = Math.min(policy.defaultDays, ...policy.overrides.values());
  return Math.floor((now - shortest * DAY_MS) / HOUR_MS) * HOUR_MS;
}
