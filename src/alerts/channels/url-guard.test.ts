import { describe, expect, it } from 'vitest';
import { blockedAddressReason, checkOutboundHost, checkOutboundUrl, checkUrlSyntax } from './url-guard.js';

// Only IP literals, `localhost`-style and metadata names appear here: nothing needs external DNS.
const REFUSED: [url: string, reason: RegExp][] = [
  ['http://127.0.0.1/', /loopback/],
  ['http://127.1.2.3:8080/x', /loopback/],
  ['http://2130706433/', /loopback/], // decimal form, normalised by the URL parser
  ['http://0x7f.0.0.1/', /loopback/],
  ['http://localhost/', /local/],
  ['http://LOCALHOST.:3000/', /local/],
  ['http://api.localhost/', /local/],
  ['http://[::1]/', /loopback/],
  ['http://[::ffff:127.0.0.1]/', /IPv4-mapped 127\.0\.0\.1 \(loopback\)/],
  ['http://[::ffff:7f00:1]/', /IPv4-mapped/],
  ['http://[::ffff:169.254.169.254]/', /link-local/],
  ['http://[::127.0.0.1]/', /loopback/],
  ['http://[64:ff9b::a9fe:a9fe]/', /NAT64 169\.254\.169\.254/],
  ['http://[2002:7f00:1::]/', /6to4/],
  ['http://[::]/', /unspecified/],
  ['http://[fe80::1]/', /link-local/],
  ['http://[febf:ffff::1]/', /link-local/],
  ['http://[fd00:ec2::254]/', /unique-local/],
  ['http://[fc00::1]/', /unique-local/],
  ['http://[ff02::1]/', /multicast/],
  ['http://169.254.169.254/latest/meta-data/', /link-local/],
  ['http://metadata.google.internal/computeMetadata/v1/', /metadata/],
  ['http://100.100.100.200/', /CGNAT/],
  ['http://100.64.0.1/', /CGNAT/],
  ['http://100.127.255.255/', /CGNAT/],
  ['http://10.0.0.1/', /private/],
  ['http://172.16.5.4/', /private/],
  ['http://172.31.255.255/', /private/],
  ['http://192.168.1.1/', /private/],
  ['http://0.0.0.0/', /unspecified/],
  ['http://0/', /unspecified/],
  ['http://224.0.0.1/', /multicast/],
  ['http://255.255.255.255/', /reserved/],
  ['ftp://example.com/file', /scheme ftp/],
  ['file:///etc/passwd', /scheme file/],
  ['javascript:alert(1)', /scheme javascript/],
  ['gopher://127.0.0.1:70/', /scheme gopher/],
  ['not a url', /whitespace|parse/],
  ['http//missing-colon', /parse/],
  ['', /empty/],
  ['http://user:pw@8.8.8.8/', /credentials/],
  ['http://8.8.8.8:25/', /port 25/],
];

const ALLOWED = [
  'http://8.8.8.8/',
  'https://1.1.1.1:8443/hook?x=1',
  'http://[2606:4700:4700::1111]/',
  'http://[::ffff:8.8.8.8]/',
  'http://172.32.0.1/',
  'http://172.15.255.255/',
  'http://100.128.0.1/',
  'http://192.169.0.1/',
  'HTTPS://9.9.9.9/',
];

describe('checkOutboundUrl (allowPrivate = false)', () => {
  it.each(REFUSED)('refuses %s', async (url, reason) => {
    const r = await checkOutboundUrl(url, false);
    expect(r.ok).toBe(false);
    expect(r.ok === false && r.reason).toMatch(reason);
  });
  it.each(ALLOWED)('allows %s', async (url) => {
    expect(await checkOutboundUrl(url, false)).toEqual({ ok: true });
  });
});

describe('checkOutboundUrl (allowPrivate = true)', () => {
  it.each(['http://127.0.0.1:3000/hook', 'http://localhost/', 'http://[::1]:8080/', 'http://10.1.2.3/', 'http://169.254.169.254/'])(
    'allows %s',
    async (url) => {
      expect(await checkOutboundUrl(url, true)).toEqual({ ok: true });
    },
  );
  it.each(['ftp://127.0.0.1/', 'garbage', 'file:///etc/passwd'])('still refuses bad syntax %s', async (url) => {
    expect((await checkOutboundUrl(url, true)).ok).toBe(false);
  });
});

describe('checkUrlSyntax / checkOutboundHost / blockedAddressReason', () => {
  it('checks shape only', () => {
    expect(checkUrlSyntax('http://127.0.0.1/')).toEqual({ ok: true });
    expect(checkUrlSyntax('https://hooks.slack.com/services/T/B/X')).toEqual({ ok: true });
    expect(checkUrlSyntax('https://')).toMatchObject({ ok: false });
    expect(checkUrlSyntax('mailto:a@b.c')).toMatchObject({ ok: false });
    expect(checkUrlSyntax(`https://x.test/${'a'.repeat(3000)}`)).toMatchObject({ ok: false });
    expect(checkUrlSyntax('https://x.test/a\nb')).toMatchObject({ ok: false });
  });
  it('checks SMTP-style hosts', async () => {
    expect(await checkOutboundHost('127.0.0.1', false)).toMatchObject({ ok: false });
    expect(await checkOutboundHost('[::1]', false)).toMatchObject({ ok: false });
    expect(await checkOutboundHost('localhost', false)).toMatchObject({ ok: false });
    expect(await checkOutboundHost('8.8.4.4', false)).toEqual({ ok: true });
    expect(await checkOutboundHost('127.0.0.1', true)).toEqual({ ok: true });
  });
  it('classifies literals', () => {
    expect(blockedAddressReason('8.8.8.8')).toBeNull();
    expect(blockedAddressReason('2001:4860:4860::8888')).toBeNull();
    expect(blockedAddressReason('fe80::1%eth0')).toMatch(/link-local/);
    expect(blockedAddressReason('::ffff:10.0.0.1')).toMatch(/private/);
    expect(blockedAddressReason('192.0.2.10')).toMatch(/documentation/);
    expect(blockedAddressReason('example.com')).toMatch(/not an IP/);
  });
});
