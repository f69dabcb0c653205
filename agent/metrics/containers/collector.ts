import { readlinkSync } from 'node:fs';
import type { ContainersConfig } from '../../../shared/config/metrics.ts';
import { type Collector, type Emit, type Family, family, type Labels } from '../collector.ts';
import { parseNetDev } from '../collectors/netdev.ts';
import {
  type CgroupLayout,
  type CgroupStats,
  cgroupDirs,
  type Read,
  readCgroupStats,
  readOptional,
  SPEC_FIELDS,
  SPEC_FILES,
} from './cgroup.ts';
import { createFileHandles } from './handles.ts';
import type { ContainerInfo, ContainerSource } from './source.ts';

// Names, types and help texts as cAdvisor (and so the kubelet's /metrics/cadvisor) exposes them.
const c = (name: string, help: string) => family(name, 'counter', help);
const g = (name: string, help: string) => family(name, 'gauge', help);

export const CPU_USAGE = c('container_cpu_usage_seconds_total', 'Cumulative cpu time consumed in seconds.');

/** Stats fields and the family each becomes; a field left undefined emits nothing. */
const STAT_FAMILIES: readonly (readonly [keyof CgroupStats, Family])[] = [
  ['cpuUserSeconds', c('container_cpu_user_seconds_total', 'Cumulative user cpu time consumed in seconds.')],
  [
    'cpuSystemSeconds',
    c('container_cpu_system_seconds_total', 'Cumulative system cpu time consumed in seconds.'),
  ],
  ['cfsPeriods', c('container_cpu_cfs_periods_total', 'Number of elapsed enforcement period intervals.')],
  [
    'cfsThrottledPeriods',
    c('container_cpu_cfs_throttled_periods_total', 'Number of throttled period intervals.'),
  ],
  [
    'cfsThrottledSeconds',
    c('container_cpu_cfs_throttled_seconds_total', 'Total time duration the container has been throttled.'),
  ],
  [
    'memoryUsage',
    g(
      'container_memory_usage_bytes',
      'Current memory usage in bytes, including all memory regardless of when it was accessed',
    ),
  ],
  ['memoryMaxUsage', g('container_memory_max_usage_bytes', 'Maximum memory usage recorded in bytes')],
  ['memoryWorkingSet', g('container_memory_working_set_bytes', 'Current working set in bytes.')],
  ['memoryRss', g('container_memory_rss', 'Size of RSS in bytes.')],
  ['memoryCache', g('container_memory_cache', 'Number of bytes of page cache memory.')],
  ['memorySwap', g('container_memory_swap', 'Container swap usage in bytes.')],
  ['memoryMappedFile', g('container_memory_mapped_file', 'Size of memory mapped files in bytes.')],
  ['memoryFailcnt', c('container_memory_failcnt', 'Number of memory usage hits limits')],
  ['oomEvents', c('container_oom_events_total', 'Count of out of memory events observed for the container')],
  ['memoryLimit', g('container_spec_memory_limit_bytes', 'Memory limit for the container.')],
  ['cpuShares', g('container_spec_cpu_shares', 'CPU share of the container.')],
];
// cAdvisor leaves quota and period out when they are 0 (no CFS limit).
const CPU_QUOTA = g('container_spec_cpu_quota', 'CPU quota of the container.');
const CPU_PERIOD = g('container_spec_cpu_period', 'CPU period of the container.');
const START_TIME = g(
  'container_start_time_seconds',
  'Start time of the container since unix epoch in seconds.',
);
const LAST_SEEN = g('container_last_seen', 'Last time a container was seen by the exporter');

/** /proc/net/dev columns (see netdev.ts) → cAdvisor's container_network_* families. */
const NETWORK: readonly (readonly [number, Family])[] = [
  [0, c('container_network_receive_bytes_total', 'Cumulative count of bytes received')],
  [1, c('container_network_receive_packets_total', 'Cumulative count of packets received')],
  [2, c('container_network_receive_errors_total', 'Cumulative count of errors encountered while receiving')],
  [
    3,
    c(
      'container_network_receive_packets_dropped_total',
      'Cumulative count of packets dropped while receiving',
    ),
  ],
  [8, c('container_network_transmit_bytes_total', 'Cumulative count of bytes transmitted')],
  [9, c('container_network_transmit_packets_total', 'Cumulative count of packets transmitted')],
  [
    10,
    c('container_network_transmit_errors_total', 'Cumulative count of errors encountered while transmitting'),
  ],
  [
    11,
    c(
      'container_network_transmit_packets_dropped_total',
      'Cumulative count of packets dropped while transmitting',
    ),
  ],
];

