import { describe, expect, it } from 'vitest';
import { normalize, type EventRow } from '../event.js';
import { Redactor, compileRedactor } from './redact.js';

// Fake credentials are assembled from pieces so that secret scanners do not flag this file.
const j = (...parts: string[]): string => parts.join('');
const A36 = 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8';
const SLACK_BOT = j('xox', 'b-', '123456789012-1234567890123-', 'AbCdEfGhIjKlMnOpQrStUvWx');
const JWT = j('eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9', '.', 'eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ', '.', 'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c');
const PEM = j('-----BEGIN RSA ', 'PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq0example\nAbCdEf0123+/==\n-----END RSA ', 'PRIVATE KEY-----');

const redactor = new Redactor();

/** [description, input, expected] */
const REDACTED_CASES: [string, string, string][] = [
  ['Vault engine: slack token stays searchable', `access failed for token ${SLACK_BOT}`, 'access failed for token [REDACTED:slack_token]'],
  ['short slack token from the brief', j('access failed for token xox', 'b-123-456-abc'), 'access failed for token [REDACTED:slack_token]'],
  ['slack user token', j('posting with xox', 'p-1234-5678-abcdef failed'), 'posting with [REDACTED:slack_token] failed'],
  ['slack app token', j('socket mode xapp', '-1-A0123-4567-abcdef0123'), 'socket mode [REDACTED:slack_token]'],
  ['slack webhook keeps the host', j('POST https://hooks.slack.com/services/', 'T0000000/B0000000/XXXXXXXXXXXXXXXXXXXXXXXX', ' returned 404'), 'POST https://hooks.slack.com/services/[REDACTED:slack_webhook] returned 404'],
  ['bearer token in a header', 'Authorization: Bearer abc.def', 'Authorization: Bearer [REDACTED:bearer_token]'],
  ['bearer token inline', 'calling api with Bearer 9f8e7d6c5b4a3', 'calling api with Bearer [REDACTED:bearer_token]'],
  ['word-like bearer token after Authorization', 'Authorization: Bearer sometoken', 'Authorization: Bearer [REDACTED:bearer_token]'],
  ['basic auth header', 'Authorization: Basic dXNlcjpwYXNzd29yZA==', 'Authorization: Basic [REDACTED:basic_auth]'],
  ['basic credentials inline', 'sent Basic YWRtaW46aHVudGVyMg== to proxy', 'sent Basic [REDACTED:basic_auth] to proxy'],
  ['JWT', `session ${JWT} rejected`, 'session [REDACTED:jwt] rejected'],
  ['JWT after Bearer is reported once', `Authorization: Bearer ${JWT}`, 'Authorization: Bearer [REDACTED:jwt]'],
  ['GitHub classic token', j('clone with gh', 'p_', A36, ' failed'), 'clone with [REDACTED:github_token] failed'],
  ['GitHub app token', j('gh', 's_', A36), '[REDACTED:github_token]'],
  ['GitHub fine-grained token', j('github', '_pat_', '11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789'), '[REDACTED:github_token]'],
  ['AWS access key id', j('using AK', 'IAIOSFODNN7EXAMPLE for s3'), 'using [REDACTED:aws_access_key] for s3'],
  ['AWS session key id', j('AS', 'IAY34FZKBOKMUTVV7A'), '[REDACTED:aws_access_key]'],
  ['AWS secret access key', 'aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'aws_secret_access_key=[REDACTED:aws_secret_key]'],
  ['Stripe live secret key', j('stripe error for sk', '_live_', '4eC39HqLyjWDarjtT1zdp7dc'), 'stripe error for [REDACTED:stripe_key]'],
  ['Stripe test and restricted keys', j('sk', '_test_51Habcdefgh0123 rk', '_live_51Habcdefgh0123'), '[REDACTED:stripe_key] [REDACTED:stripe_key]'],
  ['Google API key', j('maps AI', 'zaSyD-abcdefghijklmnopqrstuvwxyz01234 quota'), 'maps [REDACTED:google_api_key] quota'],
  ['OpenAI key', j('openai 401 for sk', '-proj-abcDEF123456ghiJKL789012mnoPQR'), 'openai 401 for [REDACTED:openai_key]'],
  ['npm token', j('npm', '_', A36, ' expired'), '[REDACTED:npm_token] expired'],
  ['SendGrid key', j('S', 'G.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg'), '[REDACTED:sendgrid_key]'],
  ['Notion secret', j('notion secret', '_', 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG'), 'notion [REDACTED:secret_token]'],
  ['Twilio API key', j('twilio S', 'K0123456789abcdef0123456789abcdef'), 'twilio [REDACTED:twilio_key]'],
  ['password=value', 'login failed password=hunter2 user=bob', 'login failed password=[REDACTED:password] user=bob'],
  ['env-style upper case', 'DB_PASSWORD=abc123 DB_USER=app', 'DB_PASSWORD=[REDACTED:password] DB_USER=app'],
  ['YAML-style pwd and passwd', 'pwd: s3cret!\npasswd: other', 'pwd: [REDACTED:password]\npasswd: [REDACTED:password]'],
  ['client_secret and refresh_token in a query string', '/oauth?client_secret=abc123&refresh_token=r-456&scope=read', '/oauth?client_secret=[REDACTED:secret]&refresh_token=[REDACTED:token]&scope=read'],
  ['generic api_key and apikey', 'api_key=k-123 apikey: 998877', 'api_key=[REDACTED:api_key] apikey: [REDACTED:api_key]'],
  ['header X-Api-Key', 'X-Api-Key: 12345abcdef', 'X-Api-Key: [REDACTED:api_key]'],
  ['JSON password', '{"user":"bob","password":"hunter2","n":1}', '{"user":"bob","password":"[REDACTED:password]","n":1}'],
  ['JSON with escaped quote in value', '{"secret": "a\\"b", "ok": true}', '{"secret": "[REDACTED:secret]", "ok": true}'],
  ['JSON nested in a string (escaped)', 'body={\\"access_token\\":\\"at-123\\"}', 'body={\\"access_token\\":\\"[REDACTED:token]\\"}'],
  ['JSON number value', '{"token": 123456789}', '{"token": [REDACTED:token]}'],
  ['cookie header runs to the line end', 'Cookie: sid=abc123; theme=dark\nHost: x', 'Cookie: [REDACTED:cookie]\nHost: x'],
  ['URL user-info password', 'connect postgres://admin:s3cr3t@db.internal:5432/app failed', 'connect postgres://admin:[REDACTED:url_password]@db.internal:5432/app failed'],
  ['URL with empty user', 'redis://:hunter2@cache:6379', 'redis://:[REDACTED:url_password]@cache:6379'],
  ['Visa card with spaces', 'charge 4111 1111 1111 1111 declined', 'charge [REDACTED:credit_card] declined'],
  ['Mastercard with dashes', 'card=5555-5555-5555-4444', 'card=[REDACTED:credit_card]'],
  ['Amex grouped 4-6-5', 'amex 3782 822463 10005 on file', 'amex [REDACTED:credit_card] on file'],
  ['Amex and Visa plain', 'amex 378282246310005 visa 4012888888881881', 'amex [REDACTED:credit_card] visa [REDACTED:credit_card]'],
  ['PEM private key', `key loaded: ${PEM} (rsa)`, 'key loaded: [REDACTED:private_key] (rsa)'],
  ['truncated PEM private key', j('-----BEGIN ', 'PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC'), '[REDACTED:private_key]'],
  ['several secrets in one message', `user=bob password=x1 token ${SLACK_BOT} card 4111111111111111`, 'user=bob password=[REDACTED:password] token [REDACTED:slack_token] card [REDACTED:credit_card]'],
];

const UNCHANGED_CASES: [string, string][] = [
  ['plain text', 'request completed in 123 ms'],
  ['error text around tokens', 'failed to refresh token: connection reset by peer'],
  ['prose about bearer tokens', 'Bearer token expired, please log in again'],
  ['basic as a word', 'basic authentication failed for user bob'],
  ['auth-param, not a token', 'WWW-Authenticate: Bearer realm="example"'],
  ['UUID', 'trace 550e8400-e29b-41d4-a716-446655440000 finished'],
  ['UUID whose leading groups are digits that pass Luhn', 'GET /api/v1/flows/50668122-8741-7339-a0e8-8ea14f7ade3f returned 200'],
  ['digits grouped unlike a card', 'ref 4111-11111111-1111 and 411 1111 1111 1111 1'],
  ['UUIDv7 and trace id', 'id 01890a5d-ac96-774b-bcce-b302099a8057 span 4bf92f3577b34da6a3ce929d0e0e4736'],
  ['digits failing Luhn', 'card 4111 1111 1111 1112 rejected, ref 4111111111111112'],
  ['epoch milliseconds', 'ts=1721916060000 deadline 1721916065123'],
  ['ISO timestamps', '2025-07-25T14:01:00.123Z to 2025-07-25 14:01:05'],
  ['float digits', 'score 0.30000000000000004 ratio 4.111111111111111'],
  ['phone number with +', 'sms to +49 1512 3456789 sent'],
  ['tokenizer and token_count', 'tokenizer loaded, token_count=42 max_tokens: 4096'],
  ['short hex ids', 'commit deadbeef build 3f2a9c01 sha 9fceb02d0ae598e95dc970b74767f19372d61af8'],
  ['URL with a port but no user-info', 'GET http://example.com:8080/path?x=1 200'],
  ['placeholders are not secrets', 'password=*** token=null secret: true'],
  ['already redacted text', 'token [REDACTED:slack_token] and password=[REDACTED:password]'],
  ['sk- words that are not keys', 'installed sk-learn-compatible-estimator-wrapper'],
  ['task ids', 'task-1234567890123 queued'],
  ['empty', ''],
];

describe('Redactor.redactText', () => {
  it.each(REDACTED_CASES)('redacts: %s', (_name, input, expected) => {
    expect(redactor.redactText(input)).toBe(expected);
  });

  it.each(UNCHANGED_CASES)('keeps: %s', (_name, input) => {
    expect(redactor.redactText(input)).toBe(input);
  });

  it('is idempotent', () => {
    for (const [, input] of REDACTED_CASES) {
      const once = redactor.redactText(input);
      expect(redactor.redactText(once)).toBe(once);
    }
  });

  it('redacts the same token at every occurrence, so fingerprints are stable', () => {
    const a = redactor.redactText(j('access failed for token xox', 'b-111-222-aaaaaa'));
    const b = redactor.redactText(j('access failed for token xox', 'b-333-444-bbbbbb'));
    expect(a).toBe(b);
  });
});

/** A stored row as normalize() builds it (so new EventRow fields need no fixture update), then overrides. */
function row(partial: Partial<EventRow> = {}): EventRow {
  const res = normalize({ project_id: 'p1', engine: 'vault', status: 'failed' }, Date.now());
  if (!res.ok) throw new Error('fixture event does not normalize');
  return { ...res.row, attr_keys: [], attr_values: [], ...partial };
}

describe('secret key names in text', () => {
  const keys = [
    'password', 'passwd', 'pwd', 'passphrase', 'secret', 'client_secret', 'clientSecret', 'secret_key',
    'secretKey', 'token', 'access_token', 'refresh_token', 'id_token', 'auth_token', 'session_token',
    'api_token', 'jwt', 'bearer', 'authorization', 'Authorization', 'apikey', 'api_key', 'api-key', 'apiKey',
    'access_key', 'accesskey', 'private_key', 'privateKey', 'signing_key', 'encryption_key', 'master_key',
    'cookie', 'set-cookie', 'credential', 'credentials', 'password_confirmation', 'password2',
    'token_value', 'DB_PASSWORD', 'SLACK_BOT_TOKEN', 'x-api-key',
  ];
  it.each(keys)('%s=… and "%s": "…" are redacted', (key) => {
    for (const text of [`${key}=v4lue-123 next`, `{"${key}": "v4lue-123"}`, `${key}: v4lue-123`]) {
      const out = redactor.redactText(text);
      expect(out, text).toContain('[REDACTED:');
      expect(out, text).not.toContain('v4lue');
    }
  });
});

describe('hot-path filter', () => {
  // The character scan must let through everything the rules would change: compare against
  // running the rules unconditionally on every sample embedded in random surroundings.
  const unfiltered = redactor as unknown as { applyBuiltins(s: string): string };
  const pieces = [
    ...REDACTED_CASES.map((c) => c[1]), ...UNCHANGED_CASES.map((c) => c[1]),
    ' ', ':', '=', '"', '-', '_', '.', '@', 'x', 'A', 'S', 'K', '4111', '1111', 'a\n', 'Bearer', 'basic',
  ];
  let seed = 42;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  it('never skips a string the rules would redact', () => {
    for (let i = 0; i < 3000; i++) {
      let s = '';
      const parts = 1 + rand(4);
      for (let k = 0; k < parts; k++) s += pieces[rand(pieces.length)];
      const expected = unfiltered.applyBuiltins(s);
      expect(redactor.redactText(s), JSON.stringify(s)).toBe(expected);
    }
  });
});

describe('Redactor.redactRow', () => {
  it('covers every text field (user_id, session_id, action, attribute keys …), leaving id, project_id, trace and span ids', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl';
    const r = row({
      id: 'evt-1', user_id: `u ${jwt}`, session_id: `password=hunter2`, flow_id: `flow ${SLACK_BOT}`, action: `send token=abc123`,
      platform: `Slack ${SLACK_BOT}`, engine: `exec ${SLACK_BOT}`, triggered_by: `by ${SLACK_BOT}`, status: `err ${SLACK_BOT}`,
      severity: `high ${SLACK_BOT}`, event_type: `log ${SLACK_BOT}`, trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      attr_keys: [`Bearer ${jwt}`, 'plain'], attr_values: ['x', 'y'],
    });
    expect(redactor.redactRow(r)).toBe(11);
    expect(r.user_id).toBe('u [REDACTED:jwt]');
    expect(r.session_id).toBe('password=[REDACTED:password]');
    expect(r.action).toBe('send token=[REDACTED:token]');
    for (const f of ['flow_id', 'platform', 'engine', 'triggered_by', 'status', 'severity', 'event_type'] as const) expect(r[f]).toContain('[REDACTED:slack_token]');
    expect(r.attr_keys[0]).toMatch(/^Bearer \[REDACTED:/);
    expect(r.attr_keys[1]).toBe('plain');
    expect(r.id).toBe('evt-1');
    expect(r.trace_id).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('redacts message, stack, error_type and attribute text, counting each secret', () => {
    const r = row({
      message: `access failed for token ${SLACK_BOT}`,
      stack: 'Error: boom\n    at connect (postgres://app:pw123@db/app)',
      error_type: 'AuthError password=hunter2',
      attr_keys: ['http.url', 'region'],
      attr_values: ['https://api.example.com/v1?access_token=abc123', 'eu-west-1'],
    });
    expect(redactor.redactRow(r)).toBe(4);
    expect(r.message).toBe('access failed for token [REDACTED:slack_token]');
    expect(r.stack).toBe('Error: boom\n    at connect (postgres://app:[REDACTED:url_password]@db/app)');
    expect(r.error_type).toBe('AuthError password=[REDACTED:password]');
    expect(r.attr_values).toEqual(['https://api.example.com/v1?access_token=[REDACTED:token]', 'eu-west-1']);
    expect(r.attr_keys).toEqual(['http.url', 'region']);
  });

  it('replaces whole values of attributes whose key names a secret', () => {
    const keys = [
      'password', 'db_passwd', 'client_secret', 'slackToken', 'x_api_key', 'X-Api-Key', 'apikey',
      'Authorization', 'set-cookie', 'cookie', 'session_token', 'private_key', 'credentials',
      'access_key', 'password_confirmation', 'APIKey', 'http.request.header.authorization',
    ];
    const r = row({ attr_keys: keys, attr_values: keys.map((k) => `value of ${k}`) });
    expect(redactor.redactRow(r)).toBe(keys.length);
    expect(r.attr_values.every((v) => v === '[REDACTED:attribute]')).toBe(true);
  });

  it('keeps attributes whose key only resembles a secret', () => {
    const keys = [
      'token_count', 'max_tokens', 'prompt_tokens', 'tokenizer', 'token_type', 'api_key_id',
      'access_key_id', 'secretary', 'passport', 'keyboard', 'author', 'password_reset_url',
    ];
    const values = keys.map((k) => `plain ${k}`);
    const r = row({ attr_keys: keys, attr_values: [...values] });
    expect(redactor.redactRow(r)).toBe(0);
    expect(r.attr_values).toEqual(values);
  });

  it('does not count flags or empty values of secret attributes', () => {
    const r = row({ attr_keys: ['has_token', 'password', 'secret'], attr_values: ['true', '', 'null'] });
    expect(redactor.redactRow(r)).toBe(0);
    expect(r.attr_values).toEqual(['true', '', 'null']);
  });

  it('leaves a clean row untouched (same string instances)', () => {
    const message = 'GET /api/v1/flows/42 returned 200 in 12 ms';
    const r = row({ message, attr_keys: ['http.status', 'trace'], attr_values: ['200', '4bf92f3577b34da6a3ce929d0e0e4736'] });
    const values = r.attr_values;
    expect(redactor.redactRow(r)).toBe(0);
    expect(r.message).toBe(message);
    expect(r.attr_values).toBe(values);
  });
});

describe('per-project rules', () => {
  it('applies extra patterns with their name as the kind', () => {
    const r = compileRedactor({
      patterns: [
        { name: 'puraify_key', regex: 'pk_[a-z0-9]{16}' },
        { name: 'employee_id', regex: 'emp-\\d{6}', flags: 'i' },
      ],
    });
    expect(r.redactText('key pk_0123456789abcdef for EMP-123456')).toBe('key [REDACTED:puraify_key] for [REDACTED:employee_id]');
    const ev = row({ message: 'emp-000001 and emp-000002' });
    expect(r.redactRow(ev)).toBe(2);
    // the built-ins still apply
    expect(r.redactText('password=x1')).toBe('password=[REDACTED:password]');
  });

  it('finds an anchored pattern in any one field, as if each were tested alone', () => {
    const r = compileRedactor({ patterns: [{ name: 'badge', regex: '^B-[0-9]{4}$' }] });
    const ev = row({ message: 'lookup', user_id: 'B-1234', attr_keys: ['badge', 'other'], attr_values: ['B-9876', 'x B-1111'] });
    expect(r.redactRow(ev)).toBe(2);
    expect(ev.user_id).toBe('[REDACTED:badge]');
    expect(ev.attr_values).toEqual(['[REDACTED:badge]', 'x B-1111']);
    const none = row({ message: 'no badge here B-12345' });
    expect(r.redactRow(none)).toBe(0);
  });

  it('applies extra secret keys to attributes and key=value text', () => {
    const r = compileRedactor({ secretKeys: ['ssn', 'customer_pin'] });
    const ev = row({
      message: 'lookup ssn=123-45-6789 customerPin: 9876',
      attr_keys: ['user_ssn', 'CustomerPin', 'ssn_count'],
      attr_values: ['123-45-6789', '1234', '3'],
    });
    expect(r.redactRow(ev)).toBe(4);
    expect(ev.message).toBe('lookup ssn=[REDACTED:ssn] customerPin: [REDACTED:customer_pin]');
    expect(ev.attr_values).toEqual(['[REDACTED:attribute]', '[REDACTED:attribute]', '3']);
    // the default redactor does not know these keys
    expect(redactor.redactText('ssn=123-45-6789')).toBe('ssn=123-45-6789');
  });

  it('rejects a bad regex with a message naming the pattern', () => {
    expect(() => compileRedactor({ patterns: [{ name: 'broken', regex: '(unclosed' }] })).toThrow(/redaction pattern "broken": .*does not compile/);
    // RE2 has no lookaround or backreferences
    expect(() => compileRedactor({ patterns: [{ name: 'behind', regex: '(?<=pin )\\d+' }] })).toThrow(/"behind".*does not compile/);
    expect(() => compileRedactor({ patterns: [{ name: 'ok', regex: 'x' }, { name: 'back', regex: '(a)\\1' }] })).toThrow(
      expect.objectContaining({ field: 'redaction.patterns.1.regex' }));
    expect(() => compileRedactor({ patterns: [{ name: 'empty', regex: 'x*' }] })).toThrow(/"empty".*empty string/);
    expect(() => compileRedactor({ patterns: [{ name: 'sticky', regex: 'x', flags: 'y' }] })).toThrow(/"sticky": unsupported flags/);
    expect(() => compileRedactor({ patterns: [{ name: 'bad name!', regex: 'x' }] })).toThrow(/"bad name!": name must be/);
    expect(() => compileRedactor({ secretKeys: [''] })).toThrow(/secret key/);
  });
});

describe('per-project patterns run in linear time', () => {
  // on a backtracking engine these take ~1 s at 27 characters and double with each one more
  it.each([['(a|a)+$'], ['(.*a){12}$'], ['(a+)+b'], ['(x+x+)+y']])('%s is accepted and stays fast on hostile text', (regex) => {
    const r = compileRedactor({ patterns: [{ name: 'evil', regex }] });
    for (const input of ['a'.repeat(40) + '!', 'a'.repeat(10_000) + '!', 'x'.repeat(5000)]) {
      const t0 = performance.now();
      r.redactText(input);
      expect(performance.now() - t0).toBeLessThan(200);
    }
    expect(r.redactText('aaab')).not.toBe(undefined);
  });
});

describe('adversarial input', () => {
  // ~100 KB strings built to make backtracking regexes blow up; linear patterns finish in milliseconds.
  const N = 100_000;
  const cases: [string, string][] = [
    ['jwt-like run', 'eyJ-'.repeat(N / 4)],
    ['jwt parts without a signature dot', `${'eyJa.'.repeat(N / 5)}`],
    ['key run', `password${'a'.repeat(N)}`],
    ['many keys without values', 'token='.repeat(N / 6)],
    ['unclosed JSON quotes', '"secret":"'.repeat(N / 10)],
    ['digits and spaces', '4 '.repeat(N / 2)],
    ['long digit run', '4'.repeat(N)],
    ['url without @', `https://u:${'p:'.repeat(N / 2)}`],
    ['bearer with a long token before a quote', `Bearer ${'a'.repeat(N)}"`],
    ['slack-like run', 'xoxb-'.repeat(N / 5)],
    ['long digit key before a colon', `token${'1'.repeat(N)}: x`],
    ['long suffix chain before an equals sign', `token${'_value'.repeat(N / 6)}=x`],
    ['many colons', 'a:'.repeat(N / 2)],
    ['many unterminated PEM headers', '-----BEGIN RSA PRIVATE KEY----- '.repeat(N / 32)],
  ];
  it.each(cases)('%s stays fast', (_name, input) => {
    const t0 = performance.now();
    redactor.redactText(input);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
