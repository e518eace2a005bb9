import { createHash } from 'node:crypto';
import { describe, it, expect } from 'vitest';
import {
  MAX_FRAMES,
  fingerprintBasis,
  fingerprintOf,
  hashBasis,
  normalizeStack,
  parameterize,
  type FingerprintInput,
} from './fingerprint.js';

/** Literal replacement (String#replace would treat '$$' in the replacement specially). */
const sub = (s: string, from: string, to: string): string => {
  if (!s.includes(from)) throw new Error(`test bug: ${from} not in input`);
  return s.split(from).join(to);
};

const ev = (over: Partial<FingerprintInput>): FingerprintInput => ({
  error_type: 'Error',
  engine: 'execution',
  platform: 'notion',
  message: '',
  stack: '',
  ...over,
});

describe('parameterize', () => {
  it.each([
    // [input, expected]
    ['User 8f14e45f-ceea-467f-a0e6-1f4a3b2c9d10 not found', 'User <uuid> not found'],
    ['Invalid recipient alice.smith+test@mail.example.co.uk', 'Invalid recipient <email>'],
    ['GET https://api.notion.com/v1/pages/9f1c2ab3 failed', 'GET <url:api.notion.com> failed'],
    ['see https://user:pw@Hooks.Slack.com:443/services/T0/B0?x=1#y.', 'see <url:hooks.slack.com>.'],
    ['GET http://10.0.0.5:8080/health and ws://[::1]:9000/', 'GET <url:ip> and <url:ip>'],
    ['connect ECONNREFUSED 10.0.3.17:5432', 'connect ECONNREFUSED <ip>'],
    ['connect ECONNREFUSED ::1:5432', 'connect ECONNREFUSED <ip>'],
    ['peer fe80::1ff:fe23:4567:890a down', 'peer <ip> down'],
    ['peer 2001:db8:85a3:0:0:8a2e:370:7334 down', 'peer <ip> down'],
    ['client ::ffff:192.168.0.1 reset', 'client <ip> reset'],
    ['Job at 2025-07-25T14:01:00Z failed', 'Job at <date> failed'],
    ['Job at 2025-08-01T09:30:12.345+02:00 failed', 'Job at <date> failed'],
    ['due 2025-07-25 14:01:00', 'due <date>'],
    ['due 2025/07/25', 'due <date>'],
    ['expired Fri, 25 Jul 2025 14:01:00 GMT', 'expired <date>'],
    ['at Fri Jul 25 2025 14:01:00 GMT+0200 (Central European Summer Time) x', 'at <date> x'],
    ['tick 14:01:00 missed', 'tick <time> missed'],
    ['tick 3:15:59.120 PM missed', 'tick <time> missed'],
    ['retry in 4232ms, 4232 ms, 3.5s, 10 min, 2 hours, 500 µs', 'retry in <duration>, <duration>, <duration>, <duration>, <duration>, <duration>'],
    ['payload 5MB > 1.5 GiB, read 512 bytes', 'payload <size> > <size>, read <size>'],
    ['object 507f1f77bcf86cd799439011 at 0x7ffd5fbff8AC', 'object <hex> at <hex>'],
    ['sha 3f786850e387550fdab836ed7e6dc881de23001b', 'sha <hex>'],
    ["Column 'email' not found", 'Column <str> not found'],
    ['table "users" in `db`', 'table <str> in <str>'],
    ['json "a \\" b" end', 'json <str> end'],
    ['score 0.87 below 1e-5 (threshold 2.5E+3)', 'score <float> below <float> (threshold <float>)'],
    ['Order 42 failed after 3 retries', 'Order <int> failed after <int> retries'],
    ['Invalid API key sk_live_51HqLy2KZvKYlo2C8abcDEF123', 'Invalid API key <token>'],
    ['req_9f1c2ab3 user_123 item-42', 'req_<hex> user_<int> item-<int>'],
  ])('%j -> %j', (input, expected) => {
    expect(parameterize(input)).toBe(expected);
  });

  it('lets the more specific placeholder win', () => {
    // a URL containing a UUID, an e-mail and a number is one URL placeholder
    expect(parameterize('POST https://api.example.com/u/8f14e45f-ceea-467f-a0e6-1f4a3b2c9d10?mail=a@b.io&n=5')).toBe(
      'POST <url:api.example.com>',
    );
    // a long token that is all hex is a hex id, one shaped like a UUID is a UUID
    expect(parameterize('id 3f786850e387550fdab836ed7e6dc881')).toBe('id <hex>');
    // an ISO date is not three integers, a duration is not an integer
    expect(parameterize('2025-07-25 took 15ms')).toBe('<date> took <duration>');
    // an IP with port is one placeholder, not a float and an int
    expect(parameterize('127.0.0.1:3000 refused')).toBe('<ip> refused');
  });

  it('leaves constant words alone', () => {
    expect(parameterize('token expired')).toBe('token expired');
    expect(parameterize('rate limited')).toBe('rate limited');
    expect(parameterize("can't decode users' utf8 v2 base64 payload")).toBe("can't decode users' utf8 v2 base64 payload");
    expect(parameterize('Abc::Def std::vector deadbeef 12345678')).toBe('Abc::Def std::vector deadbeef <int>');
    expect(parameterize('')).toBe('');
  });

  it('collapses whitespace', () => {
    expect(parameterize('  Order   42\n\tfailed  \r\n')).toBe('Order <int> failed');
  });

  it('stays fast on long and adversarial input (no catastrophic backtracking)', () => {
    const n = 64 * 1024;
    const inputs = [
      '"\\'.repeat(n / 2),
      "a 'b".repeat(n / 4),
      '1:'.repeat(n / 2),
      '1.'.repeat(n / 2),
      'a.'.repeat(n / 2) + '@',
      'a1'.repeat(n / 2),
      'ffff:'.repeat(n / 5) + '1',
      'Timeout after 4232 ms calling https://api.notion.com/v1/pages/9f1c for user 42 at 2025-07-25T14:01:00Z '.repeat(600),
    ];
    const t0 = performance.now();
    for (const s of inputs) parameterize(s);
    expect(performance.now() - t0).toBeLessThan(800);
  });
});

