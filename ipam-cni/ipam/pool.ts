import { z } from 'zod';
import { formatIssues, shown } from '../../shared/config/index.ts';
import { NodewardError } from '../../shared/errors.ts';
import {
  type Cidr,
  cidrContains,
  cidrsOverlap,
  type Family,
  formatCidr,
  formatIp,
  lastOf,
  parseCidr,
  parseIp,
} from './addr.ts';
import { count, type Interval, intersect, normalize, subtract } from './intervals.ts';
import { labelSelectorSchema } from './selector.ts';

/**
 * An address pool: what an operator writes (`poolSpecSchema`, validated with the field path of
 * every problem) and what the allocator uses (`Pool`: the usable addresses as intervals).
 */

const POOL_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Blocks hold at most 2^12 addresses: a node lists a whole block to find a free address. */
export const MAX_BLOCK_HOST_BITS = 12;
/** Block prefix lengths used when a pool does not set one (and its CIDR is larger). */
export const DEFAULT_BLOCK_PREFIX: Readonly<Record<Family, number>> = { 4: 26, 6: 122 };

const ip = () =>
  z.string().refine((s) => parseIp(s) !== undefined, {
    error: (issue) => `expected an IPv4 or IPv6 address, got ${shown(issue.input)}`,
  });

const cidr = () =>
  z.string().superRefine((s, ctx) => {
    const r = parseCidr(s);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: `${r.reason}, got ${shown(s)}` });
  });

const ipOrCidr = () =>
  z.string().superRefine((s, ctx) => {
    if (parseIp(s)) return;
    const r = parseCidr(s);
    if (!r.ok)
      ctx.addIssue({
        code: 'custom',
        message: `expected an address or a CIDR: ${r.reason}, got ${shown(s)}`,
      });
  });

const segmentSchema = z
  .strictObject({
    mode: z
      .enum(['vlan', 'vxlan', 'none'])
      .describe('vlan: 802.1Q subinterface of the uplink; vxlan: a VXLAN device; none: bridge only.'),
    id: z.int().optional().describe('VLAN id (1-4094) or VXLAN VNI (1-16777215); none for mode none.'),
  })
  .superRefine((s, ctx) => {
    const limits = { vlan: [1, 4094], vxlan: [1, 16_777_215] } as const;
    if (s.mode === 'none') {
      if (s.id !== undefined)
        ctx.addIssue({ code: 'custom', path: ['id'], message: 'mode none takes no id; remove it' });
      return;
    }
    const [min, max] = limits[s.mode];
    if (s.id === undefined || s.id < min || s.id > max) {
      ctx.addIssue({
        code: 'custom',
        path: ['id'],
        message: `mode ${s.mode} needs an id in ${min}..${max}, got ${s.id ?? 'none'}`,
      });
    }
  });

