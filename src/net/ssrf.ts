/**
 * SSRF guard, pure part: classifying IP addresses (no I/O, no DNS). The download stage uses it on
 * URL hosts that are IP literals before connecting, and on every address a host name resolves to,
 * at connect time (so DNS rebinding cannot slip a private address in after a check).
 */

/** What an address is. Everything except `public` is refused unless private targets are allowed. */
export type AddressClass =
  | 'public'
  | 'loopback' // 127/8, ::1
  | 'private' // 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7, fec0::/10
  | 'link-local' // 169.254/16, fe80::/10
  | 'multicast' // 224/4, ff00::/8
  | 'unspecified' // 0/8, ::
  | 'reserved' // documentation, benchmarking, 240/4, broadcast, Teredo, discard, IPv4-compatible ::/96
  | 'invalid'; // not an IP address

/** Parses dotted-quad IPv4 (exactly four decimal parts 0..255) into a 32-bit unsigned number. */
export function parseIPv4(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v;
}

/**
 * Parses an IPv6 address (with `::` compression, an optional dotted IPv4 tail, an optional zone
 * `%eth0`, optional surrounding brackets) into eight 16-bit groups.
 */
export function parseIPv6(input: string): number[] | undefined {
  let s = input;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (s.length === 0 || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (lastColon < 0) return undefined;
  if (s.includes('.')) {
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = [v4 >>> 16, v4 & 0xffff];
    // `::ffff:1.2.3.4` → `::ffff`; `::1.2.3.4` → `::`; `1:2:3:4:5:6:1.2.3.4` → `1:2:3:4:5:6`
    s = s.slice(0, lastColon + 1);
    if (!s.endsWith('::')) s = s.slice(0, -1);
  }
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return undefined;
  const parseGroups = (t: string): number[] | undefined => {
    if (t === '') return [];
    const out: number[] = [];
    for (const g of t.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const want = 8 - tail.length;
  let groups: number[];
  if (dbl >= 0) {
    const head = parseGroups(s.slice(0, dbl));
    const rest = parseGroups(s.slice(dbl + 2));
    if (!head || !rest || head.length + rest.length > want - 1) return undefined;
    groups = [...head, ...new Array<number>(want - head.length - rest.length).fill(0), ...rest];
  } else {
    const all = parseGroups(s);
    if (!all || all.length !== want) return undefined;
    groups = all;
  }
  return [...groups, ...tail];
}

function inV4(v: number, base: string, bits: number): boolean {
  const b = parseIPv4(base) as number;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((v & mask) >>> 0) === ((b & mask) >>> 0);
}

function classifyV4(v: number): AddressClass {
  if (inV4(v, '0.0.0.0', 8)) return 'unspecified';
  if (inV4(v, '127.0.0.0', 8)) return 'loopback';
  if (inV4(v, '10.0.0.0', 8) || inV4(v, '172.16.0.0', 12) || inV4(v, '192.168.0.0', 16) || inV4(v, '100.64.0.0', 10)) return 'private';
  if (inV4(v, '169.254.0.0', 16)) return 'link-local';
  if (inV4(v, '224.0.0.0', 4)) return 'multicast';
  if (
    inV4(v, '240.0.0.0', 4) || // reserved + 255.255.255.255 broadcast
    inV4(v, '192.0.0.0', 24) || // IETF protocol assignments
    inV4(v, '192.0.2.0', 24) ||
    inV4(v, '198.51.100.0', 24) ||
    inV4(v, '203.0.113.0', 24) || // documentation
    inV4(v, '198.18.0.0', 15) || // benchmarking
    inV4(v, '192.88.99.0', 24) // 6to4 relay anycast
  ) {
    return 'reserved';
  }
  return 'public';
}

function classifyV6(g: number[]): AddressClass {
  const v4of = (hi: number, lo: number): number => ((hi << 16) >>> 0) + lo;
  const zeroUpTo = (n: number): boolean => g.slice(0, n).every((x) => x === 0);
  if (g.every((x) => x === 0)) return 'unspecified';
  if (zeroUpTo(7) && g[7] === 1) return 'loopback';
  if (zeroUpTo(5) && g[5] === 0xffff) return classifyV4(v4of(g[6], g[7])); // ::ffff:a.b.c.d
  if (zeroUpTo(4) && g[4] === 0xffff && g[5] === 0) return classifyV4(v4of(g[6], g[7])); // ::ffff:0:a.b.c.d (SIIT)
  if (zeroUpTo(6)) return 'reserved'; // IPv4-compatible ::a.b.c.d (deprecated)
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return classifyV4(v4of(g[6], g[7])); // NAT64
  if (g[0] === 0x2002) return classifyV4(v4of(g[1], g[2])); // 6to4 embeds an IPv4 address
  if ((g[0] & 0xfe00) === 0xfc00) return 'private'; // fc00::/7 unique local
  if ((g[0] & 0xffc0) === 0xfe80) return 'link-local';
  if ((g[0] & 0xffc0) === 0xfec0) return 'private'; // site-local (deprecated)
  if ((g[0] & 0xff00) === 0xff00) return 'multicast';
  if (g[0] === 0x2001 && g[1] === 0x0db8) return 'reserved'; // documentation
  if (g[0] === 0x2001 && g[1] === 0) return 'reserved'; // Teredo: embeds an obfuscated IPv4 address
  if (g[0] === 0x0100 && g[1] === 0 && g[2] === 0 && g[3] === 0) return 'reserved'; // discard-only
  return 'public';
}

/**
 * Classifies an IP address string (IPv4 dotted quad, or IPv6 in any textual form, with or without
 * brackets or zone). IPv4-mapped (`::ffff:10.0.0.1`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`)
 * addresses are classified by the IPv4 address they carry. Returns `invalid` for anything else.
 */
export function classifyAddress(ip: string): AddressClass {
  const v4 = parseIPv4(ip);
  if (v4 !== undefined) return classifyV4(v4);
  const v6 = parseIPv6(ip);
  if (v6 !== undefined) return classifyV6(v6);
  return 'invalid';
}

/** True when an address must not be contacted without `allowPrivate` (anything but `public`). */
export function isBlockedAddress(ip: string): boolean {
  return classifyAddress(ip) !== 'public';
}

/** True when a URL host (as `URL.hostname` gives it, IPv6 in brackets) is an IP literal. */
export function isIpLiteral(hostname: string): boolean {
  return parseIPv4(hostname) !== undefined || parseIPv6(hostname) !== undefined;
}

/** URL schemes the downloader may fetch. */
export const ALLOWED_SCHEMES: ReadonlySet<string> = new Set(['http:', 'https:']);
