import type { PoolSpec } from '../ipam/pool.ts';
import type { LinkInfo } from './exec.ts';
import { type SegmentLinks, segmentLinks } from './names.ts';

/**
 * What a segment needs on a node, as iproute2 commands — pure, so the VLAN plan is tested on
 * kernels without 802.1Q. `create` holds one entry per link that may be missing (applied only for
 * links that do not exist yet); `converge` is idempotent and always applied.
 */

export interface UplinkOptions {
  readonly master: string;
  /** VXLAN source address (required for mode vxlan). */
  readonly localAddress?: string | undefined;
  readonly vxlanPort: number;
  readonly mtu: number;
}

/** What a link of the segment must be, so that one found by name is reused only when it is ours. */
export interface ExpectedLink {
  readonly link: string;
  readonly kind: 'bridge' | 'vlan' | 'vxlan';
  /** VLAN id or VNI. */
  readonly id?: number | undefined;
  /** The device a VLAN subinterface hangs off. */
  readonly parent?: string | undefined;
}

export interface SegmentPlan {
  readonly links: SegmentLinks;
  readonly mode: PoolSpec['segment']['mode'];
  readonly id: number | undefined;
  readonly create: readonly { readonly link: string; readonly command: readonly string[] }[];
  readonly expect: readonly ExpectedLink[];
  readonly converge: readonly (readonly string[])[];
}

export function planSegment(segment: PoolSpec['segment'], pool: string, o: UplinkOptions): SegmentPlan {
  const links = segmentLinks(segment, pool, o.master);
  const mtu = String(o.mtu);
  const create: { link: string; command: string[] }[] = [];
  const expect: ExpectedLink[] = [];
  const converge: string[][] = [];
  if (links.uplink !== undefined && segment.id !== undefined) {
    const id = String(segment.id);
    expect.push({
      link: links.uplink,
      kind: segment.mode === 'vlan' ? 'vlan' : 'vxlan',
      id: segment.id,
      parent: segment.mode === 'vlan' ? o.master : undefined,
    });
    // The kernel refuses to bring a VLAN device up over a master that is down ("Network is
    // down"), and VXLAN traffic leaves by the master: up first, before anything above it.
    converge.push(['link', 'set', o.master, 'up']);
    if (segment.mode === 'vlan') {
      create.push({
        link: links.uplink,
        command: ['link', 'add', 'link', o.master, 'name', links.uplink, 'type', 'vlan', 'id', id],
      });
    } else {
      if (!o.localAddress) throw new Error(`segment vxlan ${id}: no local address for the VXLAN device`);
      create.push({
        link: links.uplink,
        command: [
          'link',
          'add',
          links.uplink,
          'type',
          'vxlan',
          'id',
          id,
          'local',
          o.localAddress,
          'dstport',
          String(o.vxlanPort),
          'dev',
          o.master,
          'nolearning',
        ],
      });
    }
  }
  create.push({ link: links.bridge, command: ['link', 'add', links.bridge, 'mtu', mtu, 'type', 'bridge'] });
  expect.push({ link: links.bridge, kind: 'bridge' });
  if (links.uplink !== undefined) {
    converge.push(
      ['link', 'set', links.uplink, 'mtu', mtu],
      ['link', 'set', links.uplink, 'master', links.bridge],
      ['link', 'set', links.uplink, 'up'],
    );
  }
  converge.push(['link', 'set', links.bridge, 'up']);
  return { links, mode: segment.mode, id: segment.id, create, expect, converge };
}

/**
 * Why a link found under an expected name is not the one the segment needs, or undefined. A bridge
 * named br100 made by someone else, or eth0.100 on the wrong VLAN, would join pods to the wrong
 * L2 network: report it, never use it.
 */
export function linkMismatch(expected: ExpectedLink, found: LinkInfo): string | undefined {
  const kind = found.linkinfo?.info_kind ?? 'a device of no kind (physical)';
  const id = found.linkinfo?.info_data?.id;
  if (kind !== expected.kind) return `${expected.link} exists but is ${kind}, not ${expected.kind}`;
  if (expected.id !== undefined && id !== expected.id)
    return `${expected.link} exists but has ${expected.kind === 'vlan' ? 'VLAN id' : 'VNI'} ${id}, not ${expected.id}`;
  if (expected.parent !== undefined && found.link !== undefined && found.link !== expected.parent)
    return `${expected.link} exists but hangs off ${found.link}, not ${expected.parent}`;
  return undefined;
}

/** Default MTU of pod links: VXLAN's 50 bytes of headers come out of the uplink's 1500. */
export const defaultMtu = (mode: PoolSpec['segment']['mode']): number => (mode === 'vxlan' ? 1450 : 1500);
