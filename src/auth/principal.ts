// Who is calling, and what they may do. Pure: the tenant guard every route applies.
export type Scope = 'ingest' | 'read' | 'admin';
export const SCOPES: readonly Scope[] = ['ingest', 'read', 'admin'];

export interface Principal {
  /** "admin-token" or the key's id: recorded in the audit trail as who did an admin action. */
  name: string;
  keyId?: string;
  scopes: ReadonlySet<Scope>;
  /** '*' = every project. */
  projects: '*' | ReadonlySet<string>;
  requestsPerMinute?: number;
  eventsPerMinute?: number;
}

export function mayAccessProject(p: Principal, project: string): boolean {
  return p.projects === '*' || p.projects.has(project);
}

/** The one project a key is bound to, or undefined for admin-token / all-project keys. */
export function boundProject(p: Principal): string | undefined {
  if (p.projects === '*' || p.projects.size !== 1) return undefined;
  return p.projects.values().next().value;
}

export function hasScope(p: Principal, scope: Scope): boolean {
  // admin implies the others: an operator with an admin key can do everything in its projects
  return p.scopes.has(scope) || p.scopes.has('admin');
}

/** The projects a query may touch: the requested ones if allowed, else all of the key's own. */
export function visibleProjects(p: Principal, requested: readonly string[] | undefined):
  { ok: true; projects: readonly string[] | undefined } | { ok: false; project: string } {
  if (requested && requested.length > 0) {
    for (const r of requested) if (!mayAccessProject(p, r)) return { ok: false, project: r };
    return { ok: true, projects: requested };
  }
  return { ok: true, projects: p.projects === '*' ? undefined : [...p.projects] };
}

/** May this principal see the engine's own counters (which cover every tenant)? Admin of every project only. */
export function administersAll(p: Principal): boolean {
  return p.projects === '*' && hasScope(p, 'admin');
}
