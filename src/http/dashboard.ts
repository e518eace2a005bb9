// The dashboard: the built single page (web/ → dist/web) at GET /, public like /health. The page
// holds no data; every API call it makes carries the user's bearer token.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fastifyStatic from '@fastify/static';
import { HttpError, sendError } from './errors.js';

/** The package root (where package.json is), from src/http or dist/src/http alike. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

export const DASHBOARD_DIR = join(packageRoot(), 'dist', 'web');

/**
 * Defence in depth for a page that shows other systems' text: scripts and styles from this origin
 * only (nothing inline), API calls to this origin only, never framed.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': [
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
    "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

export interface DashboardOptions {
  /** The built assets; defaults to dist/web of this package. */
  root?: string;
}

export async function dashboardRoutes(app: FastifyInstance, opts: DashboardOptions = {}): Promise<void> {
  const root = opts.root ?? DASHBOARD_DIR;
  if (!existsSync(join(root, 'index.html'))) {
    // the API works without the page; say how to get it instead of a bare 404
    app.get('/', async (_req, reply: FastifyReply) => sendError(reply, new HttpError(503, 'dashboard_not_built',
      'the dashboard is not built; run `npm run build` (npm start builds it when needed)')));
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    // one route per built file, found at start: no wildcard competing with the API's 404s
    wildcard: false,
    index: 'index.html',
    decorateReply: false,
    // listed in /openapi.json like every route (the document names all the engine serves)
    schemaHide: false,
    cacheControl: false,
    setHeaders(reply, path) {
      reply.headers(SECURITY_HEADERS);
      // hashed file names never change content; the page itself must be re-checked
      reply.header('cache-control', /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
}
