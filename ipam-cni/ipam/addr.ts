/**
 * IP addresses and CIDRs as bigints: one arithmetic for IPv4 and IPv6, and no string comparison
 * anywhere an order matters. Text is parsed strictly and formatted canonically (RFC 5952 for v6),
 * so one address has one spelling — store keys depend on that.
 */

export type Family = 4 | 6;

export interface Addr {
  readonly family: Family;
  readonly value: bigint;
}

/** A network: `base` has no host bits set. */
export interface Cidr {
  readonly family: Family;
  readonly base: bigint;
  readonly prefix: number;
}

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseV4(text: string): bigint | undefined {
  const m = V4.exec(text);
  if (!m) return undefined;
  let value = 0n;
  for (const part of m.slice(1)) {
    // Leading zeros are refused: "010" is octal to some tools and decimal to others.
    if (part.length > 1 && part.startsWith('0')) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

function parseGroups(text: string): bigint[] | undefined {
  if (text === '') return [];
  const groups: bigint[] = [];
  const parts = text.split(':');
  for (const [i, part] of parts.entries()) {
    if (i === parts.length - 1 && part.includes('.')) {
      const v4 = parseV4(part);
      if (v4 === undefined) return undefined;
      groups.push(v4 >> 16n, v4 & 0xffffn);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
      groups.push(BigInt(`0x${part}`));
    } else {
      return undefined;
    }
  }
  return groups;
}

function parseV6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0] ?? '');
  const tail = halves.length === 2 ? parseGroups(halves[1] ?? '') : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...Array<bigint>(missing).fill(0n), ...tail];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

export function parseIp(text: string): Addr | undefined {
  if (typeof text !== 'string') return undefined;
  const v4 = parseV4(text);
  if (v4 !== undefined) return { family: 4, value: v4 };
  if (!text.includes(':')) return undefined;
  const v6 = parseV6(text);
  return v6 === undefined ? undefined : { family: 6, value: v6 };
}

export function formatIp(family: Family, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  }
  const groups = Array.from({ length: 8 }, (_, i) => (value >> BigInt(112 - 16 * i)) & 0xffffn);
  // RFC 5952: the longest run of two or more zero groups becomes "::" (the first one on a tie).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0n) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0n) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (gs: bigint[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

export const formatAddr = (a: Addr): string => formatIp(a.family, a.value);

/** The canonical spelling of an address, or undefined when it is not one. */
export function canonicalIp(text: string): string | undefined {
  const a = parseIp(text);
  return a && formatAddr(a);
}

export const hostMask = (family: Family, prefix: number): bigint =>
  (1n << BigInt(bitsOf(family) - prefix)) - 1n;

export type CidrParse = { ok: true; cidr: Cidr } | { ok: false; reason: string };

/**
 * "10.0.0.0/24" or "fd00::/64". Host bits must be zero: "10.0.0.1/24" is refused with the network
 * it probably meant, rather than silently becoming 10.0.0.0/24.
 */
export function parseCidr(text: string): CidrParse {
  const m = typeof text === 'string' ? /^([^/]+)\/(\d{1,3})$/.exec(text) : null;
  const addr = m ? parseIp(m[1] ?? '') : undefined;
  if (!m || !addr) return { ok: false, reason: 'expected a CIDR like 10.0.0.0/24 or fd00::/64' };
  const prefix = Number(m[2]);
  if (prefix > bitsOf(addr.family)) {
    return { ok: false, reason: `prefix length /${prefix} is longer than ${bitsOf(addr.family)} bits` };
  }
  const mask = hostMask(addr.family, prefix);
  if ((addr.value & mask) !== 0n) {
    const base = formatIp(addr.family, addr.value & ~mask);
    return { ok: false, reason: `host bits are set; the network is ${base}/${prefix}` };
  }
  return { ok: true, cidr: { family: addr.family, base: addr.value, prefix } };
}

export const formatCidr = (c: Cidr): string => `${formatIp(c.family, c.base)}/${c.prefix}`;

export const lastOf = (c: Cidr): bigint => c.base | hostMask(c.family, c.prefix);

export const sizeOf = (c: Cidr): bigint => hostMask(c.family, c.prefix) + 1n;

export const cidrContains = (c: Cidr, value: bigint): boolean => value >= c.base && value <= lastOf(c);

/** The aligned network of `prefix` bits that holds `value`. */
export const networkOf = (family: Family, value: bigint, prefix: number): Cidr => ({
  family,
  base: value & ~hostMask(family, prefix),
  prefix,
});

export const cidrsOverlap = (a: Cidr, b: Cidr): boolean =>
  a.family === b.family && a.base <= lastOf(b) && b.base <= lastOf(a);
