import { createHash } from 'node:crypto';
import type { PoolSpec } from '../ipam/pool.ts';

/** Link names the agent makes; every one fits IFNAMSIZ (15 characters). */

/** The host end of a pod's veth: derived from (containerID, ifName), so DEL finds it without state. */
export function hostVethName(containerID: string, ifName: string): string {
  return `nw${createHash('sha256').update(`${containerID}/${ifName}`).digest('hex').slice(0, 11)}`;
}

export interface SegmentLinks {
  /** A stable key: mode and id (or pool name for mode none). */
  readonly key: string;
  readonly bridge: string;
  /** The VLAN subinterface or VXLAN device on the bridge; none for mode none. */
  readonly uplink: string | undefined;
}

/**
 * The MAC of a segment's bridge when nodes hold the gateway on it: the same on every node (an
 * anycast gateway: whichever node answers a pod's ARP for the gateway, the answer is the same),
 * locally administered (0a:58:…), derived from the segment key.
 */
export function gatewayMac(segmentKey: string): string {
  const h = createHash('sha256').update(`gateway/${segmentKey}`).digest();
  return ['0a', '58', ...[...h.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * The seed's naming, with one bridge name per L2 segment: `<master>.<vid>` on `br<vid>`;
 * `vx<vni>` on `vxbr<vni>` (VLAN 100 and VNI 100 are two networks, so never one bridge);
 * `nw-<pool>` alone, or `nw_<hash>` when the pool name is too long to fit (pool names hold no
 * "_", so the two forms cannot meet).
 */
export function segmentLinks(segment: PoolSpec['segment'], pool: string, master: string): SegmentLinks {
  if (segment.mode === 'none' || segment.id === undefined) {
    const bridge =
      pool.length <= 12 ? `nw-${pool}` : `nw_${createHash('sha256').update(pool).digest('hex').slice(0, 12)}`;
    return { key: `none/${pool}`, bridge, uplink: undefined };
  }
  const id = segment.id;
  if (segment.mode === 'vlan') {
    const sub = `${master}.${id}`;
    return { key: `vlan/${id}`, bridge: `br${id}`, uplink: sub.length <= 15 ? sub : `vlan${id}` };
  }
  return { key: `vxlan/${id}`, bridge: `vxbr${id}`, uplink: `vx${id}` };
}
