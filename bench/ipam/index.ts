import { Lab, startEtcd } from '../../test/lab/index.ts';
import { type Bench, metric } from '../types.ts';
import { measureThroughput } from './throughput.ts';

/**
 * Allocation throughput of 3 agents (each its own Ipam and etcd client) on a 3-member etcd, beside
 * the design whereabouts uses — one lock over the whole pool — on the same etcd in the same run.
 */
const bench: Bench = {
  description: 'IPAM allocations/s: 3 agents × 32 in flight on a 3-member etcd vs a whole-pool lock',
  async run({ quick, log }) {
    const lab = new Lab();
    try {
      const { endpoints } = await startEtcd({ lab, members: 3 });
      const ours = await measureThroughput({
        endpoints,
        agents: 3,
        concurrency: 32,
        total: quick ? 3000 : 10_000,
        design: 'blocks',
      });
      const lock = await measureThroughput({
        endpoints,
        agents: 3,
        concurrency: 1,
        total: quick ? 100 : 300,
        design: 'pool-lock',
      });
      log(JSON.stringify({ ours, lock }));
      const anchorName = 'whole-pool lock (3 × 1 in flight, its best)';
      return [
        metric({
          name: 'allocations_per_s',
          unit: '1/s',
          ours: ours.allocationsPerS,
          anchor: lock.allocationsPerS,
          anchorName,
          better: 'higher',
          goal: 20,
        }),
        metric({
          name: 'allocations_per_s_absolute',
          unit: '1/s',
          ours: ours.allocationsPerS,
          anchor: null,
          anchorName: '-',
          better: 'higher',
          goal: 2000,
          goalOf: 'ours',
        }),
        metric({
          name: 'allocation_p50_ms',
          unit: 'ms',
          ours: ours.p50Ms,
          anchor: lock.p50Ms,
          anchorName,
          better: 'lower',
          goal: null,
        }),
        metric({
          name: 'allocation_p99_ms',
          unit: 'ms',
          ours: ours.p99Ms,
          anchor: lock.p99Ms,
          anchorName,
          better: 'lower',
          goal: null,
        }),
        metric({
          name: 'duplicates',
          unit: 'count',
          ours: ours.duplicates + lock.duplicates,
          anchor: null,
          anchorName: '-',
          better: 'lower',
          goal: 0,
          goalOf: 'ours',
        }),
      ];
    } finally {
      await lab.cleanup();
    }
  },
};

export default bench;
