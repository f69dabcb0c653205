import { NodewardError } from '../../../shared/errors.ts';
import { bitsOf, canonicalIp, formatCidr, formatIp, parseCidr } from '../../ipam/addr.ts';
import { handleKey } from '../../ipam/keys.ts';
import { handleRecordSchema, parseRecord } from '../../ipam/records.ts';
import { IpError } from '../../net/exec.ts';
import { hostVethName } from '../../net/names.ts';
import { readContainerSide } from '../../net/veth.ts';
import type { CniRequest } from '../protocol.ts';
import { isIpamOnly, parseNetConf, versionOf } from './conf.ts';
import type { VerbContext } from './handler-deps.ts';
import type { CniResult } from './result.ts';

/**
 * CHECK: the attachment is as its prevResult says — the address allocated to it, and (unless IPAM
 * only) the pod's interface up with that MAC, addresses and routes, and the host end present.
 * While a DEL of the attachment waits for its teardown, it fails.
 */
export async function checkAttachment(ctx: VerbContext, req: CniRequest): Promise<void> {
  const conf = parseNetConf(req.config);
  versionOf(conf);
  const failed = (msg: string) => new NodewardError('CNI_CHECK_FAILED', msg);
  if (ctx.teardowns.has(req.containerID, req.ifName)) {
    throw failed(`${req.containerID}/${req.ifName} was deleted; its teardown is pending`);
  }
  const prev = conf.prevResult as Partial<CniResult> | undefined;
  if (!prev || !Array.isArray(prev.ips)) {
    throw new NodewardError('CNI_CONFIG_INVALID', 'CHECK needs prevResult with ips');
  }
  const hKey = handleKey(req.containerID, req.ifName);
  const handle = (await ctx.deps.store.get([hKey])).get(hKey);
  if (!handle) throw failed(`no address is allocated to ${req.containerID}/${req.ifName}`);
  const held = parseRecord(handleRecordSchema, handle).ip;
  const prevIps = prev.ips.map((i) => i.address.split('/')[0]);
  if (!prevIps.includes(held))
    throw failed(`the allocated address ${held} is not in prevResult (${prevIps.join(', ')})`);
  if (isIpamOnly(conf)) return;

  const family = held.includes(':') ? 6 : 4;
  const state = await readContainerSide(req.netns, req.ifName, family);
  if (!state.link) throw failed(`interface ${req.ifName} is missing in ${req.netns}`);
  if (!state.link.flags?.includes('UP')) throw failed(`interface ${req.ifName} is down`);
  const prevIf = prev.interfaces?.find((i) => i.sandbox !== undefined && i.name === req.ifName);
  if (prevIf && state.link.address !== prevIf.mac) {
    throw failed(`interface ${req.ifName} has MAC ${state.link.address}, prevResult says ${prevIf.mac}`);
  }
  const have = new Set((state.link.addr_info ?? []).map((x) => `${x.local}/${x.prefixlen}`));
  for (const ip of prev.ips) {
    if (!have.has(ip.address)) throw failed(`address ${ip.address} is missing on ${req.ifName}`);
  }
  const [missing] = missingRoutes(prev.routes ?? [], state.routes, family);
  if (missing) {
    throw failed(`route ${missing.dst}${missing.gw ? ` via ${missing.gw}` : ''} is missing on ${req.ifName}`);
  }
  const hostName = hostVethName(req.containerID, req.ifName);
  const hostSide = await ctx.deps.host.ip([['link', 'show', 'dev', hostName]]).catch((err: unknown) => {
    if (err instanceof IpError && err.notFound) return undefined;
    throw err;
  });
  if (hostSide === undefined) throw failed(`host end ${hostName} of ${req.ifName} is missing`);
}

// The route comparison, pure: the routes prevResult lists against the routes the kernel shows on
// the pod's interface (`ip [-6] -j route show dev <if>`), IPv4 and IPv6 alike.

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