const NODE_STACK = `TypeError: Cannot read properties of undefined (reading 'id')
    at getUser (/app/src/services/users.js:42:17)
    at async Promise.all (index 3)
    at async handler [as run] (file:///app/src/routes/users.mjs:10:5)
    at new FlowRunner (/app/src/flow/runner.js:5:11)
    at /app/src/flow/runner.js:77:9
    at Array.map (<anonymous>)
    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
    at eval (eval at compile (/app/src/tpl.js:3:5), <anonymous>:1:1)
    at Object.<anonymous> (C:\\Users\\dev\\app\\main.3f9a1b2c.js:1:2)
    at Module._compile (internal/modules/cjs/loader.js:1063:30)`;

const PYTHON_STACK = `Traceback (most recent call last):
  File "/app/worker/main.py", line 88, in run
    result = execute(flow)
  File "/app/worker/engine.py", line 41, in execute
    return client.post(url, json=payload)
  File "/usr/local/lib/python3.11/site-packages/requests/api.py", line 115, in post
    return request("post", url, data=data, json=json, **kwargs)
  File "/usr/lib/python3.11/asyncio/base_events.py", line 653, in run_until_complete
  File "<frozen importlib._bootstrap>", line 1178, in _find_and_load
  File "/app/worker/engine.py", line 12, in <lambda>
requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='api.notion.com', port=443): Read timed out.`;