export const poolSpecSchema = z
  .strictObject({
    name: z.string().regex(POOL_NAME, {
      error: (issue) =>
        `expected a lowercase DNS label (a-z, 0-9, "-", at most 63 characters), got ${shown(issue.input)}`,
    }),
    cidr: cidr().describe('The subnet, e.g. 10.20.0.0/22 or fd00:20::/64; host bits must be zero.'),
    gateway: ip().optional().describe('The router on the segment; never handed out.'),
    nodeGateway: z
      .boolean()
      .optional()
      .describe(
        "Every node holds the gateway address on the segment's bridge (the same address and MAC on each node: an anycast gateway), so the node reaches its own pods (the kubelet's probes come from the host) and pods route through their node. Default: on for vxlan and none segments that have a gateway, off for vlan (the data-centre router is the gateway there) and for pools with allowOverlap (two overlapping pools on one node would give it two routes to one subnet: turn it on for at most one of them).",
      ),
    segment: segmentSchema.prefault({ mode: 'none' }).describe('The L2 segment the pool lives on.'),
    ranges: z
      .array(z.strictObject({ start: ip(), end: ip() }))
      .optional()
      .describe('Addresses handed out (inclusive); default: the whole CIDR.'),
    exclude: z.array(ipOrCidr()).default([]).describe('Addresses or CIDRs never handed out.'),
    routes: z
      .array(z.strictObject({ dst: cidr(), gw: ip().optional() }))
      .default([])
      .describe('Routes given to pods.'),
    dns: z
      .strictObject({
        nameservers: z.array(ip()).default([]),
        domain: z.string().optional(),
        search: z.array(z.string()).default([]),
        options: z.array(z.string()).default([]),
      })
      .optional()
      .describe('DNS settings returned in the CNI result.'),
    blockSize: z
      .int()
      .optional()
      .describe('Prefix length of the per-node blocks (default /26 for IPv4, /122 for IPv6).'),
    nodeSelector: labelSelectorSchema.optional().describe('Nodes that may use the pool (default: all).'),
    namespaceSelector: labelSelectorSchema
      .optional()
      .describe('Namespaces whose pods may use the pool (default: all).'),
    allowOverlap: z
      .boolean()
      .default(false)
      .describe(
        'Allow this pool to overlap pools on other segments (the same address may then exist twice).',
      ),
  })
  .superRefine((spec, ctx) => {
    const parsed = parseCidr(spec.cidr);
    if (!parsed.ok) return; // reported by the field itself
    const net = parsed.cidr;
    const bits = net.family === 4 ? 32 : 128;
    const inside = (text: string, path: (string | number)[]) => {
      const a = parseIp(text);
      if (!a) return;
      if (a.family !== net.family) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `${text} is IPv${a.family}, the pool is IPv${net.family}`,
        });
      } else if (!cidrContains(net, a.value)) {
        ctx.addIssue({ code: 'custom', path, message: `${text} is outside ${spec.cidr}` });
      }
    };
    if (spec.nodeGateway === true && spec.gateway === undefined) {
      ctx.addIssue({ code: 'custom', path: ['nodeGateway'], message: 'nodeGateway needs a gateway address' });
    }
    if (spec.gateway !== undefined) {
      inside(spec.gateway, ['gateway']);
      const g = parseIp(spec.gateway);
      if (g && g.family === net.family && hasNetworkAddress(net) && g.value === net.base) {
        ctx.addIssue({
          code: 'custom',
          path: ['gateway'],
          message: `${spec.gateway} is the network address`,
        });
      }
      if (g && g.family === net.family && hasBroadcastAddress(net) && g.value === lastOf(net)) {
        ctx.addIssue({
          code: 'custom',
          path: ['gateway'],
          message: `${spec.gateway} is the broadcast address`,
        });
      }
    }
    for (const [i, r] of (spec.ranges ?? []).entries()) {
      inside(r.start, ['ranges', i, 'start']);
      inside(r.end, ['ranges', i, 'end']);
      const a = parseIp(r.start);
      const b = parseIp(r.end);
      if (a && b && a.family === b.family && a.value > b.value) {
        ctx.addIssue({
          code: 'custom',
          path: ['ranges', i],
          message: `start ${r.start} is after end ${r.end}`,
        });
      }
    }
    if (spec.ranges?.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['ranges'],
        message: 'an empty list hands out nothing; omit it for the whole CIDR',
      });
    }
    for (const [i, e] of spec.exclude.entries()) {
      const a = parseIp(e);
      const c = parseCidr(e);
      const family = a?.family ?? (c.ok ? c.cidr.family : undefined);
      if (family !== undefined && family !== net.family) {
        ctx.addIssue({
          code: 'custom',
          path: ['exclude', i],
          message: `${e} is IPv${family}, the pool is IPv${net.family}`,
        });
      } else if (c.ok && !cidrsOverlap(c.cidr, net)) {
        ctx.addIssue({ code: 'custom', path: ['exclude', i], message: `${e} does not overlap ${spec.cidr}` });
      } else if (a) {
        inside(e, ['exclude', i]);
      }
    }
    for (const [i, r] of spec.routes.entries()) {
      const d = parseCidr(r.dst);
      if (d.ok && d.cidr.family !== net.family) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'dst'],
          message: `${r.dst} is IPv${d.cidr.family}, the pool is IPv${net.family}`,
        });
      }
      if (r.gw !== undefined) inside(r.gw, ['routes', i, 'gw']);
    }
    if (spec.blockSize !== undefined) {
      const min = Math.max(net.prefix, bits - MAX_BLOCK_HOST_BITS);
      if (spec.blockSize < min || spec.blockSize > bits) {
        const why =
          spec.blockSize < net.prefix
            ? `a block cannot be larger than the pool (/${net.prefix})`
            : spec.blockSize > bits
              ? `IPv${net.family} has ${bits} bits`
              : `blocks hold at most ${2 ** MAX_BLOCK_HOST_BITS} addresses`;
        ctx.addIssue({
          code: 'custom',
          path: ['blockSize'],
          message: `expected a prefix length in ${min}..${bits}, got ${spec.blockSize} (${why})`,
        });
      }
    }
  });

