import { NodewardError } from '../../shared/errors.ts';
import type { Store } from '../store/store.ts';
import { formatCidr, parseIp } from './addr.ts';
import { blockKeyName, blockOf, usage } from './allocator.ts';
import { blocksPrefix, ipsPrefix, lastSegment } from './keys.ts';
import { readPools } from './pools.ts';
import { blockRecordSchema, ipRecordSchema, parseRecord } from './records.ts';

/** How full each pool is, and which node holds what: `nodeward ipam usage`, the pool gauges. */

export interface PoolUsage {
  readonly pool: string;
  readonly cidr: string;
  readonly segment: string;
  readonly used: number;
  readonly kept: number;
  readonly total: string;
  readonly draining: boolean;
  /** node → blocks claimed and addresses used in them */
  readonly nodes: Record<string, { blocks: number; used: number }>;
}

export async function usageReport(
  store: Store,
  filter: { pool?: string; node?: string } = {},
): Promise<PoolUsage[]> {
  const pools = await readPools(store);
  if (filter.pool !== undefined && !pools.has(filter.pool)) {
    throw new NodewardError(
      'POOL_NOT_FOUND',
      `pool ${filter.pool} does not exist; see \`nodeward ipam pool list\``,
    );
  }
  const out: PoolUsage[] = [];
  for (const [name, stored] of pools) {
    if (filter.pool !== undefined && name !== filter.pool) continue;
    const { pool } = stored;
    const [blocks, ips] = await Promise.all([store.list(blocksPrefix(name)), store.list(ipsPrefix(name))]);
    const owner = new Map<string, string>();
    const nodes: PoolUsage['nodes'] = {};
    const slot = (node: string) => {
      nodes[node] ??= { blocks: 0, used: 0 };
      return nodes[node];
    };
    for (const b of blocks.entries) {
      const node = parseRecord(blockRecordSchema, b).node;
      owner.set(lastSegment(b.key), node);
      slot(node).blocks++;
    }
    const used = new Set<bigint>();
    let kept = 0;
    for (const e of ips.entries) {
      const a = parseIp(lastSegment(e.key));
      if (!a) continue;
      used.add(a.value);
      const r = parseRecord(ipRecordSchema, e);
      if (r.containerID === null) kept++;
      slot(owner.get(blockKeyName(blockOf(pool, a.value))) ?? r.node).used++;
    }
    if (filter.node !== undefined) for (const n of Object.keys(nodes)) if (n !== filter.node) delete nodes[n];
    const all = usage(pool, [{ block: pool.cidr, used }]);
    const seg = pool.spec.segment;
    out.push({
      pool: name,
      cidr: formatCidr(pool.cidr),
      segment: seg.mode === 'none' ? 'none' : `${seg.mode} ${seg.id}`,
      used: Number(all.used) - kept,
      kept,
      total: String(all.total),
      draining: stored.draining,
      nodes,
    });
  }
  return out;
}