export const CONTAINER_FAMILIES: readonly Family[] = [
  CPU_USAGE,
  ...STAT_FAMILIES.map(([, f]) => f),
  CPU_QUOTA,
  CPU_PERIOD,
  START_TIME,
  LAST_SEEN,
  ...NETWORK.map(([, f]) => f),
];

/** How long container_spec_* values are reused before their files are read again. */
export const SPEC_REFRESH_MS = 60_000;

type Spec = Pick<CgroupStats, (typeof SPEC_FIELDS)[number]> & { readAt: number };

export interface ContainerCollectorDeps {
  readonly settings: ContainersConfig;
  readonly procRoot: string;
  readonly layout: CgroupLayout;
  readonly source: ContainerSource;
  readonly clock?: () => number;
}

/**
 * container_* series of every container the source knows, read from its cgroup files at scrape
 * time (never Docker's stats API). A container whose cgroup is gone is skipped, so series of
 * removed containers stop at once, whether or not the source has heard of the removal yet.
 */
export function createContainerCollector(deps: ContainerCollectorDeps): Collector & { close(): void } {
  const { settings, procRoot, layout, source } = deps;
  const clock = deps.clock ?? Date.now;
  const exclude = settings.interfaceExclude === '' ? undefined : new RegExp(settings.interfaceExclude);
  const handles = createFileHandles();
  // Files read at every scrape stay open; the limit files, read once a minute, are not worth a
  // held descriptor (every open fd also costs the agent's process_open_fds a directory entry).
  const read: Read = (dir, file) =>
    SPEC_FILES.has(file) ? readOptional(dir, file) : handles.read(`${dir}/${file}`);
  // Label sets built once per container (and interface), so the registry renders each once.
  const cpuTotal = new WeakMap<ContainerInfo, Labels>();
  const perInterface = new WeakMap<ContainerInfo, Map<string, Labels>>();
  /** cgroup path → the pid whose net/dev we hold open, to close both when the container goes. */
  let seen = new Map<string, number | undefined>();
  const specs = new Map<string, Spec>();

  /** Stats with the spec fields filled from the cache, re-read once it is SPEC_REFRESH_MS old. */
  const statsOf = (info: ContainerInfo, nowMs: number): CgroupStats | undefined => {
    const cached = specs.get(info.cgroupPath);
    const fresh = cached !== undefined && nowMs - cached.readAt < SPEC_REFRESH_MS;
    const stats = readCgroupStats(layout, info.cgroupPath, read, !fresh);
    if (!stats) return undefined;
    if (fresh) {
      for (const field of SPEC_FIELDS) if (cached[field] !== undefined) stats[field] = cached[field];
    } else {
      const spec: Spec = { readAt: nowMs };
      for (const field of SPEC_FIELDS) if (stats[field] !== undefined) spec[field] = stats[field];
      specs.set(info.cgroupPath, spec);
    }
    return stats;
  };

  const network = (info: ContainerInfo, pid: number | undefined, emit: Emit) => {
    if (pid === undefined) return;
    const text = handles.read(`${procRoot}/${pid}/net/dev`);
    if (text === undefined) return;
    let byInterface = perInterface.get(info);
    if (!byInterface) {
      byInterface = new Map();
      perInterface.set(info, byInterface);
    }
    for (const [iface, values] of parseNetDev(text)) {
      if (exclude?.test(iface)) continue;
      let labels = byInterface.get(iface);
      if (!labels) {
        labels = { ...info.labels, interface: iface };
        byInterface.set(iface, labels);
      }
      for (const [column, f] of NETWORK) emit(f, values[column]!, labels);
    }
  };

  const forget = (cgroupPath: string, pid: number | undefined) => {
    for (const dir of cgroupDirs(layout, cgroupPath)) handles.closeUnder(`${dir}/`);
    if (pid !== undefined) handles.closeUnder(`${procRoot}/${pid}/`);
  };

  return {
    families: CONTAINER_FAMILIES,
    close: () => handles.closeAll(),
    async collect(emit) {
      const nowMs = clock();
      const now = nowMs / 1000;
      const current = new Map<string, number | undefined>();
      const list = source.list();
      const reportsNetwork = networkOwners(list, procRoot, layout, read);
      for (const info of list) {
        const pid = info.pid ?? firstPid(layout, info.cgroupPath, read);
        current.set(info.cgroupPath, pid);
        const stats = statsOf(info, nowMs);
        if (!stats) continue;
        const labels = info.labels;
        if (stats.cpuUsageSeconds !== undefined) {
          let withCpu = cpuTotal.get(info);
          if (!withCpu) {
            withCpu = { ...labels, cpu: 'total' };
            cpuTotal.set(info, withCpu);
          }
          emit(CPU_USAGE, stats.cpuUsageSeconds, withCpu);
        }
        for (const [field, f] of STAT_FAMILIES) {
          const value = stats[field];
          if (value !== undefined) emit(f, value, labels);
        }
        if (stats.cpuQuota) emit(CPU_QUOTA, stats.cpuQuota, labels);
        if (stats.cpuPeriod) emit(CPU_PERIOD, stats.cpuPeriod, labels);
        if (info.startTime !== undefined) emit(START_TIME, info.startTime, labels);
        emit(LAST_SEEN, now, labels);
        if (reportsNetwork.has(info)) network(info, pid, emit);
      }
      for (const [path, pid] of seen) {
        if (!current.has(path)) {
          forget(path, pid);
          specs.delete(path);
        } else if (current.get(path) !== pid && pid !== undefined) handles.closeUnder(`${procRoot}/${pid}/`);
      }
      seen = current;
    },
  };
}

