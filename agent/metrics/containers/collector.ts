import { readFileSync, readlinkSync } from 'node:fs';
import type { ContainersConfig } from '../../../shared/config/index.ts';
import { type Collector, type Emit, type Family, family, type Labels } from '../collector.ts';
import { parseNetDev } from '../collectors/netdev.ts';
import { fdCounter } from '../procfs.ts';
import {
  BLKIO_FILES,
  type CgroupDirs,
  type CgroupLayout,
  type CgroupStats,
  cgroupDirs,
  cgroupDirsOf,
  parseBlkio,
  type Read,
  readCgroupStats,
  readOptional,
  SPEC_FIELDS,
  scanRoot,
} from './cgroup.ts';
import { createFileHandles } from './handles.ts';
import { createPodCgroups } from './kubelet-cgroups.ts';
import { type MachineInfo, readMachineInfo } from './machine.ts';
import type { ContainerInfo, ContainerSource } from './source.ts';
import type { WritableLayers } from './writable-layer.ts';

// Names, types and help texts as cAdvisor (and so the kubelet's /metrics/cadvisor) exposes them.
const c = (name: string, help: string) => family(name, 'counter', help);
const g = (name: string, help: string) => family(name, 'gauge', help);

export const CPU_USAGE = c('container_cpu_usage_seconds_total', 'Cumulative cpu time consumed in seconds.');

