import { bitsOf, canonicalIp, formatCidr, formatIp, parseCidr } from '../../ipam/addr.ts';

/**
 * CHECK's route comparison, pure: the routes prevResult lists against the routes the kernel shows
 * on the pod's interface (`ip [-6] -j route show dev <if>`), IPv4 and IPv6 alike.
 */

export interface WantedRoute {
  readonly dst: string;
  readonly gw?: string | undefined;
}

export interface KernelRoute {
  readonly dst: string;
  readonly gateway?: string | undefined;
}

/**
 * A destination as iproute2 spells it: `default` for /0, a host route (/32, /128) without its
 * prefix, addresses in canonical form (RFC 5952 for IPv6), so `fd00:0::/64` matches `fd00::/64`.
 */
export function routeDst(dst: string): string {
  if (dst === 'default') return dst;
  const c = parseCidr(dst);
  if (!c.ok) return canonicalIp(dst) ?? dst;
  if (c.cidr.prefix === 0) return 'default';
  if (c.cidr.prefix === bitsOf(c.cidr.family)) return formatIp(c.cidr.family, c.cidr.base);
  return formatCidr(c.cidr);
}

const gateway = (gw: string) => canonicalIp(gw) ?? gw;

/**
 * The routes of `family` in `want` that `have` lacks (same destination and, when one is wanted,
 * the same gateway). Routes of the other family are not this interface's concern here: CHECK
 * reads the kernel's routes of the allocated address's family.
 */
export function missingRoutes(
  want: readonly WantedRoute[],
  have: readonly KernelRoute[],
  family: 4 | 6,
): WantedRoute[] {
  const kernel = have.map((k) => ({
    dst: routeDst(k.dst),
    gateway: k.gateway === undefined ? undefined : gateway(k.gateway),
  }));
  return want.filter((r) => {
    if (familyOf(r.dst) !== family) return false;
    const dst = routeDst(r.dst);
    const gw = r.gw === undefined ? undefined : gateway(r.gw);
    return !kernel.some((k) => k.dst === dst && (gw === undefined || k.gateway === gw));
  });
}

const familyOf = (dst: string): 4 | 6 => (dst.includes(':') ? 6 : 4);