/**
 * The containers whose network series we report: those the source says own their netns, and —
 * where the source cannot say (the cgroup layout) — one container per network namespace, the
 * pod's unnamed (pause) container first, never the host's namespace (hostNetwork pods).
 */
function networkOwners(
  list: readonly ContainerInfo[],
  procRoot: string,
  layout: CgroupLayout,
  read: Read,
): Set<ContainerInfo> {
  const owners = new Set<ContainerInfo>();
  const unknown: ContainerInfo[] = [];
  for (const info of list) {
    if (info.ownNetwork === true) owners.add(info);
    else if (info.ownNetwork === undefined) unknown.push(info);
  }
  if (unknown.length === 0) return owners;
  const netnsOf = (pid: number | undefined) => {
    if (pid === undefined) return undefined;
    try {
      return readlinkSync(`${procRoot}/${pid}/ns/net`);
    } catch {
      return undefined;
    }
  };
  // The host's netns: PID 1's, or (where that link is not readable) the agent's own — the
  // DaemonSet runs with hostNetwork, as the CNI side needs.
  let self: string | undefined;
  try {
    self = readlinkSync('/proc/self/ns/net');
  } catch {
    self = undefined;
  }
  const taken = new Set<string>([netnsOf(1), self].filter((ns): ns is string => ns !== undefined));
  unknown.sort((a, b) => Number(a.labels.container !== '') - Number(b.labels.container !== ''));
  for (const info of unknown) {
    const ns = netnsOf(info.pid ?? firstPid(layout, info.cgroupPath, read));
    // Unreadable (no permission, fixture trees): report, as cAdvisor would.
    if (ns === undefined) {
      owners.add(info);
      continue;
    }
    if (taken.has(ns)) continue;
    taken.add(ns);
    owners.add(info);
  }
  return owners;
}

/** The first process of a cgroup (for its network namespace), or undefined if it has none. */
function firstPid(layout: CgroupLayout, cgroupPath: string, read: Read): number | undefined {
  const [dir] = cgroupDirs(layout, cgroupPath);
  const text = read(dir!, 'cgroup.procs');
  const first = text === undefined ? Number.NaN : Number.parseInt(text, 10);
  return Number.isNaN(first) ? undefined : first;
}
