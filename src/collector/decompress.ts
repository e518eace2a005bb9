// Content-Encoding on ingest bodies: gzip, deflate (zlib or raw) and br are decoded as the body
// streams in, and the DECODED size is held to the body limit: a zip bomb is cut off at the limit
// with a 413 and never held in memory whole.
import { Transform, type Readable } from 'node:stream';
import { createBrotliDecompress, createInflateRaw, createUnzip, type Unzip } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { uncompressSync } from 'snappy';
import { LIMITS } from '../event.js';
import { HttpError } from '../http/errors.js';

/** An HttpError that fastify's body reader passes on with its status (it reads `statusCode`). */
function streamError(status: number, code: string, message: string): HttpError {
  return Object.assign(new HttpError(status, code, message, { errors: [{ field: '(body)', message }] }), { statusCode: status });
}

/**
 * The body's Content-Encoding, lowercased; undefined for none/identity and for the encodings the
 * route decodes itself (`own`: Loki's snappy). Throws 415 for others.
 */
export function contentEncoding(header: string | string[] | undefined, own: readonly string[] = []): 'gzip' | 'deflate' | 'br' | undefined {
  const v = (Array.isArray(header) ? header.join(',') : header ?? '').trim().toLowerCase();
  if (v === '' || v === 'identity' || own.includes(v)) return undefined;
  if (v === 'gzip' || v === 'x-gzip') return 'gzip';
  if (v === 'deflate') return 'deflate';
  if (v === 'br') return 'br';
  throw new HttpError(415, 'unsupported_encoding', `Content-Encoding "${v.slice(0, 40)}" is not supported; send gzip, deflate, br or none`,
    { errors: [{ field: 'Content-Encoding', message: 'must be gzip, deflate, br or identity' }] });
}

/**
 * "deflate" is zlib-wrapped by the HTTP spec, but some senders send raw deflate: the first byte tells
 * (a zlib header has compression method 8 in its low nibble and a header checksum divisible by 31).
 */
function inflaterFor(first: Buffer): Transform {
  const zlibHeader = first.length >= 2 && (first[0] & 0x0f) === 8 && ((first[0] << 8) | first[1]) % 31 === 0;
  return zlibHeader ? createUnzip() : createInflateRaw();
}

/**
 * Wraps a request body stream in a decoder. The result counts the encoded bytes read
 * (`receivedEncodedLength`, which fastify checks against Content-Length) and fails with 413 as soon as
 * the decoded bytes pass `limit`, stopping the decoder.
 */
export function decodedBody(raw: Readable, encoding: 'gzip' | 'deflate' | 'br', limit: number = LIMITS.maxBodyBytes): Readable {
  let decoded = 0;
  let decoder: Transform | undefined;
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      decoded += chunk.length;
      if (decoded > limit) {
        cb(streamError(413, 'payload_too_large', `the decompressed body is larger than ${Math.round(limit / 1048576)} MB; split it into smaller requests`));
        return;
      }
      cb(null, chunk);
    },
  }) as Transform & { receivedEncodedLength: number };
  out.receivedEncodedLength = 0;
  const fail = (what: string) => (e: Error) => {
    if (!out.destroyed) out.destroy(streamError(400, 'invalid_encoding', `the body is not valid ${what}: ${e.message}`));
  };
  const start = (first: Buffer): Transform => {
    const d = encoding === 'gzip' ? createUnzip()
      : encoding === 'br' ? createBrotliDecompress()
        : inflaterFor(first);
    d.on('error', fail(encoding));
    d.pipe(out);
    return d;
  };
  const onData = (chunk: Buffer) => {
    out.receivedEncodedLength += chunk.length;
    decoder ??= start(chunk);
    if (!decoder.write(chunk)) {
      raw.pause();
      decoder.once('drain', () => raw.resume());
    }
  };
  raw.on('data', onData);
  raw.on('end', () => (decoder ?? start(Buffer.alloc(0))).end());
  raw.on('error', (e) => out.destroy(e));
  out.on('close', () => {
    // cut off: stop reading and decoding what is left of a bomb
    raw.off('data', onData);
    if (decoder && !decoder.destroyed) (decoder as Unzip).destroy();
  });
  return out;
}

/** A preParsing hook for every ingest scope: decode Content-Encoding before any parser sees the body. */
export function addBodyDecoding(app: FastifyInstance, own: readonly string[] = []): void {
  app.addHook('preParsing', async (req: FastifyRequest, _reply, payload) => {
    const enc = contentEncoding(req.headers['content-encoding'], own);
    return enc ? decodedBody(payload, enc) : payload;
  });
}

/**
 * Snappy block format (Loki / Prometheus push bodies), decoded whole: the bodies are small, and the
 * uncompressed length the block declares up front is checked against the limit before any work.
 */
export function unsnappy(body: Buffer, limit: number = LIMITS.maxBodyBytes): Buffer {
  let len = 0;
  let shift = 0;
  let i = 0;
  for (; i < 5 && i < body.length; i++) {
    len += (body[i] & 0x7f) * 2 ** shift;
    if ((body[i] & 0x80) === 0) break;
    shift += 7;
  }
  if (i >= body.length) throw streamError(400, 'invalid_encoding', 'the body is not valid snappy: it is empty or truncated');
  if (len > limit) throw streamError(413, 'payload_too_large', `the decompressed body would be ${len} bytes, more than ${Math.round(limit / 1048576)} MB; split it into smaller requests`);
  try {
    return uncompressSync(body) as Buffer;
  } catch (e) {
    throw streamError(400, 'invalid_encoding', `the body is not valid snappy: ${(e as Error).message}`);
  }
}
