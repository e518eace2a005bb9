// GET /openapi.json: the API described from the routes themselves (@fastify/swagger reads each
// route's TypeBox schema as it is registered: one schema gives validation, types and this document).
// Routes that validate by hand may name their TypeBox schemas under config.docs instead: documented,
// not validated twice. Every route is in the document; the auth scope a route needs becomes its
// bearer-token security requirement. Register before any route.
import type { FastifyInstance, FastifySchema } from 'fastify';
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './dashboard.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Schemas for the OpenAPI document only (the handler validates by hand with the same schema). */
    docs?: FastifySchema;
  }
}

/** `/monitoring/keys/:id` → `/monitoring/keys/{id}`, as @fastify/swagger writes paths. */
export function openapiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*/g, '{*}');
}

/** The first path segment after /monitoring groups the routes (keys, logs, alerts…). */
function tagOf(url: string): string {
  const m = /^\/(?:monitoring\/)?([^/:{*]+)/.exec(url);
  return m ? m[1] : 'root';
}

function packageVersion(): string {
  try {
    return String(JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')).version);
  } catch {
    return '0.0.0';
  }
}

export const openapiPlugin = fp(async (app: FastifyInstance) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'PURAIFY Monitoring & Logs Engine',
        version: packageVersion(),
        description: 'Ingest, store, group, alert, search, audit and replay events. Every /monitoring, /v1 and /metrics route takes `Authorization: Bearer <admin token or project key>`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: ({ schema, url, route }) => {
      const scope = route.config?.scope;
      const docs = route.config?.docs ?? {};
      const out: Record<string, unknown> = { tags: [tagOf(url)], ...docs, ...(schema ?? {}) };
      if (scope) {
        out.security = [{ bearer: [] }];
        out.description = [(out.description as string | undefined) ?? '', `Needs the \`${scope}\` scope.`].filter(Boolean).join(' ');
      }
      return { schema: out as FastifySchema, url };
    },
  });
  app.get('/openapi.json', { schema: { tags: ['docs'], summary: 'This document' } }, async () => app.swagger());
});