/** Stats fields and the family each becomes; a field left undefined emits nothing. */
const STAT_FAMILIES: readonly (readonly [Exclude<keyof CgroupStats, 'io'>, Family])[] = [
  ['cpuUserSeconds', c('container_cpu_user_seconds_total', 'Cumulative user cpu time consumed in seconds.')],
  [
    'cpuSystemSeconds',
    c('container_cpu_system_seconds_total', 'Cumulative system cpu time consumed in seconds.'),
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
  ['threads', g('container_threads', 'Number of threads running inside the container')],
];
/** CFS counters: only for a container with a CPU quota, as cAdvisor (without one they stay 0). */
const CFS_FAMILIES: readonly (readonly [Exclude<keyof CgroupStats, 'io'>, Family])[] = [
  ['cfsPeriods', c('container_cpu_cfs_periods_total', 'Number of elapsed enforcement period intervals.')],
  [
    'cfsThrottledPeriods',
    c('container_cpu_cfs_throttled_periods_total', 'Number of throttled period intervals.'),
  ],
  [
    'cfsThrottledSeconds',
    c('container_cpu_cfs_throttled_seconds_total', 'Total time duration the container has been throttled.'),
  ],
];
// cAdvisor leaves quota and period out when they are 0 (no CFS limit).
const CPU_QUOTA = g('container_spec_cpu_quota', 'CPU quota of the container.');
const CPU_PERIOD = g('container_spec_cpu_period', 'CPU period of the container.');
const START_TIME = g(
  'container_start_time_seconds',
  'Start time of the container since unix epoch in seconds.',
);
const LAST_SEEN = g('container_last_seen', 'Last time a container was seen by the exporter');
/** cAdvisor's process metrics: from cgroup.procs (the cgroup's own processes) and /proc/<pid>/fd. */
const PROCESSES = g('container_processes', 'Number of processes running inside the container.');
const FILE_DESCRIPTORS = g(
  'container_file_descriptors',
  'Number of open file descriptors for the container.',
);
/** The writable layer (containerd and CRI-O, from the CRI: writable-layer.ts). */
const FS_USAGE = g(
  'container_fs_usage_bytes',
  'Number of bytes that are consumed by the container on this filesystem.',
);
const FS_LIMIT = g(
  'container_fs_limit_bytes',
  'Number of bytes that can be consumed by the container on this filesystem.',
);
const MACHINE_CORES = g('machine_cpu_cores', 'Number of logical CPU cores.');
const MACHINE_MEMORY = g('machine_memory_bytes', 'Amount of memory installed on the machine.');

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

/** Block I/O per device (cgroup v1 blkio, v2 io.stat), cAdvisor's DiskIO metrics. */
const FS_READ_BYTES = c('container_fs_reads_bytes_total', 'Cumulative count of bytes read');
const FS_WRITE_BYTES = c('container_fs_writes_bytes_total', 'Cumulative count of bytes written');
const FS_READS = c('container_fs_reads_total', 'Cumulative count of reads completed');
const FS_WRITES = c('container_fs_writes_total', 'Cumulative count of writes completed');

export const CONTAINER_FAMILIES: readonly Family[] = [
  CPU_USAGE,
  ...STAT_FAMILIES.map(([, f]) => f),
  ...CFS_FAMILIES.map(([, f]) => f),
  CPU_QUOTA,
  CPU_PERIOD,
  START_TIME,
  LAST_SEEN,
  ...NETWORK.map(([, f]) => f),
  FS_READ_BYTES,
  FS_WRITE_BYTES,
  FS_READS,
  FS_WRITES,
  FS_USAGE,
  FS_LIMIT,
  PROCESSES,
  FILE_DESCRIPTORS,
  MACHINE_CORES,
  MACHINE_MEMORY,
];

/** How long container_spec_* values are reused before their files are read again. */
export const SPEC_REFRESH_MS = 60_000;

type Spec = Pick<CgroupStats, (typeof SPEC_FIELDS)[number]> & { readAt: number };

export interface ContainerCollectorDeps {
  readonly settings: ContainersConfig;
  readonly procRoot: string;
  /** For block device names (sysRoot/dev/block/<major:minor>/uevent); default /sys. */
  readonly sysRoot?: string;
  /** The host's / (machine-id for the machine_* labels); default /. */
  readonly hostRoot?: string;
  readonly layout: CgroupLayout;
  readonly source: ContainerSource;
  /** Writable layers from the CRI, for containers the cgroup source found (closed with the collector). */
  readonly writableLayers?: WritableLayers;
  readonly clock?: () => number;
}

/**
 * container_* series of every container the source knows, read from its cgroup files at scrape
 * time (never Docker's stats API). A container whose cgroup is gone is skipped, so series of
 * removed containers stop at once, whether or not the source has heard of the removal yet.
 */
export function createContainerCollector(deps: ContainerCollectorDeps): Collector & { close(): void } {
  const { settings, procRoot, layout, source, writableLayers } = deps;
  const clock = deps.clock ?? Date.now;
  const sysRoot = deps.sysRoot ?? '/sys';
  const machineInfo = machineReader({ procRoot, sysRoot, hostRoot: deps.hostRoot ?? '/' });
  const fdCount = fdCounter(procRoot);
  const exclude = settings.interfaceExclude === '' ? undefined : new RegExp(settings.interfaceExclude);
  const handles = createFileHandles();
  // Files read at every scrape stay open; the limit files, read once a minute, are not worth a
  // held descriptor (every open fd also costs the agent's process_open_fds a directory entry).
  const read: Read = handles.read;
  const podCgroups = createPodCgroups(scanRoot(layout));
  const blkio = blkioFilesOf(layout);
  const deviceName = deviceNames(sysRoot);
  // Per container, built once: its directories (the same strings at every read, so the handle
  // map never hashes a new path) and its label sets, so the registry renders each once.
  const states = new WeakMap<ContainerInfo, ContainerState>();
  const stateOf = (info: ContainerInfo): ContainerState => {
    let state = states.get(info);
    if (!state) {
      state = { dirs: cgroupDirsOf(layout, info.cgroupPath), interfaces: new Map(), devices: new Map() };
      states.set(info, state);
    }
    return state;
  };
  /** cgroup path → the pid whose net/dev we hold open, to close both when the container goes. */
  let seen = new Map<string, number | undefined>();
  const specs = new Map<string, Spec>();

  /** Stats with the spec fields filled from the cache, re-read once it is SPEC_REFRESH_MS old. */
  const statsOf = (
    info: ContainerInfo,
    dirs: CgroupDirs,
    blkioFiles: BlkioFiles,
    nowMs: number,
  ): CgroupStats | undefined => {
    const cached = specs.get(info.cgroupPath);
    const fresh = cached !== undefined && nowMs - cached.readAt < SPEC_REFRESH_MS;
    // Without a quota no CFS series is emitted (see collect): v1's cpu.stat is then not read.
    const cfs = !fresh || Boolean(cached.cpuQuota);
    const stats = readCgroupStats(layout, info.cgroupPath, read, {
      spec: !fresh,
      readSpec: readOptional,
      cfs,
      dirs,
      blkioFiles,
    });
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

  const network = (info: ContainerInfo, state: ContainerState, pid: number | undefined, emit: Emit) => {
    if (pid === undefined) return;
    if (state.netDir === undefined || state.netPid !== pid) {
      state.netDir = `${procRoot}/${pid}/net`;
      state.netPid = pid;
    }
    const text = handles.read(state.netDir, 'dev');
    if (text === undefined) return;
    for (const [iface, values] of parseNetDev(text)) {
      if (exclude?.test(iface)) continue;
      let labels = state.interfaces.get(iface);
      if (!labels) {
        labels = { ...info.labels, interface: iface };
        state.interfaces.set(iface, labels);
      }
      for (const [column, f] of NETWORK) emit(f, values[column]!, labels);
    }
  };

  /** container_processes and container_file_descriptors from the cgroup's own processes. */
  const processes = (procs: string | undefined, labels: Labels, emit: Emit) => {
    if (procs === undefined) return;
    let count = 0;
    let fds = 0;
    let fdsKnown = false;
    let start = 0;
    while (start < procs.length) {
      let end = procs.indexOf('\n', start);
      if (end < 0) end = procs.length;
      if (end > start) {
        count++;
        const n = fdCount(procs.slice(start, end));
        if (n !== undefined) {
          fds += n;
          fdsKnown = true;
        }
      }
      start = end + 1;
    }
    emit(PROCESSES, count, labels);
    // No process's fd directory readable (no permission): no series rather than a false 0.
    if (fdsKnown || count === 0) emit(FILE_DESCRIPTORS, fds, labels);
  };

  const writableLayer = (info: ContainerInfo, state: ContainerState, emit: Emit) => {
    if (info.containerId === undefined || source.kind !== 'cgroups') return;
    const layer = writableLayers?.get(info.containerId);
    if (!layer) return;
    if (state.layerLabels?.device !== layer.device)
      state.layerLabels = { ...info.labels, device: layer.device };
    emit(FS_USAGE, layer.usageBytes, state.layerLabels);
    if (layer.limitBytes !== undefined) emit(FS_LIMIT, layer.limitBytes, state.layerLabels);
  };

  const fs = (info: ContainerInfo, state: ContainerState, stats: CgroupStats, emit: Emit) => {
    for (const io of stats.io ?? []) {
      let labels = state.devices.get(io.device);
      if (!labels) {
        labels = { ...info.labels, device: deviceName(io.device) };
        state.devices.set(io.device, labels);
      }
      emit(FS_READ_BYTES, io.readBytes, labels);
      emit(FS_WRITE_BYTES, io.writeBytes, labels);
      emit(FS_READS, io.reads, labels);
      emit(FS_WRITES, io.writes, labels);
    }
  };

  const forget = (cgroupPath: string, pid: number | undefined) => {
    for (const dir of cgroupDirs(layout, cgroupPath)) handles.closeUnder(`${dir}/`);
    if (pid !== undefined) handles.closeUnder(`${procRoot}/${pid}/`);
  };

  return {
    families: CONTAINER_FAMILIES,
    close: () => {
      handles.closeAll();
      writableLayers?.close();
    },
    async collect(emit) {
      const nowMs = clock();
      const now = nowMs / 1000;
      const machine = machineInfo(nowMs);
      if (machine) {
        emit(MACHINE_CORES, machine.cores, machine.labels);
        emit(MACHINE_MEMORY, machine.memoryBytes, machine.labels);
      }
      if (source.kind === 'cgroups') await writableLayers?.refresh(nowMs);
      const current = new Map<string, number | undefined>();
      const list = podCgroups(source.list());
      // Each container's processes (cgroup.procs, held open), and one inside it for its netns
      // where the source does not know one — none where the container has no network of its own.
      const procs = new Map<ContainerInfo, string | undefined>();
      const pids = new Map<ContainerInfo, number | undefined>();
      for (const info of list) {
        const text = read(stateOf(info).dirs.memory, 'cgroup.procs');
        procs.set(info, text);
        pids.set(info, info.pid ?? (info.ownNetwork === false ? undefined : firstPid(text)));
      }
      const reportsNetwork = networkOwners(list, procRoot, (info) => pids.get(info));
      const blkioFiles = blkio(read);
      for (const info of list) {
        const state = stateOf(info);
        const pid = pids.get(info);
        current.set(info.cgroupPath, pid);
        const stats = statsOf(info, state.dirs, blkioFiles, nowMs);
        if (!stats) continue;
        const labels = info.labels;
        if (stats.cpuUsageSeconds !== undefined) {
          state.cpuTotal ??= { ...labels, cpu: 'total' };
          emit(CPU_USAGE, stats.cpuUsageSeconds, state.cpuTotal);
        }
        for (const [field, f] of STAT_FAMILIES) {
          const value = stats[field];
          if (value !== undefined) emit(f, value, labels);
        }
        if (stats.cpuQuota) {
          for (const [field, f] of CFS_FAMILIES) {
            const value = stats[field];
            if (value !== undefined) emit(f, value, labels);
          }
          emit(CPU_QUOTA, stats.cpuQuota, labels);
        }
        if (stats.cpuPeriod) emit(CPU_PERIOD, stats.cpuPeriod, labels);
        if (info.startTime !== undefined) emit(START_TIME, info.startTime, labels);
        emit(LAST_SEEN, now, labels);
        processes(procs.get(info), labels, emit);
        if (reportsNetwork.has(info)) network(info, state, pid, emit);
        fs(info, state, stats, emit);
        writableLayer(info, state, emit);
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

interface ContainerState {
  readonly dirs: CgroupDirs;
  cpuTotal?: Labels;
  readonly interfaces: Map<string, Labels>;
  /** major:minor → labels with the device's name. */
  readonly devices: Map<string, Labels>;
  /** Labels of the writable layer's series (with its filesystem's device). */
  layerLabels?: Labels;
  netDir?: string;
  netPid?: number;
}

type BlkioFiles = readonly (readonly [string, string])[];

/**
 * Which v1 blkio files are worth trying at this scrape. A pair the kernel does not offer at the
 * hierarchy's root (CFQ's on kernels since 5.0, BFQ's without the BFQ scheduler) is never tried;
 * a pair whose root file — recursive, so it sums every cgroup — has no entries cannot have any in
 * a container either, so one read at the root spares one per container. v2 has one file, io.stat.
 */
function blkioFilesOf(layout: CgroupLayout): (read: Read) => BlkioFiles {
  if (layout.version === 2 || layout.blkio === undefined) return () => [];
  const root = layout.blkio;
  const offered = BLKIO_FILES.filter(([serviced]) => readOptional(root, serviced) !== undefined);
  const last = offered.length - 1;
  return (read) =>
    offered.filter(
      ([serviced], i) =>
        i === last ||
        !serviced.endsWith('_recursive') ||
        parseBlkio(read(root, serviced) ?? '', serviced).size > 0,
    );
}

/**
 * cAdvisor's `device` label: /dev/<name> of a major:minor, as its machine info names disks; the
 * kernel's DEVNAME from sysfs, read once per device. When sysfs does not know it, the major:minor
 * itself — not cAdvisor's "", which gives two unknown devices the same series (a duplicate that
 * breaks the scrape).
 */
function deviceNames(sysRoot: string): (majorMinor: string) => string {
  const names = new Map<string, string>();
  return (majorMinor) => {
    let name = names.get(majorMinor);
    if (name === undefined) {
      name = majorMinor;
      try {
        const uevent = readFileSync(`${sysRoot}/dev/block/${majorMinor}/uevent`, 'latin1');
        const m = /^DEVNAME=(.+)$/m.exec(uevent);
        if (m) name = `/dev/${m[1]}`;
      } catch {
        // Unknown device (gone, or sysfs not the host's).
      }
      names.set(majorMinor, name);
    }
    return name;
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
  pidOf: (info: ContainerInfo) => number | undefined,
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
    const ns = netnsOf(pidOf(info));
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

/** The first process of a cgroup.procs text (for its network namespace), or undefined if none. */
function firstPid(procs: string | undefined): number | undefined {
  const first = procs === undefined ? Number.NaN : Number.parseInt(procs, 10);
  return Number.isNaN(first) ? undefined : first;
}

/** Machine info, read again once SPEC_REFRESH_MS old; undefined when procfs does not offer it. */
function machineReader(
  roots: Parameters<typeof readMachineInfo>[0],
): (nowMs: number) => MachineInfo | undefined {
  let info: MachineInfo | undefined;
  let readAt = Number.NEGATIVE_INFINITY;
  return (nowMs) => {
    if (nowMs - readAt >= SPEC_REFRESH_MS) {
      readAt = nowMs;
      try {
        info = readMachineInfo(roots);
      } catch {
        info = undefined;
      }
    }
    return info;
  };
}
