import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PoolUsage } from './usage.ts';

/**
 * IPAM's metrics, on the network module's registry. The pool gauges are set by the module's check
 * loop from one usage read (never by a scrape: a scrape does no store I/O).
 */

export type GcKind = 'node' | 'cluster' | 'block';

/** What the IPAM service reports as it works (IpamOptions.observer). */
export interface IpamObserver {
  /** One allocate() call ended, after `seconds`. */
  allocated(seconds: number, ok: boolean): void;
  /** A compare lost to another writer; the allocation is retried. */
  conflict(): void;
}

export interface IpamMetrics extends IpamObserver {
  readonly allocationSeconds: Histogram<'result'>;
  readonly conflicts: Counter;
  readonly gcReleases: Counter<'kind'>;
  /** Replaces the per-pool gauges (pools that are gone disappear). */
  setPools(usage: readonly PoolUsage[]): void;
}

export function createIpamMetrics(registry: Registry): IpamMetrics {
  const size = new Gauge({
    name: 'nodeward_ipam_pool_size',
    help: 'Usable addresses of a pool (CIDR minus network/broadcast, gateway and exclusions).',
    labelNames: ['pool'],
    registers: [registry],
  });
  const used = new Gauge({
    name: 'nodeward_ipam_pool_used',
    help: 'Addresses of a pool held by containers or kept for sticky pods, as of the last check.',
    labelNames: ['pool'],
    registers: [registry],
  });
  const free = new Gauge({
    name: 'nodeward_ipam_pool_free',
    help: 'Addresses of a pool still free, as of the last check.',
    labelNames: ['pool'],
    registers: [registry],
  });
  const allocationSeconds = new Histogram({
    name: 'nodeward_ipam_allocation_duration_seconds',
    help: 'Time one IPAM allocation takes (store transactions included), by result (ok or error).',
    labelNames: ['result'],
    buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const conflicts = new Counter({
    name: 'nodeward_ipam_conflicts_retried_total',
    help: 'Compare-and-swap races an allocation lost to another writer and retried.',
    registers: [registry],
  });
  const gcReleases = new Counter({
    name: 'nodeward_ipam_gc_releases_total',
    help: 'Records the IPAM GC freed: node (leaked attachments of this node), cluster (allocations and blocks of dead nodes), block (empty blocks handed back).',
    labelNames: ['kind'],
    registers: [registry],
  });
  for (const kind of ['node', 'cluster', 'block'] as const) gcReleases.inc({ kind }, 0);
  return {
    allocationSeconds,
    conflicts,
    gcReleases,
    allocated(seconds, ok) {
      allocationSeconds.observe({ result: ok ? 'ok' : 'error' }, seconds);
    },
    conflict() {
      conflicts.inc();
    },
    setPools(usage) {
      size.reset();
      used.reset();
      free.reset();
      for (const u of usage) {
        const total = Number(u.total);
        const taken = u.used + u.kept;
        size.set({ pool: u.pool }, total);
        used.set({ pool: u.pool }, taken);
        free.set({ pool: u.pool }, Math.max(0, total - taken));
      }
    },
  };
}
