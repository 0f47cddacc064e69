// CIDR sets for trust decisions (trusted proxies, allow lists): IPv4, IPv6, and IPv4-mapped IPv6 matching IPv4 ranges.

export interface CidrSet {
  /** False for anything that is not an IP address. `::ffff:1.2.3.4` matches `1.2.3.0/24` and vice versa. */
  contains(ip: string): boolean;
}

/** Scratch for parsed IPv6 words: parsing on the request path allocates nothing. */
const WORDS = new Uint32Array(4);
const GROUPS = new Uint16Array(8);

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x57 : -1;
}

/** Dotted quad in s[from..to) as an unsigned 32-bit number, or -1. No leading zeros (octal ambiguity). */
function parseIPv4(s: string, from: number, to: number): number {
  let value = 0;
  let parts = 0;
  let i = from;
  while (parts < 4) {
    const start = i;
    let octet = 0;
    for (; i < to; i++) {
      const d = s.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) break;
      octet = octet * 10 + d;
    }
    const len = i - start;
    if (len === 0 || len > 3 || octet > 255 || (len > 1 && s.charCodeAt(start) === 0x30)) return -1;
    value = value * 256 + octet;
    parts++;
    if (parts < 4) {
      if (i >= to || s.charCodeAt(i) !== 0x2e) return -1;
      i++;
    }
  }
  return i === to ? value : -1;
}

/** IPv6 text in s[from..to) into WORDS; false when malformed. Embedded IPv4 tail allowed. */
function parseIPv6(s: string, from: number, to: number): boolean {
  let n = 0;
  let gap = -1;
  let i = from;
  if (s.charCodeAt(i) === 0x3a) {
    if (s.charCodeAt(i + 1) !== 0x3a) return false;
    gap = 0;
    i += 2;
  }
  while (i < to) {
    const start = i;
    let g = 0;
    for (; i < to && i - start < 5; i++) {
      const d = hexDigit(s.charCodeAt(i));
      if (d < 0) break;
      g = (g << 4) | d;
    }
    if (i < to && s.charCodeAt(i) === 0x2e) { // IPv4 tail: the last 32 bits
      const v4 = n <= 6 ? parseIPv4(s, start, to) : -1;
      if (v4 < 0) return false;
      GROUPS[n++] = v4 >>> 16;
      GROUPS[n++] = v4 & 0xffff;
      i = to;
      break;
    }
    if (i === start || i - start > 4 || n === 8) return false;
    GROUPS[n++] = g;
    if (i === to) break;
    if (s.charCodeAt(i) !== 0x3a) return false;
    i++;
    if (s.charCodeAt(i) === 0x3a) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === to) return false;
  }
  if (gap < 0 ? n !== 8 : n > 7) return false;
  const shift = 8 - n;
  for (let k = 7; k >= 0; k--) {
    const src = gap < 0 || k < gap ? k : k - shift;
    GROUPS[k] = gap >= 0 && k >= gap && k < gap + shift ? 0 : GROUPS[src];
  }
  for (let w = 0; w < 4; w++) WORDS[w] = ((GROUPS[2 * w] << 16) | GROUPS[2 * w + 1]) >>> 0;
  return true;
}

function maskBits(bits: number): number {
  if (bits <= 0) return 0;
  return bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

interface Parsed { v4: number; prefix: number }

/** `addr` or `addr/prefix`; v4 >= 0 for IPv4, -1 for IPv6 (then WORDS holds it); undefined when invalid. */
function parseCidr(s: string): Parsed | undefined {
  const slash = s.indexOf('/');
  const end = slash < 0 ? s.length : slash;
  let prefix = -1;
  if (slash >= 0) {
    const len = s.length - slash - 1;
    if (len < 1 || len > 3 || (len > 1 && s.charCodeAt(slash + 1) === 0x30)) return undefined;
    prefix = 0;
    for (let i = slash + 1; i < s.length; i++) {
      const d = s.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) return undefined;
      prefix = prefix * 10 + d;
    }
  }
  if (s.indexOf(':') < 0) {
    const v4 = parseIPv4(s, 0, end);
    if (v4 < 0 || prefix > 32) return undefined;
    return { v4, prefix: prefix < 0 ? 32 : prefix };
  }
  if (!parseIPv6(s, 0, end) || prefix > 128) return undefined;
  return { v4: -1, prefix: prefix < 0 ? 128 : prefix };
}

/** `10.0.0.0/8`, `2001:db8::/32`, `::ffff:10.0.0.0/104`, or a bare address (a /32 or /128). Host bits may be set. */
export function isValidCidr(s: string): boolean {
  return parseCidr(s) !== undefined;
}

function matchV6(v6: Uint32Array): boolean {
  for (let e = 0; e < v6.length; e += 8) {
    if (((WORDS[0] & v6[e + 4]) >>> 0) === v6[e] && ((WORDS[1] & v6[e + 5]) >>> 0) === v6[e + 1] &&
      ((WORDS[2] & v6[e + 6]) >>> 0) === v6[e + 2] && ((WORDS[3] & v6[e + 7]) >>> 0) === v6[e + 3]) return true;
  }
  return false;
}

function matchV4(v4: Uint32Array, ip: number): boolean {
  for (let e = 0; e < v4.length; e += 2) if (((ip & v4[e + 1]) >>> 0) === v4[e]) return true;
  return false;
}

/** Compiles once (config load); throws RangeError on an invalid entry, which validation should have caught. */
export function compileCidrs(list: readonly string[]): CidrSet {
  const v4: number[] = [];
  const v6: number[] = [];
  for (const s of list) {
    const p = parseCidr(s);
    if (p === undefined) throw new RangeError(`invalid CIDR ${JSON.stringify(s)}`);
    if (p.v4 >= 0) {
      const mask = maskBits(p.prefix);
      v4.push((p.v4 & mask) >>> 0, mask);
    } else {
      const masks = [0, 1, 2, 3].map((w) => maskBits(p.prefix - 32 * w));
      v6.push(...masks.map((m, w) => (WORDS[w] & m) >>> 0), ...masks);
    }
  }
  const nets4 = Uint32Array.from(v4);
  const nets6 = Uint32Array.from(v6);
  const has6 = nets6.length > 0;
  // The common edge case, no trusted proxies: answer without parsing the address.
  if (list.length === 0) return { contains: () => false };
  return {
    contains(ip: string): boolean {
      if (ip.indexOf(':') < 0) {
        const a = parseIPv4(ip, 0, ip.length);
        if (a < 0) return false;
        if (matchV4(nets4, a)) return true;
        if (!has6) return false;
        WORDS[0] = WORDS[1] = 0;
        WORDS[2] = 0xffff;
        WORDS[3] = a;
        return matchV6(nets6);
      }
      const zone = ip.indexOf('%'); // fe80::1%eth0: the zone does not change which range the address is in
      if (!parseIPv6(ip, 0, zone < 0 ? ip.length : zone)) return false;
      if (WORDS[0] === 0 && WORDS[1] === 0 && WORDS[2] === 0xffff && matchV4(nets4, WORDS[3])) return true;
      return has6 && matchV6(nets6);
    },
  };
}
