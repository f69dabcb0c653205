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

/** The seed's naming: `<master>.<vid>` on `br<vid>`; `vx<vni>` on `br<vni>`; `nw-<pool>` alone. */
export function segmentLinks(segment: PoolSpec['segment'], pool: string, master: string): SegmentLinks {
  if (segment.mode === 'none' || segment.id === undefined) {
    return { key: `none/${pool}`, bridge: `nw-${pool}`.slice(0, 15), uplink: undefined };
  }
  const id = segment.id;
  if (segment.mode === 'vlan') {
    const sub = `${master}.${id}`;
    return { key: `vlan/${id}`, bridge: `br${id}`, uplink: sub.length <= 15 ? sub : `vlan${id}` };
  }
  return { key: `vxlan/${id}`, bridge: `br${id}`, uplink: `vx${id}` };
}
