import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../store/memory.ts';
import { Ipam } from './ipam.ts';
import { createIpamMetrics } from './metrics.ts';
import { addPool } from './pools.ts';
import { usageReport } from './usage.ts';

describe('IPAM metrics', () => {
  it('counts allocations, lost races and pool usage on the registry', async () => {
    const registry = new Registry();
    const metrics = createIpamMetrics(registry);
    const store = new MemoryStore();
    await addPool(store, { name: 'm', cidr: '10.1.0.0/29', gateway: '10.1.0.1' });
    // Two "nodes" racing for the same block and addresses: some compares are lost and retried.
    const a = new Ipam({ store, observer: metrics });
    const b = new Ipam({ store, observer: metrics });
    const req = (i: number, node: string) => ({
      containerID: `c${i}`,
      ifName: 'eth0',
      pod: `p${i}`,
      namespace: 'ns',
      node,
      pool: 'm',
    });
    await Promise.all([0, 1, 2, 3].map((i) => (i % 2 ? a : b).allocate(req(i, i % 2 ? 'n1' : 'n2'))));
    await expect(a.allocate({ ...req(9, 'n1'), requestedIP: '10.9.9.9' })).rejects.toThrow();
    metrics.setPools(await usageReport(store));
    metrics.gcReleases.inc({ kind: 'node' });
    const text = await registry.metrics();
    expect(text).toContain('nodeward_ipam_allocation_duration_seconds_count{result="ok"} 4');
    expect(text).toContain('nodeward_ipam_allocation_duration_seconds_count{result="error"} 1');
    expect(text).toContain('nodeward_ipam_pool_size{pool="m"} 5');
    expect(text).toContain('nodeward_ipam_pool_used{pool="m"} 4');
    expect(text).toContain('nodeward_ipam_pool_free{pool="m"} 1');
    expect(text).toContain('nodeward_ipam_gc_releases_total{kind="node"} 1');
    expect(text).toContain('nodeward_ipam_gc_releases_total{kind="cluster"} 0');
    expect(text).toMatch(/nodeward_ipam_conflicts_retried_total \d+/);
    // Pools that are gone disappear from the gauges.
    metrics.setPools([]);
    expect(await registry.metrics()).not.toContain('pool="m"');
  });
});
