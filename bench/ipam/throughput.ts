import { Ipam } from '../../ipam-cni/ipam/ipam.ts';
import { handlesPrefix } from '../../ipam-cni/ipam/keys.ts';
import { compilePool } from '../../ipam-cni/ipam/pool.ts';
import { addPool } from '../../ipam-cni/ipam/pools.ts';
import { runAllocationLoad } from '../../test/support/ipam-cni/allocation-load.ts';
import { percentile } from '../types.ts';
import { PoolLockAllocator } from './pool-lock.ts';

/**
 * Allocation throughput on a real etcd: ours (per-node blocks, group commit) and the whole-pool
 * lock design, same etcd, same process, same load shape. Each agent has its own etcd client, as
 * separate nodes would. index.ts drives it; numbers only mean something side by side.
 */

export interface ThroughputOptions {
  readonly endpoints: readonly string[];
  readonly agents: number;
  /** Allocations in flight per agent. */
  readonly concurrency: number;
  readonly total: number;
  readonly design: 'blocks' | 'pool-lock';
}

export interface ThroughputResult {
  readonly design: ThroughputOptions['design'];
  readonly agents: number;
  readonly allocations: number;
  readonly failed: number;
  readonly allocationsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Addresses handed out twice, counted from what the store holds afterwards. */
  readonly duplicates: number;
}

const POOL = { name: 'bench', cidr: '10.128.0.0/16', gateway: '10.128.0.1', blockSize: 26 };

export async function measureThroughput(o: ThroughputOptions): Promise<ThroughputResult> {
  const prefix = `/nodeward-bench-${process.pid}-${Date.now()}/ipam/v1/`;
  const { EtcdStore } = await import('../../ipam-cni/store/etcd.ts'); // etcd3 only when measuring
  const open = () =>
    EtcdStore.open({ endpoints: o.endpoints, prefix, dialTimeoutMs: 2000, requestTimeoutMs: 10_000 });
  const stores = await Promise.all(Array.from({ length: o.agents }, open));
  try {
    await addPool(stores[0]!, POOL);
    if (o.design === 'blocks') {
      const agents = stores.map((store, i) => ({ node: `node-${i}`, ipam: new Ipam({ store }) }));
      // Warm-up: connections, pool cache, first block claims — what an agent has after a minute.
      await runAllocationLoad({
        agents,
        pool: POOL.name,
        concurrency: 4,
        total: o.agents * 8,
        runId: 'warm',
      });
      const r = await runAllocationLoad({
        agents,
        pool: POOL.name,
        concurrency: o.concurrency,
        total: o.total,
        runId: 'run',
      });
      const { entries } = await stores[0]!.list(handlesPrefix);
      const ips = entries.map((e) => (JSON.parse(e.value) as { ip: string }).ip);
      return summary(
        o,
        r.succeeded.length,
        [...r.failed.values()].reduce((n, f) => n + f.count, 0),
        r.elapsedMs,
        r.latenciesMs,
        ips,
      );
    }
    const pool = compilePool(POOL);
    const lockers = stores.map((s) => new PoolLockAllocator(s));
    const latencies: number[] = [];
    let next = 0;
    let failed = 0;
    const start = performance.now();
    await Promise.all(
      lockers.flatMap((l) =>
        Array.from({ length: o.concurrency }, async () => {
          for (let i = next++; i < o.total; i = next++) {
            const t0 = performance.now();
            try {
              await l.allocate(pool, `lock-${i}`);
              latencies.push(performance.now() - t0);
            } catch {
              failed++;
            }
          }
        }),
      ),
    );
    const elapsed = performance.now() - start;
    const { entries } = await stores[0]!.list('lockdesign-handles/');
    return summary(
      o,
      latencies.length,
      failed,
      elapsed,
      latencies,
      entries.map((e) => e.value),
    );
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
}

function summary(
  o: ThroughputOptions,
  ok: number,
  failed: number,
  elapsedMs: number,
  latencies: number[],
  ips: string[],
): ThroughputResult {
  return {
    design: o.design,
    agents: o.agents,
    allocations: ok,
    failed,
    allocationsPerS: ok / (elapsedMs / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    duplicates: ips.length - new Set(ips).size,
  };
}