export type PoolSpecInput = z.input<typeof poolSpecSchema>;
export type PoolSpec = z.output<typeof poolSpecSchema>;

/** What the allocator needs to know about a pool, computed once from its spec. */
export interface Pool {
  readonly spec: PoolSpec;
  readonly name: string;
  readonly cidr: Cidr;
  readonly family: Family;
  readonly gateway: bigint | undefined;
  /** Prefix length of the pool's blocks. */
  readonly blockPrefix: number;
  /** Every address the pool may hand out, as sorted disjoint intervals. */
  readonly usable: readonly Interval[];
  readonly size: bigint;
}

/** IPv4 networks up to /30 reserve their first address; /31 and /32 use every address (RFC 3021). */
function hasNetworkAddress(c: Cidr): boolean {
  // IPv6: the first address is the subnet-router anycast address (RFC 4291 2.6.1), up to /126.
  return c.family === 4 ? c.prefix <= 30 : c.prefix <= 126;
}

const hasBroadcastAddress = (c: Cidr): boolean => c.family === 4 && c.prefix <= 30;

/** Why `value` is never handed out by this pool, or undefined when it may be. */
/** Whether the nodes hold the pool's gateway on the bridge (nodeGateway, or its default). */
export function holdsGateway(spec: PoolSpec): boolean {
  return (
    spec.gateway !== undefined && (spec.nodeGateway ?? (spec.segment.mode !== 'vlan' && !spec.allowOverlap))
  );
}

export function unusableReason(pool: Pool, value: bigint): string | undefined {
  const text = formatIp(pool.family, value);
  if (!cidrContains(pool.cidr, value))
    return `${text} is outside pool ${pool.name} (${formatCidr(pool.cidr)})`;
  if (value === pool.gateway) return `${text} is the gateway of pool ${pool.name}`;
  if (hasNetworkAddress(pool.cidr) && value === pool.cidr.base)
    return `${text} is the network address of pool ${pool.name}`;
  if (hasBroadcastAddress(pool.cidr) && value === lastOf(pool.cidr))
    return `${text} is the broadcast address of pool ${pool.name}`;
  const ranges = pool.spec.ranges;
  if (ranges && !ranges.some((r) => value >= parseIp(r.start)!.value && value <= parseIp(r.end)!.value))
    return `${text} is outside the ranges of pool ${pool.name}`;
  if (pool.spec.exclude.some((e) => excludedInterval(e).lo <= value && value <= excludedInterval(e).hi))
    return `${text} is excluded from pool ${pool.name}`;
  return undefined;
}

function excludedInterval(e: string): Interval {
  const a = parseIp(e);
  if (a) return { lo: a.value, hi: a.value };
  const c = parseCidr(e);
  if (!c.ok) throw new Error(`unreachable: exclude ${e} was validated`);
  return { lo: c.cidr.base, hi: lastOf(c.cidr) };
}

function invalid(name: unknown, problems: string[], origin: string): NodewardError {
  const which = typeof name === 'string' && name ? `pool "${name}"` : 'pool';
  return new NodewardError('POOL_INVALID', `invalid ${which} (${origin}):\n  ${problems.join('\n  ')}`, {
    details: { pool: name, problems },
  });
}

