import type { PoolSpec } from '../ipam/pool.ts';
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

export interface SegmentPlan {
  readonly links: SegmentLinks;
  readonly mode: PoolSpec['segment']['mode'];
  readonly id: number | undefined;
  readonly create: readonly { readonly link: string; readonly command: readonly string[] }[];
  readonly converge: readonly (readonly string[])[];
}

export function planSegment(segment: PoolSpec['segment'], pool: string, o: UplinkOptions): SegmentPlan {
  const links = segmentLinks(segment, pool, o.master);
  const mtu = String(o.mtu);
  const create: { link: string; command: string[] }[] = [];
  const converge: string[][] = [];
  if (links.uplink !== undefined && segment.id !== undefined) {
    const id = String(segment.id);
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
  if (links.uplink !== undefined) {
    converge.push(
      ['link', 'set', links.uplink, 'mtu', mtu],
      ['link', 'set', links.uplink, 'master', links.bridge],
      ['link', 'set', links.uplink, 'up'],
    );
  }
  converge.push(['link', 'set', links.bridge, 'up']);
  return { links, mode: segment.mode, id: segment.id, create, converge };
}

/** Default MTU of pod links: VXLAN's 50 bytes of headers come out of the uplink's 1500. */
export const defaultMtu = (mode: PoolSpec['segment']['mode']): number => (mode === 'vxlan' ? 1450 : 1500);
