// What every view gets, and the query parameters every view shares (project and time range).
import type { Params } from './api';
import { rangeOf, type Route } from './router';

/** GET /monitoring/whoami: what this token may do. */
export interface Me {
  name: string;
  key_id: string | null;
  scopes: ('ingest' | 'read' | 'admin')[];
  /** null = every project. */
  projects: string[] | null;
}

export interface ViewProps {
  route: Route;
  /** Bumped by "Refresh" and by a new token: every view reloads. */
  epoch: number;
  /** "Now" for relative ranges, fixed until the route, epoch or auto-refresh changes it (so queries stay stable between renders). */
  now: number;
  me: Me;
}

/** Why this token cannot manage (admin scope), or null when it can. */
export function adminDenied(me: Me): string | null {
  return me.scopes.includes('admin') ? null : 'this key has no "admin" scope; ask for an admin key to change this';
}

export function baseParams(route: Route, now: number): Params {
  const r = rangeOf(route.params, now);
  return { project_id: route.params.get('project') ?? undefined, from: r.from, to: r.to };
}

/**
 * What baseParams asks, without the moment it is asked: a relative range by its name ("1h"), a fixed
 * one by its bounds. A view's query under the same identity is the same query (a refresh, an
 * auto-refresh), so its rows stay shown until the new answer replaces them (see useApi).
 */
export function baseQuery(route: Route): Params {
  const r = rangeOf(route.params, 0);
  return { project_id: route.params.get('project') ?? undefined, range: r.key, ...(r.key === 'custom' ? { from: r.from, to: r.to } : {}) };
}

/** The correlation filters another view may link the logs view to. */
export const LINK_FILTERS = ['fingerprint', 'session_id', 'user_id', 'flow_id', 'trace_id', 'action', 'error_type', 'id'] as const;

/** Params a request was made with, kept beside its rows: rows are only shown under the filters that produced them. */
export function sameKey(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
