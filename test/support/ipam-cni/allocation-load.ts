import type { Ipam } from '../../../ipam-cni/ipam/ipam.ts';
import { asNodewardError } from '../../../shared/errors.ts';

/**
 * A load generator: several agents (one Ipam each, as on separate nodes), each with a number of
 * allocations in flight, until a total is reached. Used by the concurrency tests and the bench.
 */

export interface LoadOptions {
  readonly agents: readonly { readonly node: string; readonly ipam: Ipam }[];
  readonly pool: string;
  /** Allocations in flight per agent. */
  readonly concurrency: number;
  readonly total: number;
  /** Makes container ids unique across runs on one store. */
  readonly runId: string;
}

export interface LoadResult {
  readonly succeeded: { readonly containerID: string; readonly node: string; readonly ip: string }[];
  /** Error code → count. */
  readonly failed: Map<string, { count: number; retriable: boolean; example: string }>;
  /** Latency of each successful allocation, ms. */
  readonly latenciesMs: number[];
  readonly elapsedMs: number;
}

export async function runAllocationLoad(options: LoadOptions): Promise<LoadResult> {
  const succeeded: LoadResult['succeeded'] = [];
  const failed: LoadResult['failed'] = new Map();
  const latenciesMs: number[] = [];
  let next = 0;
  const start = performance.now();
  const worker = async (node: string, ipam: Ipam) => {
    for (;;) {
      const i = next++;
      if (i >= options.total) return;
      const containerID = `${options.runId}-${i}`;
      const t0 = performance.now();
      try {
        const a = await ipam.allocate({
          containerID,
          ifName: 'eth0',
          pod: `load-${i}`,
          namespace: 'load',
          node,
          pool: options.pool,
        });
        latenciesMs.push(performance.now() - t0);
        succeeded.push({ containerID, node, ip: a.ip });
      } catch (err) {
        const e = asNodewardError(err);
        const f = failed.get(e.code) ?? { count: 0, retriable: e.retriable, example: e.message };
        f.count++;
        failed.set(e.code, f);
      }
    }
  };
  await Promise.all(
    options.agents.flatMap(({ node, ipam }) =>
      Array.from({ length: options.concurrency }, () => worker(node, ipam)),
    ),
  );
  return { succeeded, failed, latenciesMs, elapsedMs: performance.now() - start };
}
