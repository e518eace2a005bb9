// OTLP/HTTP receiver: POST /v1/logs and POST /v1/traces, JSON or protobuf, any Content-Encoding the
// ingest scope decodes. Answers as the OTLP spec says: 200 with an empty response or a partialSuccess,
// in the request's encoding; failures carry a google.rpc.Status when the request was protobuf.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { HttpError } from '../http/errors.js';
import { ingestScope, rejectParsed, type IngestRouteOptions } from './ingest-route.js';
import { isProtobuf, mapOtlpLogs, otlpResponse, PROJECT_FIELD, type OtlpParsed } from './otlp.js';
import { mapOtlpTraces } from './otlp-traces.js';
import { decodeLogsRequest, decodeTracesRequest, encodeAnswer, encodeStatus, type Decoded } from './otlp-proto.js';

const PROTOBUF = 'application/x-protobuf';

function parseJson(text: string): Decoded {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    return { ok: false, message: `the body is not valid JSON (OTLP/HTTP JSON encoding expected): ${(e as Error).message}` };
  }
}

const OtlpBody = Type.Unknown({ description: 'ExportLogsServiceRequest / ExportTraceServiceRequest, protobuf (application/x-protobuf) or JSON (application/json)' });
const OtlpAnswerSchema = Type.Object({
  partialSuccess: Type.Optional(Type.Object({
    rejectedLogRecords: Type.Optional(Type.Integer()), rejectedSpans: Type.Optional(Type.Integer()), errorMessage: Type.String(),
  })),
}, { description: 'the OTLP Export*ServiceResponse (protobuf when the request was protobuf)' });

export async function otlpRoutes(app: FastifyInstance, opts: IngestRouteOptions): Promise<void> {
  const scope = ingestScope(app, opts, [
    { types: ['application/json'], parseAs: 'string' },
    { types: [PROTOBUF, 'application/protobuf'], parseAs: 'buffer' },
  ]);

  // A protobuf sender reads failures as a protobuf google.rpc.Status; JSON senders get the engine's
  // error shape from the root handler.
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    if (!isProtobuf(req.headers['content-type'])) throw err;
    const status = err instanceof HttpError ? err.status
      : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 413
        : err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (err instanceof HttpError && err.headers) reply.headers(err.headers);
    const message = status === 500 ? 'internal error; the engine logged the details' : err.message;
    if (status === 500) req.log.error({ err }, 'unhandled error');
    return reply.code(status).type(PROTOBUF).send(encodeStatus(status, message));
  });

  const signals = [
    { url: '/v1/logs', signal: 'logs' as const, decode: decodeLogsRequest, map: mapOtlpLogs, counter: 'rejectedLogRecords' as const, noun: 'log record' },
    { url: '/v1/traces', signal: 'traces' as const, decode: decodeTracesRequest, map: mapOtlpTraces, counter: 'rejectedSpans' as const, noun: 'span' },
  ];
  for (const s of signals) {
    app.post(s.url, {
      config: { scope: 'ingest' },
      schema: { body: OtlpBody, response: { 200: OtlpAnswerSchema } },
    }, async (req, reply) => {
      const proto = isProtobuf(req.headers['content-type']);
      const decoded = proto
        ? s.decode(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0))
        : parseJson(typeof req.body === 'string' ? req.body : '');
      if (!decoded.ok) throw new HttpError(400, proto ? 'invalid_protobuf' : 'invalid_json', decoded.message, { errors: [{ field: '(body)', message: decoded.message }] });
      const parsed: OtlpParsed = s.map(decoded.value);
      if (!parsed.ok) throw rejectParsed(parsed);
      const send = (answer: object) => (proto ? reply.type(PROTOBUF).send(encodeAnswer(s.signal, answer)) : reply.send(answer));
      if (parsed.items.length === 0) return send({});
      const result = await scope.ingest(req, parsed.items, { lineErrors: parsed.recordErrors, projectField: PROJECT_FIELD });
      const answer = otlpResponse(result, parsed.paths, s.counter);
      if (result.accepted === 0) {
        throw new HttpError(400, 'invalid_events', `no ${s.noun} was accepted; ${answer.partialSuccess?.errorMessage ?? ''}`, { accepted: 0, rejected: result.rejected.slice(0, 1000) });
      }
      return send(answer);
    });
  }
}
