// What every view gets, and the query parameters every view shares (project and time range).
import type { Params } from './api';
import { rangeOf, type Route } from './router';

export interface Caps {
  stream: boolean;
  sessions: boolean;
  alerts: boolean;
  notifications: boolean;
}

export interface ViewProps {
  route: Route;
  /** Bumped by "Refresh" and by a new token: every view reloads. */
  epoch: number;
  /** "Now" for relative ranges, fixed until the route or epoch changes (so queries stay stable between renders). */
  now: number;
  caps: Caps;
}

export function baseParams(route: Route, now: number): Params {
  const r = rangeOf(route.params, now);
  return { project_id: route.params.get('project') ?? undefined, from: r.from, to: r.to };
}

/** The correlation filters another view may link the logs view to. */
export const LINK_FILTERS = ['fingerprint', 'session_id', 'user_id', 'flow_id', 'trace_id', 'action', 'error_type', 'id'] as const;