const JAVA_STACK = `java.lang.IllegalStateException: Flow 42 failed
\tat com.puraify.engine.FlowExecutor.execute(FlowExecutor.java:118)
\tat com.puraify.engine.FlowExecutor.lambda$run$0(FlowExecutor.java:77)
\tat com.puraify.engine.FlowExecutor$$Lambda$14/0x0000000800066840.apply(Unknown Source)
\tat com.puraify.api.FlowController$$EnhancerBySpringCGLIB$$a1b2c3d4.start(<generated>)
\tat jdk.proxy2/jdk.proxy2.$Proxy123.start(Unknown Source)
\tat java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1136)
\tat java.base/java.lang.Thread.run(Thread.java:833) ~[na:na]
\tat com.puraify.Native.call(Native Method)
Caused by: java.net.SocketTimeoutException: Read timed out
\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)
\tat com.puraify.http.NotionClient.post(NotionClient.java:55)
\t... 12 more`;

describe('normalizeStack', () => {
  it('parses Node/V8 frames and drops node_modules, node:internal, internal/ and builtin frames', () => {
    expect(normalizeStack(NODE_STACK)).toEqual([
      'getUser@users.js',
      'handler@users.mjs',
      'new FlowRunner@runner.js',
      '<anonymous>@runner.js',
      'eval@tpl.js',
      'Object.<anonymous>@main.<hash>.js',
    ]);
  });

  it('parses Python tracebacks innermost first and drops site-packages and stdlib frames', () => {
    expect(normalizeStack(PYTHON_STACK)).toEqual(['<lambda>@engine.py', 'execute@engine.py', 'run@main.py']);
    expect(normalizeStack('  File "/opt/venv/lib/python3.12/dist-packages/x/y.py", line 3, in go\n  File "/srv/app.py", line 9, in main')).toEqual([
      'main@app.py',
    ]);
  });

  it('parses Java traces through Caused by, drops java./sun./jdk. frames, normalizes generated classes', () => {
    expect(normalizeStack(JAVA_STACK)).toEqual([
      'FlowExecutor.execute@FlowExecutor.java',
      'FlowExecutor.lambda$run$0@FlowExecutor.java',
      'FlowExecutor$$Lambda.apply@com.puraify.engine.FlowExecutor$$Lambda',
      'FlowController$$EnhancerBySpringCGLIB$$.start@com.puraify.api.FlowController$$EnhancerBySpringCGLIB$$',
      'Native.call@com.puraify.Native',
      'NotionClient.post@NotionClient.java',
    ]);
  });

  it('keeps library frames when no application frame remains', () => {
    const stack = `Error: socket hang up
    at connResetException (node:internal/errors:720:14)
    at TLSSocket.socketOnEnd (node:_http_client:525:23)
    at Array.map (<anonymous>)
    at TLSSocket.emit (node:events:529:35)`;
    expect(normalizeStack(stack)).toEqual([
      'connResetException@errors',
      'TLSSocket.socketOnEnd@node:_http_client',
      'Array.map@<anonymous>',
      'TLSSocket.emit@node:events',
    ]);
    expect(normalizeStack('\tat java.base/java.lang.Thread.run(Thread.java:833)')).toEqual(['Thread.run@Thread.java']);
  });

  it('collapses direct recursion and caps the frame count', () => {
    const recursion = 'RangeError: Maximum call stack size exceeded\n' +
      Array.from({ length: 50 }, (_, i) => `    at walk (/app/tree.js:${i + 1}:3)`).join('\n');
    expect(normalizeStack(recursion)).toEqual(['walk@tree.js']);
    const deep = 'Error\n' + Array.from({ length: 50 }, (_, i) => `    at f${i} (/app/x.js:1:1)`).join('\n');
    const frames = normalizeStack(deep);
    expect(frames).toHaveLength(MAX_FRAMES);
    expect(MAX_FRAMES).toBe(30);
    expect(frames[0]).toBe('f0@x.js');
    expect(frames[29]).toBe('f29@x.js');
  });

  it('returns [] when there are no recognizable frames', () => {
    expect(normalizeStack('')).toEqual([]);
    expect(normalizeStack('Error: token expired')).toEqual([]);
    expect(normalizeStack('at least one field is required\n  at 14:01:00 the job failed\nat foo(bar)')).toEqual([]);
  });
});

