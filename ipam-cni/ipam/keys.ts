import { type Block, blockKeyName } from './allocator.ts';

/**
 * The IPAM key layout, relative to the store prefix (etcd: `<network.etcd.prefix>ipam/v1/`). One
 * place, so the allocator, the CLI and `ipam check` cannot disagree about where a record lives.
 *
 *   pools/<pool>                       pool record: spec, created, draining
 *   pool-index                         rewritten by every pool add/remove: the compare that makes
 *                                      "no overlapping pool was added meanwhile" part of the txn
 *   blocks/<pool>/<block>              block affinity {node, since}; <block> is "10.0.0.64-26"
 *   ips/<pool>/<block>/<ip>            who holds the address (or, for sticky pods, keeps it)
 *   handles/<containerID>/<ifName>     {pool, ip, block}; written in the same txn as the ip key
 *   sticky/<namespace>/<pod>/<ifName>  {pool, ip}: a StatefulSet pod's address across restarts
 *
 * IPs sit under their block so that one prefix read returns a block's used set.
 */

export const IPAM_PREFIX = 'ipam/v1/';

export const poolsPrefix = 'pools/';
export const poolKey = (pool: string) => `pools/${pool}`;
export const poolIndexKey = 'pool-index';
export const blocksPrefix = (pool: string) => `blocks/${pool}/`;
export const blockKey = (pool: string, block: Block) => `blocks/${pool}/${blockKeyName(block)}`;
export const ipsPrefix = (pool: string) => `ips/${pool}/`;
export const blockIpsPrefix = (pool: string, block: Block) => `ips/${pool}/${blockKeyName(block)}/`;
export const ipKey = (pool: string, blockName: string, ip: string) => `ips/${pool}/${blockName}/${ip}`;
export const handlesPrefix = 'handles/';
export const handleKey = (containerID: string, ifName: string) => `handles/${containerID}/${ifName}`;
/** containerID and ifName of a `handles/<containerID>/<ifName>` key. */
export function parseHandleKey(key: string): { containerID: string; ifName: string } {
  const rest = key.slice(handlesPrefix.length);
  const slash = rest.lastIndexOf('/');
  return { containerID: rest.slice(0, slash), ifName: rest.slice(slash + 1) };
}
export const stickyPrefix = 'sticky/';
export const stickyKey = (namespace: string, pod: string, ifName: string) =>
  `sticky/${namespace}/${pod}/${ifName}`;

/** The last path segment of a key. */
export const lastSegment = (key: string) => key.slice(key.lastIndexOf('/') + 1);
