// One error shape for every route: {error: {code, message, details?}}. Never a stack trace.
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { FieldError } from '../event.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export function badRequest(errors: FieldError[], message?: string): HttpError {
  const first = errors[0];
  return new HttpError(400, 'invalid_request', message ?? (first ? `${first.field}: ${first.message}` : 'invalid request'), { errors });
}

export function sendError(reply: FastifyReply, e: HttpError): FastifyReply {
  if (e.headers) reply.headers(e.headers);
  const body: { error: { code: string; message: string; details?: unknown } } = { error: { code: e.code, message: e.message } };
  if (e.details !== undefined) body.error.details = e.details;
  return reply.code(e.status).type('application/json').send(body);
}

/** Maps fastify's own errors (body limit, content type, schema) onto the shape above. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof HttpError) return sendError(reply, err);
    if (err.validation) {
      const errors = err.validation.map((v) => ({
        field: (v.instancePath || '').replace(/^\//, '').replace(/\//g, '.') || String((v.params as { missingProperty?: string })?.missingProperty ?? err.validationContext ?? 'request'),
        message: v.message ?? 'is invalid',
      }));
      return sendError(reply, badRequest(errors));
    }
    switch (err.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendError(reply, new HttpError(413, 'payload_too_large', `the body is larger than ${Math.round((app.initialConfig.bodyLimit ?? 0) / 1048576)} MB; split it into smaller requests`, { errors: [{ field: '(body)', message: 'too large' }] }));
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(reply, new HttpError(415, 'unsupported_media_type', 'send application/json or application/x-ndjson'));
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return sendError(reply, new HttpError(400, 'invalid_json', 'the body is not valid JSON', { errors: [{ field: '(body)', message: err.message }] }));
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return sendError(reply, new HttpError(400, 'invalid_request', 'the Content-Length does not match the body'));
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, new HttpError(err.statusCode, err.code?.toLowerCase() ?? 'bad_request', err.message));
    }
    req.log.error({ err }, 'unhandled error');
    return sendError(reply, new HttpError(500, 'internal', 'internal error; the engine logged the details'));
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, new HttpError(404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`)));
}