describe('fingerprintOf', () => {
  it('returns an explicit client fingerprint as is', () => {
    expect(fingerprintOf(ev({ fingerprint: 'notion-timeout', message: 'whatever', stack: NODE_STACK }))).toBe('notion-timeout');
    // empty or blank means "none sent"
    expect(fingerprintOf(ev({ fingerprint: '', message: 'token expired' }))).toBe(fingerprintOf(ev({ message: 'token expired' })));
    expect(fingerprintOf(ev({ fingerprint: '   ', message: 'token expired' }))).toBe(fingerprintOf(ev({ message: 'token expired' })));
  });

  it('hashes error_type + engine + platform + parameterized message when there is no stack', () => {
    const e = ev({ error_type: 'TimeoutError', message: 'Timeout after 4232 ms calling https://api.notion.com/v1/pages/9f1c…' });
    const basis = 'message\nTimeoutError\nexecution\nnotion\nTimeout after <duration> calling <url:api.notion.com>';
    expect(fingerprintBasis(e)).toEqual({ source: 'message', basis });
    const expected = createHash('sha1').update(basis).digest('hex').slice(0, 16);
    expect(fingerprintOf(e)).toBe(expected);
    expect(hashBasis(basis)).toBe(expected);
    expect(fingerprintOf(e)).toMatch(/^[0-9a-f]{16}$/);
  });

  it('hashes error_type + frames when the stack has frames', () => {
    const e = ev({ error_type: 'ReadTimeout', message: 'Read timed out.', stack: PYTHON_STACK });
    expect(fingerprintBasis(e)).toEqual({
      source: 'stack',
      basis: 'stack\nReadTimeout\n<lambda>@engine.py\nexecute@engine.py\nrun@main.py',
    });
    expect(fingerprintOf(e)).toBe(hashBasis('stack\nReadTimeout\n<lambda>@engine.py\nexecute@engine.py\nrun@main.py'));
  });

  // ---- same problem -> one group -------------------------------------------------------------

  const sameMessage: [string, string, string][] = [
    ['issue example', 'Timeout after 4232 ms calling https://api.notion.com/v1/pages/9f1c…', 'Timeout after 18 ms calling https://api.notion.com/v1/pages/77aa…'],
    ['uuid', 'Flow 8f14e45f-ceea-467f-a0e6-1f4a3b2c9d10 not found', 'Flow 0b6f2a51-93d4-4c1e-b0a2-7d7c9e2f4a11 not found'],
    ['integer id', 'Order 42 could not be charged', 'Order 918273 could not be charged'],
    ['email', 'Mailbox unavailable for alice@example.com', 'Mailbox unavailable for bob.smith+crm@mail.acme.co.uk'],
    ['url path and query', 'Webhook https://hooks.slack.com/services/T01/B02/abc returned 500', 'Webhook https://hooks.slack.com/services/T09/B77/xyz?retry=1 returned 503'],
    ['ipv4 and port', 'connect ECONNREFUSED 10.0.3.17:5432', 'connect ECONNREFUSED 192.168.1.20:6543'],
    ['ipv6 vs ipv4', 'connect ECONNREFUSED ::1:5432', 'connect ECONNREFUSED 127.0.0.1:5432'],
    ['iso timestamp', 'Scheduled run at 2025-07-25T14:01:00Z was skipped', 'Scheduled run at 2025-08-01T09:30:12.345+02:00 was skipped'],
    ['time of day', 'Cron tick 14:01:00 missed', 'Cron tick 03:15:59 missed'],
    ['durations', 'Retry after 3.5s (waited 4232ms)', 'Retry after 10 min (waited 18 ms)'],
    ['hex object ids', 'Cast to ObjectId failed for value 507f1f77bcf86cd799439011', 'Cast to ObjectId failed for value 5f8d0d55b54764421b7156c3'],
    ['pointer', 'Segmentation fault at 0x7ffd5fbff8ac', 'Segmentation fault at 0x0000560d3c1e'],
    ['single-quoted value', "Unknown column 'email' in 'field list'", "Unknown column 'phone_number' in 'where clause'"],
    ['double-quoted value', 'Property "Status" is not a property that exists', 'Property "Due date" is not a property that exists'],
    ['floats', 'Confidence 0.87 below threshold 0.9', 'Confidence 0.12 below threshold 0.5'],
    ['tokens', 'Invalid API key sk_live_51HqLy2KZvKYlo2C8abcDEF123', 'Invalid API key sk_live_99XyZ8wvUTsr7Q6pOnM5lk4J'],
    ['sizes', 'Attachment of 25MB exceeds the limit', 'Attachment of 5.5 MB exceeds the limit'],
    ['http date', 'Token expired at Fri, 25 Jul 2025 14:01:00 GMT', 'Token expired at Mon, 01 Sep 2025 08:00:00 GMT'],
    ['whitespace', 'Rate limit exceeded:   120 requests\n in 60 seconds', 'Rate limit exceeded: 45 requests in 1 minute'],
    ['python repr', "HTTPSConnectionPool(host='api.openai.com', port=443): Read timed out. (read timeout=600)", "HTTPSConnectionPool(host='api.openai.com', port=8443): Read timed out. (read timeout=30)"],
  ];

  it.each(sameMessage)('same group: %s', (_name, a, b) => {
    expect(fingerprintOf(ev({ message: a }))).toBe(fingerprintOf(ev({ message: b })));
  });

  const nodeAt = (fn: string, file: string, line: number, col: number): string => `    at ${fn} (${file}:${line}:${col})`;
  const nodeStack = (msg: string, frames: string[]): string => [`Error: ${msg}`, ...frames].join('\n');

  const sameStack: [string, string, string][] = [
    [
      'node: different line and column numbers',
      nodeStack('User 42 not found', [nodeAt('getUser', '/app/src/users.js', 42, 17), nodeAt('route', '/app/src/api.js', 10, 5)]),
      nodeStack('User 7 not found', [nodeAt('getUser', '/app/src/users.js', 45, 9), nodeAt('route', '/app/src/api.js', 12, 3)]),
    ],
    [
      'node: different node_modules / internal frames in between',
      nodeStack('boom', [
        nodeAt('getUser', '/app/src/users.js', 42, 17),
        nodeAt('Layer.handle [as handle_request]', '/app/node_modules/express/lib/router/layer.js', 95, 5),
        nodeAt('route', '/app/src/api.js', 10, 5),
        nodeAt('process.processTicksAndRejections', 'node:internal/process/task_queues', 95, 5),
      ]),
      nodeStack('boom', [
        nodeAt('getUser', '/app/src/users.js', 42, 17),
        nodeAt('next', '/app/node_modules/.pnpm/express@5.1.0/node_modules/express/lib/router/index.js', 280, 10),
        nodeAt('route', '/app/src/api.js', 10, 5),
      ]),
    ],
    [
      'node: another deploy directory, file:// URLs, async markers, bundle hash',
      nodeStack('x', [nodeAt('async run', 'file:///srv/releases/41/dist/main.3f9a1b2c.js', 1, 2020), nodeAt('start', '/srv/releases/41/dist/main.3f9a1b2c.js', 1, 99)]),
      nodeStack('x', [nodeAt('run', 'file:///srv/releases/42/dist/main.8e7d6c5b.js', 1, 3120), nodeAt('start', '/srv/releases/42/dist/main.8e7d6c5b.js', 1, 150)]),
    ],
    [
      'python: different line numbers and site-packages frames',
      PYTHON_STACK,
      sub(sub(sub(PYTHON_STACK, 'line 88', 'line 90'), 'line 41', 'line 44'),
        '/usr/local/lib/python3.11/site-packages/requests/api.py", line 115, in post',
        '/usr/local/lib/python3.12/site-packages/httpx/_client.py", line 1001, in send'),
    ],
    [
      'java: different line numbers, lambda addresses and "... n more"',
      JAVA_STACK,
      sub(
        sub(sub(sub(JAVA_STACK, 'FlowExecutor.java:118', 'FlowExecutor.java:121'), '$$Lambda$14/0x0000000800066840', '$$Lambda$97/0x00000008001a2c40'),
          '$$a1b2c3d4', '$$99ffee01'),
        '... 12 more', '... 14 more',
      ),
    ],
  ];

  it.each(sameStack)('same group: %s', (_name, a, b) => {
    expect(normalizeStack(a).length).toBeGreaterThan(0);
    expect(fingerprintOf(ev({ stack: a }))).toBe(fingerprintOf(ev({ stack: b })));
  });

  it('with a stack, the message and engine/platform do not split the group', () => {
    const a = fingerprintOf(ev({ message: 'token expired', engine: 'execution', stack: NODE_STACK }));
    const b = fingerprintOf(ev({ message: 'something else 42', engine: 'gateway', platform: 'slack', stack: NODE_STACK }));
    expect(a).toBe(b);
  });

  // ---- different problem -> different group --------------------------------------------------

  const base = 'Timeout after 4232 ms calling https://api.notion.com/v1/pages/9f1c…';
  const differentMessage: [string, FingerprintInput, FingerprintInput][] = [
    ['issue example', ev({ message: 'token expired' }), ev({ message: 'rate limited' })],
    ['different error_type', ev({ error_type: 'TimeoutError', message: base }), ev({ error_type: 'AbortError', message: base })],
    ['different engine', ev({ engine: 'execution', message: base }), ev({ engine: 'gateway', message: base })],
    ['different platform', ev({ platform: 'notion', message: base }), ev({ platform: 'slack', message: base })],
    ['different API host', ev({ message: base }), ev({ message: 'Timeout after 4232 ms calling https://api.airtable.com/v0/appX/tbl' })],
    ['different words', ev({ message: base }), ev({ message: 'Timeout after 4232 ms connecting to https://api.notion.com/v1/pages/9f1c…' })],
    ['not found vs not authorized', ev({ message: 'User 42 not found' }), ev({ message: 'User 42 not authorized' })],
    ['placeholder kind matters', ev({ message: 'Retry after 30s' }), ev({ message: 'Retry after 30' })],
  ];

  it.each(differentMessage)('different group: %s', (_name, a, b) => {
    expect(fingerprintOf(a)).not.toBe(fingerprintOf(b));
  });

  const differentStack: [string, string, string, string?][] = [
    [
      'node: different top function',
      nodeStack('boom', [nodeAt('getUser', '/app/src/users.js', 42, 17), nodeAt('route', '/app/src/api.js', 10, 5)]),
      nodeStack('boom', [nodeAt('getFlow', '/app/src/users.js', 42, 17), nodeAt('route', '/app/src/api.js', 10, 5)]),
    ],
    [
      'node: same function name in another file',
      nodeStack('boom', [nodeAt('handle', '/app/src/notion.js', 42, 17)]),
      nodeStack('boom', [nodeAt('handle', '/app/src/slack.js', 42, 17)]),
    ],
    ['python: different innermost function', PYTHON_STACK, sub(PYTHON_STACK, 'in <lambda>', 'in serialize')],
    ['java: different method', JAVA_STACK, sub(JAVA_STACK, 'FlowExecutor.execute(', 'FlowExecutor.executeStep(')],
    ['same stack, different error_type', NODE_STACK, NODE_STACK, 'RangeError'],
  ];

  it.each(differentStack)('different group: %s', (_name, a, b, otherType) => {
    const fa = fingerprintOf(ev({ error_type: 'TypeError', stack: a }));
    const fb = fingerprintOf(ev({ error_type: otherType ?? 'TypeError', stack: b }));
    expect(fa).not.toBe(fb);
  });
});
