// The vendored .proto files (proto/ at the package root, see proto/README.md), loaded once with
// protobufjs. Message types are looked up lazily so an engine that never sees protobuf never parses them.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** proto/ of this package, from src/collector or dist/src/collector alike. */
function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'proto', 'README.md'))) return join(dir, 'proto');
    dir = dirname(dir);
  }
  throw new Error('proto/ (the vendored protocol definitions) is missing from the package');
}

const FILES = [
  'opentelemetry/opentelemetry/proto/collector/logs/v1/logs_service.proto',
  'opentelemetry/opentelemetry/proto/collector/trace/v1/trace_service.proto',
  'loki/push.proto',
  'google/rpc/status.proto',
  'google/rpc/error_details.proto',
];

let root: protobuf.Root | undefined;

function load(): protobuf.Root {
  if (root) return root;
  const dir = protoDir();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    if (isAbsolute(target)) return target;
    if (target.startsWith('gogoproto/')) return null; // Go code-generation options only (see proto/README.md)
    if (target.startsWith('google/protobuf/')) return target; // protobufjs ships the well-known types
    if (target.startsWith('opentelemetry/proto/')) return join(dir, 'opentelemetry', target);
    return join(dir, target);
  };
  r.loadSync(FILES.map((f) => join(dir, f)), { keepCase: false });
  r.resolveAll();
  // AnyValue's oneof only says "one of these is set": the wire format is the same without it, and
  // protobufjs's decoder clears the other six members with `delete` for every value it reads (an
  // eighth of the protobuf ingest CPU). The mappers check own properties, which says the same.
  const anyValue = r.lookupType('opentelemetry.proto.common.v1.AnyValue');
  for (const oneof of Object.values(anyValue.oneofs ?? {})) {
    for (const f of [...oneof.fieldsArray]) oneof.remove(f);
    anyValue.remove(oneof);
  }
  root = r;
  return r;
}

const types = new Map<string, protobuf.Type>();

/** A message type by its full name, e.g. opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest. */
export function messageType(name: string): protobuf.Type {
  let t = types.get(name);
  if (!t) {
    t = load().lookupType(name);
    types.set(name, t);
  }
  return t;
}
