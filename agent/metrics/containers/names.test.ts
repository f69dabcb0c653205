import { describe, expect, it } from 'vitest';
import { CONTAINER_FAMILIES } from './collector.ts';

/**
 * cAdvisor names the dashboards people already use query, with where each comes from. Every one
 * must be a family we expose, with cAdvisor's type. Sources:
 *   mixin   kubernetes-monitoring/kubernetes-mixin, dashboards/resources/*.libsonnet and
 *           rules/apps.libsonnet (the "Kubernetes / Compute Resources / *" dashboards)
 *   cadv    google/cadvisor metrics/prometheus.go (the kubelet's /metrics/cadvisor serves the same)
 */
const DASHBOARD_NAMES: readonly [name: string, type: 'counter' | 'gauge', source: string][] = [
  ['container_cpu_usage_seconds_total', 'counter', 'mixin: CPU usage, node_namespace_pod_container rules'],
  ['container_memory_working_set_bytes', 'gauge', 'mixin: memory usage (WSS)'],
  ['container_memory_rss', 'gauge', 'mixin: memory RSS column'],
  ['container_memory_cache', 'gauge', 'mixin: memory cache column'],
  ['container_memory_swap', 'gauge', 'mixin: memory swap column'],
  [
    'container_cpu_cfs_throttled_periods_total',
    'counter',
    'mixin: CPU throttling panel; CPUThrottlingHigh alert',
  ],
  ['container_cpu_cfs_periods_total', 'counter', 'mixin: CPU throttling panel; CPUThrottlingHigh alert'],
  ['container_network_receive_bytes_total', 'counter', 'mixin: receive bandwidth'],
  ['container_network_transmit_bytes_total', 'counter', 'mixin: transmit bandwidth'],
  ['container_network_receive_packets_total', 'counter', 'mixin: rate of received packets'],
  ['container_network_transmit_packets_total', 'counter', 'mixin: rate of transmitted packets'],
  ['container_network_receive_packets_dropped_total', 'counter', 'mixin: rate of received packets dropped'],
  [
    'container_network_transmit_packets_dropped_total',
    'counter',
    'mixin: rate of transmitted packets dropped',
  ],
  ['container_memory_usage_bytes', 'gauge', 'cadv'],
  ['container_memory_max_usage_bytes', 'gauge', 'cadv'],
  ['container_memory_mapped_file', 'gauge', 'cadv'],
  ['container_memory_failcnt', 'counter', 'cadv'],
  ['container_oom_events_total', 'counter', 'cadv'],
  ['container_cpu_user_seconds_total', 'counter', 'cadv'],
  ['container_cpu_system_seconds_total', 'counter', 'cadv'],
  ['container_cpu_cfs_throttled_seconds_total', 'counter', 'cadv'],
  ['container_network_receive_errors_total', 'counter', 'cadv'],
  ['container_network_transmit_errors_total', 'counter', 'cadv'],
  ['container_spec_memory_limit_bytes', 'gauge', 'cadv; cAdvisor dashboards (limit lines)'],
  ['container_spec_cpu_quota', 'gauge', 'cadv; cAdvisor dashboards'],
  ['container_spec_cpu_period', 'gauge', 'cadv; cAdvisor dashboards'],
  ['container_spec_cpu_shares', 'gauge', 'cadv'],
  ['container_start_time_seconds', 'gauge', 'cadv'],
  ['container_last_seen', 'gauge', 'cadv; cAdvisor dashboards (running containers)'],
  // The mixin's "Storage IO" panels (Pod, Workload, Namespace dashboards) and the
  // node_namespace_pod_container rules; their device matcher expects cAdvisor's "/dev/<name>".
  ['container_fs_reads_total', 'counter', 'mixin: IOPS (reads)'],
  ['container_fs_writes_total', 'counter', 'mixin: IOPS (writes)'],
  ['container_fs_reads_bytes_total', 'counter', 'mixin: throughput (read)'],
  ['container_fs_writes_bytes_total', 'counter', 'mixin: throughput (write)'],
  // The writable layer: containerd and CRI-O nodes only (from the CRI, writable-layer.ts). On
  // Docker nodes it would need a walk of every file of each layer, as cAdvisor's `du`: left out.
  ['container_fs_usage_bytes', 'gauge', 'cadv; cAdvisor dashboards (disk usage)'],
  ['container_fs_limit_bytes', 'gauge', 'cadv'],
  ['container_processes', 'gauge', 'cadv'],
  ['container_threads', 'gauge', 'cadv'],
  ['container_file_descriptors', 'gauge', 'cadv'],
  ['machine_cpu_cores', 'gauge', 'cadv; cAdvisor dashboards (CPU usage as a share of the machine)'],
  ['machine_memory_bytes', 'gauge', 'cadv; cAdvisor dashboards (memory usage as a share of the machine)'],
];

describe('cAdvisor name compatibility', () => {
  const ours = new Map(CONTAINER_FAMILIES.map((f) => [f.name, f.type]));

  it('exposes every dashboard name with cAdvisor’s type', () => {
    const missing = DASHBOARD_NAMES.filter(([name, type]) => ours.get(name) !== type).map(([n]) => n);
    expect(missing).toEqual([]);
  });
});
