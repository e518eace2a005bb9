// OTLP/HTTP receiver: POST /v1/logs and POST /v1/traces, JSON or protobuf, any Content-Encoding the
// ingest scope decodes. Answers as the OTLP spec says: 200 with an empty response or a partialSuccess,
// in the request's encoding; every failure is a google.rpc.Status (otlp-status.ts), protobuf for a
// protobuf request and JSON otherwise, with the HTTP status the engine gives it on any route.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { asHttpError, HttpError } from '../http/errors.js';
import { ingestScope, rejectParsed, type IngestRouteOptions } from './ingest-route.js';
import { isProtobuf, mapOtlpLogs, otlpResponse, PROJECT_FIELD, type OtlpParsed } from './otlp.js';
import { mapOtlpTraces } from './otlp-traces.js';
import { decodeLogsRequest, decodeTracesRequest, encodeAnswer, type Decoded } from './otlp-proto.js';
import { statusJson, statusProto } from './otlp-status.js';

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

  // OTLP senders read a failure as a google.rpc.Status (the Collector's otlphttp exporter decodes it
  // for its log line and its retry decision); the status code is the one any route would answer.
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const e = asHttpError(err, req, app.initialConfig.bodyLimit);
    if (e.headers) reply.headers(e.headers);
    reply.code(e.status);
    return isProtobuf(req.headers['content-type']) ? reply.type(PROTOBUF).send(statusProto(e)) : reply.type('application/json').send(statusJson(e));
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
        // nothing stored: 400, each rejected record a field violation named by its place in the request
        const errors = result.rejected.slice(0, 100).flatMap((r) => r.errors.map((x) => ({ field: `${parsed.paths[r.index] ?? `record ${r.index}`}.${x.field}`, message: x.message })));
        throw new HttpError(400, 'invalid_events', `no ${s.noun} was accepted; ${answer.partialSuccess?.errorMessage ?? ''}`, { accepted: 0, errors });
      }
      return send(answer);
    });
  }
}
