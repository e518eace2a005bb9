// Outbound-request guard (SSRF): alert channels and forwarding targets post to URLs (and SMTP hosts)
// that tenants configure, so when they are saved and before each delivery the target is checked:
// http(s) only, and, unless private targets are allowed, no loopback, link-local, private, CGNAT,
// unspecified, multicast, reserved or cloud-metadata address, neither as a literal nor among the
// addresses the host name resolves to.
//
// The name is resolved once, here; the sender then connects to the address that was checked
// (`pinned`: HTTP through a custom `lookup`, SMTP as nodemailer's host; Host and TLS SNI kept), so
// a DNS-rebinding server cannot answer differently the second time. Redirects are never followed
// by the senders (see webhook.ts), so a public URL cannot bounce the request to an internal one.
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';

/** The address a checked host name resolved to: the request must connect to it, not resolve again. */
export interface PinnedAddress {
  address: string;
  family: 4 | 6;
}

export type GuardResult =
  | { ok: true; /** set when a host name was resolved and checked */ pinned?: PinnedAddress }
  | { ok: false; reason: string; /** the refusal may clear up by itself (DNS failure) */ transient?: boolean };

/** Ports fetch() refuses to connect to (WHATWG Fetch "bad port" list); a config naming one can never work. */
const FETCH_BAD_PORTS = new Set([
  0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109,
  110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531,
  532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060,
  5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/** Host names refused without resolving them. */
const BLOCKED_HOST_NAMES = new Set(['localhost', 'metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal']);

/**
 * Synchronous shape check for schema-level validation: parses, http/https only, a host, no
 * credentials in the URL, no port fetch() would refuse. Does not look at the address.
 */
export function checkUrlSyntax(url: string): GuardResult {
  if (typeof url !== 'string' || url.length === 0) return { ok: false, reason: 'URL is empty' };
  if (url.length > 2048) return { ok: false, reason: 'URL is longer than 2048 characters' };
  if (/[\s\x00-\x1f\x7f]/.test(url)) return { ok: false, reason: 'URL contains whitespace or control characters' };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { ok: false, reason: 'URL does not parse' };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { ok: false, reason: `scheme ${u.protocol.replace(/:$/, '')} is not allowed (http or https only)` };
  if (!u.hostname) return { ok: false, reason: 'URL has no host' };
  if (u.username || u.password) return { ok: false, reason: 'credentials in the URL are not allowed (use headers)' };
  if (u.port !== '' && FETCH_BAD_PORTS.has(Number(u.port))) return { ok: false, reason: `port ${u.port} is blocked for HTTP requests` };
  return { ok: true };
}

/**
 * Full check before a request: syntax, then (unless allowPrivate) the literal address or every
 * address the host name resolves to must be public.
 */
export async function checkOutboundUrl(url: string, allowPrivate: boolean): Promise<GuardResult> {
  const syntax = checkUrlSyntax(url);
  if (!syntax.ok) return syntax;
  return checkOutboundHost(new URL(url).hostname, allowPrivate);
}

/** The address part of checkOutboundUrl, also used for SMTP hosts. `host` may be a bracketed IPv6 literal. */
export async function checkOutboundHost(host: string, allowPrivate: boolean): Promise<GuardResult> {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (!h) return { ok: false, reason: 'no host' };
  if (allowPrivate) return { ok: true };

  if (isIP(h)) {
    const why = blockedAddressReason(h);
    return why ? { ok: false, reason: `address ${h} is ${why}` } : { ok: true };
  }
  if (BLOCKED_HOST_NAMES.has(h) || h.endsWith('.localhost')) return { ok: false, reason: `host ${h} is a local or metadata name` };

  let addrs: { address: string; family: number }[];
  try {
    addrs = await dns.lookup(h, { all: true, verbatim: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, reason: `cannot resolve ${h} (${code})`, transient: code !== 'ENOTFOUND' };
  }
  if (addrs.length === 0) return { ok: false, reason: `${h} resolves to no address`, transient: true };
  for (const a of addrs) {
    const why = blockedAddressReason(a.address);
    if (why) return { ok: false, reason: `${h} resolves to ${a.address}, which is ${why}` };
  }
  return { ok: true, pinned: { address: addrs[0].address, family: addrs[0].family === 6 ? 6 : 4 } };
}

// ---- address classification ---------------------------------------------------------------

type Range4 = [base: number, bits: number, label: string];
type Range6 = [base: bigint, bits: number, label: string];

const V4_RANGES: Range4[] = [
  r4('0.0.0.0', 8, 'unspecified / "this network"'),
  r4('10.0.0.0', 8, 'private'),
  r4('100.64.0.0', 10, 'carrier-grade NAT (CGNAT)'),
  r4('127.0.0.0', 8, 'loopback'),
  r4('169.254.0.0', 16, 'link-local (incl. cloud metadata)'),
  r4('172.16.0.0', 12, 'private'),
  r4('192.0.0.0', 24, 'IETF protocol assignments'),
  r4('192.0.2.0', 24, 'documentation (TEST-NET-1)'),
  r4('192.88.99.0', 24, '6to4 relay anycast'),
  r4('192.168.0.0', 16, 'private'),
  r4('198.18.0.0', 15, 'benchmarking'),
  r4('198.51.100.0', 24, 'documentation (TEST-NET-2)'),
  r4('203.0.113.0', 24, 'documentation (TEST-NET-3)'),
  r4('224.0.0.0', 4, 'multicast'),
  r4('240.0.0.0', 4, 'reserved / broadcast'),
];

const V6_RANGES: Range6[] = [
  r6('::', 128, 'unspecified'),
  r6('::1', 128, 'loopback'),
  r6('100::', 64, 'discard-only'),
  r6('2001:db8::', 32, 'documentation'),
  r6('2001::', 32, 'Teredo'),
  r6('fc00::', 7, 'unique-local (private)'),
  r6('fe80::', 10, 'link-local'),
  r6('fec0::', 10, 'site-local'),
  r6('ff00::', 8, 'multicast'),
];

/** IPv6 prefixes that embed an IPv4 address in their low 32 bits (or, for 6to4, bits 16..48). */
const V6_EMBEDDING_V4: Range6[] = [
  r6('::ffff:0:0', 96, 'IPv4-mapped'),
  r6('::', 96, 'IPv4-compatible'),
  r6('64:ff9b::', 96, 'NAT64'),
  r6('64:ff9b:1::', 48, 'local NAT64'),
];
const SIX_TO_FOUR = r6('2002::', 16, '6to4');

/** Why an IP literal must not be contacted, or null when it is a public unicast address. */
export function blockedAddressReason(address: string): string | null {
  const a = address.replace(/%.*$/, ''); // zone id
  const fam = isIP(a);
  if (fam === 4) {
    const v = parseIPv4(a);
    if (v === null) return 'not a valid IPv4 address';
    return v4Reason(v);
  }
  if (fam === 6) {
    const v = parseIPv6(a);
    if (v === null) return 'not a valid IPv6 address';
    for (const [base, bits, label] of V6_EMBEDDING_V4) {
      if (inRange6(v, base, bits)) {
        if (label === 'local NAT64') return label;
        const embedded = Number(v & 0xffffffffn);
        if (label === 'IPv4-compatible' && embedded <= 1) break; // :: and ::1 are handled below
        const why = v4Reason(embedded);
        return why ? `${label} ${formatIPv4(embedded)} (${why})` : null;
      }
    }
    if (inRange6(v, SIX_TO_FOUR[0], SIX_TO_FOUR[1])) {
      const embedded = Number((v >> 80n) & 0xffffffffn);
      const why = v4Reason(embedded);
      return why ? `6to4 for ${formatIPv4(embedded)} (${why})` : null;
    }
    for (const [base, bits, label] of V6_RANGES) if (inRange6(v, base, bits)) return label;
    return null;
  }
  return 'not an IP address';
}

function v4Reason(v: number): string | null {
  for (const [base, bits, label] of V4_RANGES) {
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if (((v & mask) >>> 0) === base) return label;
  }
  return null;
}

function inRange6(v: bigint, base: bigint, bits: number): boolean {
  const shift = BigInt(128 - bits);
  return v >> shift === base >> shift;
}

function parseIPv4(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = v * 256 + n;
  }
  return v >>> 0;
}

function formatIPv4(v: number): string {
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

function parseIPv6(s: string): bigint | null {
  let str = s.toLowerCase();
  // a trailing dotted quad becomes two hextets
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(str);
  if (m) {
    const v4 = parseIPv4(m[2]);
    if (v4 === null) return null;
    str = `${m[1]}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = str.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  let groups: string[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return null;
    groups = [...head, ...Array<string>(fill).fill('0'), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return null;
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  return v;
}

function r4(addr: string, bits: number, label: string): Range4 {
  const v = parseIPv4(addr);
  if (v === null) throw new Error(`bad range ${addr}`);
  return [v, bits, label];
}

function r6(addr: string, bits: number, label: string): Range6 {
  const v = parseIPv6(addr);
  if (v === null) throw new Error(`bad range ${addr}`);
  return [v, bits, label];
}