/**
 * Validates a pool spec and computes its usable addresses. Throws POOL_INVALID naming the field
 * path of every problem (`ranges[0].start: 10.1.0.1 is outside 10.0.0.0/24`).
 */
export function compilePool(input: unknown, origin = 'spec'): Pool {
  const result = poolSpecSchema.safeParse(input, { reportInput: true });
  const name = (input as { name?: unknown } | null)?.name;
  if (!result.success) throw invalid(name, formatIssues(result.error.issues), origin);
  const spec = canonicalSpec(result.data);
  const parsed = parseCidr(spec.cidr);
  if (!parsed.ok) throw new Error('unreachable: cidr was validated');
  const net = parsed.cidr;
  const gateway = spec.gateway === undefined ? undefined : parseIp(spec.gateway)!.value;

  const reserved: Interval[] = spec.exclude.map(excludedInterval);
  if (gateway !== undefined) reserved.push({ lo: gateway, hi: gateway });
  if (hasNetworkAddress(net)) reserved.push({ lo: net.base, hi: net.base });
  if (hasBroadcastAddress(net)) reserved.push({ lo: lastOf(net), hi: lastOf(net) });
  const whole: Interval[] = [{ lo: net.base, hi: lastOf(net) }];
  const ranges = spec.ranges
    ? normalize(spec.ranges.map((r) => ({ lo: parseIp(r.start)!.value, hi: parseIp(r.end)!.value })))
    : whole;
  const usable = subtract(intersect(ranges, whole), normalize(reserved));
  const size = count(usable);
  if (size === 0n) {
    throw invalid(
      spec.name,
      ['(root): no address is left to hand out after the gateway, exclusions and ranges'],
      origin,
    );
  }
  const bits = net.family === 4 ? 32 : 128;
  const blockPrefix =
    spec.blockSize ?? Math.min(bits, Math.max(net.prefix, DEFAULT_BLOCK_PREFIX[net.family]));
  return { spec, name: spec.name, cidr: net, family: net.family, gateway, blockPrefix, usable, size };
}

/** One spelling per address, so that specs compare and store keys match whatever the input was. */
function canonicalSpec(spec: PoolSpec): PoolSpec {
  const ip = (s: string) => {
    const a = parseIp(s)!;
    return formatIp(a.family, a.value);
  };
  const net = (s: string) => {
    const c = parseCidr(s);
    return c.ok ? formatCidr(c.cidr) : s;
  };
  return {
    ...spec,
    cidr: net(spec.cidr),
    ...(spec.gateway === undefined ? {} : { gateway: ip(spec.gateway) }),
    ...(spec.ranges === undefined
      ? {}
      : { ranges: spec.ranges.map((r) => ({ start: ip(r.start), end: ip(r.end) })) }),
    exclude: spec.exclude.map((e) => (parseIp(e) ? ip(e) : net(e))),
    routes: spec.routes.map((r) => ({ dst: net(r.dst), ...(r.gw === undefined ? {} : { gw: ip(r.gw) }) })),
  };
}

const sameSegment = (a: PoolSpec, b: PoolSpec) =>
  a.segment.mode === b.segment.mode && a.segment.id === b.segment.id;

/**
 * Why `pool` may not sit beside `others`, or undefined. Overlap is allowed only when the new pool
 * asks for it and the two are on different segments: on one L2 segment the same address twice is
 * a duplicate IP, whatever the flags say.
 */
export function overlapProblem(pool: Pool, others: readonly Pool[]): string | undefined {
  for (const other of others) {
    if (other.name === pool.name || !cidrsOverlap(pool.cidr, other.cidr)) continue;
    const both = `${pool.name} (${formatCidr(pool.cidr)}) overlaps ${other.name} (${formatCidr(other.cidr)})`;
    if (!pool.spec.allowOverlap) {
      return `${both}; set allowOverlap: true if they are on different segments`;
    }
    if (sameSegment(pool.spec, other.spec)) {
      const seg = pool.spec.segment;
      return `${both} on the same segment (${seg.mode}${seg.id === undefined ? '' : ` ${seg.id}`}): addresses would be duplicated on one L2 network`;
    }
  }
  return undefined;
}
