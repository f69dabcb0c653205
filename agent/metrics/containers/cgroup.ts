import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fieldsOf, isAbsent, numberFrom, readKernelFileSync } from '../procfs.ts';

/**
 * Where the controllers we read live. v2: one tree (cgroup.controllers at its root). v1: a tree per
 * controller, cpu and cpuacct often co-mounted as `cpu,cpuacct`. A hybrid host (v1 controllers plus
 * an empty v2 tree at `unified/`) counts as v1: the controllers, and so the numbers, are there.
 */
export type CgroupLayout =
  | { readonly version: 2; readonly root: string }
  | {
      readonly version: 1;
      readonly cpu: string;
      readonly cpuacct: string;
      readonly memory: string;
      /** Absent when the blkio controller is not mounted: no container_fs_* series then. */
      readonly blkio?: string;
      /** Absent when the pids controller is not mounted: no container_threads then. */
      readonly pids?: string;
    };

export function detectCgroupLayout(cgroupRoot: string): CgroupLayout {
  if (existsSync(join(cgroupRoot, 'cgroup.controllers'))) return { version: 2, root: cgroupRoot };
  const first = (...names: string[]) =>
    names.map((n) => join(cgroupRoot, n)).find((dir) => existsSync(dir)) ?? join(cgroupRoot, names[0]!);
  const blkio = join(cgroupRoot, 'blkio');
  const pids = join(cgroupRoot, 'pids');
  return {
    version: 1,
    cpu: first('cpu', 'cpu,cpuacct', 'cpuacct,cpu'),
    cpuacct: first('cpuacct', 'cpu,cpuacct', 'cpuacct,cpu'),
    memory: first('memory'),
    ...(existsSync(blkio) ? { blkio } : {}),
    ...(existsSync(pids) ? { pids } : {}),
  };
}

/** The directory of the hierarchy a layout enumerates containers in (memory for v1: always there). */
export function scanRoot(layout: CgroupLayout): string {
  return layout.version === 2 ? layout.root : layout.memory;
}

/**
 * One container's resource numbers, in cAdvisor's units (seconds, bytes). A field is undefined
 * when the kernel does not offer it (controller not enabled, older kernel): its series is left out.
 */
export interface CgroupStats {
  cpuUsageSeconds?: number;
  cpuUserSeconds?: number;
  cpuSystemSeconds?: number;
  cfsPeriods?: number;
  cfsThrottledPeriods?: number;
  cfsThrottledSeconds?: number;
  /** Spec: quota and period in microseconds as cAdvisor exports them; quota 0 = unlimited. */
  cpuQuota?: number;
  cpuPeriod?: number;
  cpuShares?: number;
  memoryUsage?: number;
  memoryMaxUsage?: number;
  memoryWorkingSet?: number;
  memoryRss?: number;
  memoryCache?: number;
  memorySwap?: number;
  memoryMappedFile?: number;
  memoryFailcnt?: number;
  /** 0 when unlimited, as cAdvisor reports it. */
  memoryLimit?: number;
  oomEvents?: number;
  /** Tasks (threads) in the cgroup and its descendants: pids.current, cAdvisor's container_threads. */
  threads?: number;
  /** Block I/O per device (container_fs_*): only devices the cgroup did I/O on, as the kernel lists them. */
  io?: DeviceIo[];
}

/** One device's block I/O counters of a cgroup (recursive: its descendants included). */
export interface DeviceIo {
  /** `major:minor`, named by the collector (/sys/dev/block/<major:minor>/uevent). */
  readonly device: string;
  readBytes: number;
  writeBytes: number;
  reads: number;
  writes: number;
}

/**
 * The v1 blkio files cAdvisor reads, in runc's order: per pair (io_serviced, io_service_bytes),
 * the first whose io_serviced has entries wins. BFQ's files count only I/O on devices the BFQ
 * scheduler runs; CFQ's exist only on kernels before 5.0; the throttle files count every device.
 */
export const BLKIO_FILES: readonly (readonly [serviced: string, bytes: string])[] = [
  ['blkio.bfq.io_serviced_recursive', 'blkio.bfq.io_service_bytes_recursive'],
  ['blkio.io_serviced_recursive', 'blkio.io_service_bytes_recursive'],
  ['blkio.throttle.io_serviced_recursive', 'blkio.throttle.io_service_bytes_recursive'],
  ['blkio.throttle.io_serviced', 'blkio.throttle.io_service_bytes'],
];

/**
 * A v1 blkio stat file (`<major:minor> <Read|Write|Sync|Async|Discard|Total> <n>` lines and a last
 * `Total <n>`) as Read and Write per device. An empty file or a lone `Total 0` gives no devices.
 */
export function parseBlkio(text: string, where: string): Map<string, { read: number; write: number }> {
  const out = new Map<string, { read: number; write: number }>();
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const first = text.indexOf(' ', start);
    if (end > start && !text.startsWith('Total', start)) {
      const second = first < 0 ? -1 : text.indexOf(' ', first + 1);
      if (first < 0 || second < 0 || second > end)
        throw new Error(`${where}: malformed line ${JSON.stringify(text.slice(start, end))}`);
      const op = text.slice(first + 1, second);
      if (op === 'Read' || op === 'Write') {
        const device = text.slice(start, first);
        let entry = out.get(device);
        if (!entry) {
          entry = { read: 0, write: 0 };
          out.set(device, entry);
        }
        const value = numberFrom(text.slice(second + 1, end).trim(), `${where} ${device} ${op}`);
        if (op === 'Read') entry.read = value;
        else entry.write = value;
      }
    }
    start = end + 1;
  }
  return out;
}

/**
 * v2 io.stat (`<major:minor> rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…` per device) as
 * cAdvisor maps it: rbytes/wbytes → bytes read/written, rios/wios → reads/writes.
 */
export function parseIoStat(text: string, where: string): DeviceIo[] {
  const out: DeviceIo[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [device = '', ...pairs] = fieldsOf(line);
    const io: DeviceIo = { device, readBytes: 0, writeBytes: 0, reads: 0, writes: 0 };
    for (const pair of pairs) {
      const eq = pair.indexOf('=');
      if (eq < 0) throw new Error(`${where}: malformed line ${JSON.stringify(line)}`);
      const key = pair.slice(0, eq);
      const field =
        key === 'rbytes'
          ? 'readBytes'
          : key === 'wbytes'
            ? 'writeBytes'
            : key === 'rios'
              ? 'reads'
              : key === 'wios'
                ? 'writes'
                : undefined;
      if (field) io[field] = numberFrom(pair.slice(eq + 1), `${where} ${device} ${key}`);
    }
    out.push(io);
  }
  return out;
}

const RECURSIVE = '_recursive';

/**
 * A v1 cgroup's block I/O from the first of `files` (see BLKIO_FILES) that has entries; undefined
 * when none has (no I/O yet, or no accounting: throttle stats count only on a queue where
 * blk-throttle was ever configured, on recent kernels).
 */
export function readBlkio(
  dir: string,
  read: Read,
  files: readonly (readonly [string, string])[] = BLKIO_FILES,
): DeviceIo[] | undefined {
  // A `_recursive` file lists the devices of the cgroup's own blkio groups (summed over its
  // descendants too); its non-recursive twin lists the same groups' own counts. No device in the
  // first, none in the second: not read (one read per container per scrape, in the usual case of
  // a container without block I/O).
  let emptyRecursive: string | undefined;
  for (const [servicedFile, bytesFile] of files) {
    if (servicedFile === emptyRecursive) continue;
    const servicedText = read(dir, servicedFile);
    if (servicedText === undefined) continue;
    const serviced = parseBlkio(servicedText, servicedFile);
    if (serviced.size === 0) {
      if (servicedFile.endsWith(RECURSIVE)) emptyRecursive = servicedFile.slice(0, -RECURSIVE.length);
      continue;
    }
    const bytesText = read(dir, bytesFile);
    const bytes = bytesText === undefined ? new Map() : parseBlkio(bytesText, bytesFile);
    const out: DeviceIo[] = [];
    for (const [device, ops] of serviced) {
      const b = bytes.get(device);
      out.push({
        device,
        readBytes: b?.read ?? 0,
        writeBytes: b?.write ?? 0,
        reads: ops.read,
        writes: ops.write,
      });
    }
    return out;
  }
  return undefined;
}

/** `key value` lines (cpu.stat, memory.stat, cpuacct.stat, memory.events) as a map. */
export function parseFlatKeyed(text: string, where: string): Map<string, number> {
  const out = new Map<string, number>();
  // indexOf rather than a split on /\s+/: memory.stat has ≈ 40 lines, read for every container.
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const space = text.indexOf(' ', start);
    if (end > start) {
      if (space < 0 || space > end)
        throw new Error(`${where}: malformed line ${JSON.stringify(text.slice(start, end))}`);
      const key = text.slice(start, space);
      out.set(key, numberFrom(text.slice(space + 1, end).trim(), `${where} ${key}`));
    }
    start = end + 1;
  }
  return out;
}

/** `key ` and `\nkey `, made once per key rather than per file read. */
const NEEDLES = new Map<string, readonly [first: string, later: string]>();

/**
 * The values of a few keys of a `key value` file, without building a map of all of them:
 * memory.stat has ≈ 40 lines and we need 5, for every container at every scrape.
 */
export function pickKeyed<K extends string>(
  text: string,
  keys: readonly K[],
  where: string,
): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (const key of keys) {
    let needles = NEEDLES.get(key);
    if (needles === undefined) {
      needles = [`${key} `, `\n${key} `];
      NEEDLES.set(key, needles);
    }
    const [first, later] = needles;
    let from: number;
    if (text.startsWith(first)) from = first.length;
    else {
      const at = text.indexOf(later);
      if (at < 0) continue;
      from = at + later.length;
    }
    let end = text.indexOf('\n', from);
    if (end < 0) end = text.length;
    // Number() trims; the name of the failing file is built only on failure (this runs ≈ 20× per container).
    const value = end > from ? Number(text.slice(from, end)) : Number.NaN;
    out[key] = Number.isFinite(value) ? value : numberFrom(text.slice(from, end).trim(), `${where} ${key}`);
  }
  return out;
}

/** v1 writes "unlimited" as the largest page-aligned int64 (9223372036854771712); anything that big is no limit. */
const V1_UNLIMITED = 2 ** 62;

/** A single-number file; v2's "max" and v1's near-2^63 both mean unlimited (→ 0). */
export function parseLimit(text: string, where: string): number {
  const t = text.trim();
  if (t === 'max') return 0;
  const value = numberFrom(t, where);
  return value >= V1_UNLIMITED ? 0 : value;
}

/** v2 `cpu.max`: "<quota|max> <period>". */
export function parseCpuMax(text: string): { quota: number; period: number } {
  const [quota = '', period] = fieldsOf(text);
  return {
    quota: quota === 'max' ? 0 : numberFrom(quota, 'cpu.max quota'),
    period: numberFrom(period, 'cpu.max period'),
  };
}

/**
 * v2 cpu.weight (1..10000) as v1 cpu.shares (2..262144), as cAdvisor converts it
 * (container/common/helpers.go, convertCPUWeightToCPULimit): integer division, so rounded down —
 * e.g. weight 4 (what a 100m request, 102 shares, becomes) reads 80 shares, not 81.
 */
export function weightToShares(weight: number): number {
  return 2 + Math.floor(((weight - 1) * 262142) / 9999);
}

const V1_MEMORY_KEYS = [
  'total_rss',
  'total_cache',
  'total_swap',
  'total_mapped_file',
  'total_inactive_file',
] as const;
const V2_MEMORY_KEYS = ['anon', 'file', 'file_mapped', 'inactive_file'] as const;
const V1_CPU_KEYS = ['nr_periods', 'nr_throttled', 'throttled_time'] as const;
const V2_CPU_KEYS = [
  'usage_usec',
  'user_usec',
  'system_usec',
  'nr_periods',
  'nr_throttled',
  'throttled_usec',
] as const;
const ACCT_KEYS = ['user', 'system'] as const;
const OOM_KEYS = ['oom_kill'] as const;
const EVENT_KEYS = ['oom_kill', 'max'] as const;

/** USER_HZ of cpuacct.stat: fixed at 100 for userspace on every architecture. */
const USER_HZ = 100;

export type Read = (dir: string, file: string) => string | undefined;

/** Reads a cgroup file, undefined when the kernel or controller does not offer it. */
export const readOptional: Read = (dir, file) => {
  try {
    return readKernelFileSync(dir, file);
  } catch (err) {
    if (isAbsent(err)) return undefined;
    throw err;
  }
};

/**
 * Working set as cAdvisor defines it: usage minus inactive file pages (the kernel can drop those
 * without the container noticing), never below 0.
 */
const workingSet = (usage: number | undefined, inactiveFile: number | undefined) =>
  usage === undefined ? undefined : Math.max(0, usage - (inactiveFile ?? 0));

/** Where one cgroup's files are, per hierarchy (v2: the same directory for all). */
export interface CgroupDirs {
  readonly memory: string;
  readonly cpu: string;
  readonly cpuacct: string;
  readonly blkio?: string;
  readonly pids?: string;
}

export function cgroupDirsOf(layout: CgroupLayout, path: string): CgroupDirs {
  if (layout.version === 2) {
    const dir = join(layout.root, path);
    return { memory: dir, cpu: dir, cpuacct: dir, blkio: dir, pids: dir };
  }
  return {
    memory: join(layout.memory, path),
    cpu: join(layout.cpu, path),
    cpuacct: join(layout.cpuacct, path),
    ...(layout.blkio !== undefined ? { blkio: join(layout.blkio, path) } : {}),
    ...(layout.pids !== undefined ? { pids: join(layout.pids, path) } : {}),
  };
}

export interface ReadOptions {
  /** false: skip the limit files (see readCgroupStats). Default true. */
  readonly spec?: boolean;
  /**
   * How the limit files (container_spec_*) are read; default `read`. The collector reads them about
   * once a minute, not worth a descriptor held open.
   */
  readonly readSpec?: Read;
  /**
   * v1, false: skip cpu.stat, whose CFS counters are exposed only for a container with a CPU quota
   * (the caller knows there is none from the limits it keeps). Default true. v2's cpu.stat also
   * has the usage, and is always read.
   */
  readonly cfs?: boolean;
  /** v1: the blkio files to try (BLKIO_FILES, or the part of it worth trying this scrape). */
  readonly blkioFiles?: readonly (readonly [string, string])[];
  /** The cgroup's directories, when the caller keeps them (saves a path join per file). */
  readonly dirs?: CgroupDirs;
}

/**
 * Stats of the cgroup at `path` (relative to the hierarchy roots, e.g. /docker/<id>) from v1 files.
 * Returns undefined when the cgroup is gone (the container stopped since it was listed).
 */
export function readCgroupV1(
  layout: Extract<CgroupLayout, { version: 1 }>,
  path: string,
  read: Read = readOptional,
  options: ReadOptions = {},
): CgroupStats | undefined {
  const spec = options.spec ?? true;
  const readSpec = options.readSpec ?? read;
  const dirs = options.dirs ?? cgroupDirsOf(layout, path);
  const mem = dirs.memory;
  const usage = read(mem, 'memory.usage_in_bytes');
  if (usage === undefined) return undefined;
  const stats: CgroupStats = {};
  stats.memoryUsage = numberFrom(usage.trim(), 'memory.usage_in_bytes');
  const limit = spec ? readSpec(mem, 'memory.limit_in_bytes') : undefined;
  if (limit !== undefined) stats.memoryLimit = parseLimit(limit, 'memory.limit_in_bytes');
  const maxUsage = read(mem, 'memory.max_usage_in_bytes');
  if (maxUsage !== undefined) stats.memoryMaxUsage = numberFrom(maxUsage.trim(), 'memory.max_usage_in_bytes');
  const failcnt = read(mem, 'memory.failcnt');
  if (failcnt !== undefined) stats.memoryFailcnt = numberFrom(failcnt.trim(), 'memory.failcnt');
  const memStat = read(mem, 'memory.stat');
  if (memStat !== undefined) {
    // total_* include descendants, which is what a container (or pod) cgroup means.
    const m = pickKeyed(memStat, V1_MEMORY_KEYS, 'memory.stat');
    stats.memoryRss = m.total_rss;
    stats.memoryCache = m.total_cache;
    stats.memorySwap = m.total_swap;
    stats.memoryMappedFile = m.total_mapped_file;
    stats.memoryWorkingSet = workingSet(stats.memoryUsage, m.total_inactive_file);
  }
  const oom = read(mem, 'memory.oom_control');
  if (oom !== undefined) stats.oomEvents = pickKeyed(oom, OOM_KEYS, 'memory.oom_control').oom_kill;

  const acct = dirs.cpuacct;
  const usageNs = read(acct, 'cpuacct.usage');
  if (usageNs !== undefined) stats.cpuUsageSeconds = numberFrom(usageNs.trim(), 'cpuacct.usage') / 1e9;
  const acctStat = read(acct, 'cpuacct.stat');
  if (acctStat !== undefined) {
    const a = pickKeyed(acctStat, ACCT_KEYS, 'cpuacct.stat');
    if (a.user !== undefined) stats.cpuUserSeconds = a.user / USER_HZ;
    if (a.system !== undefined) stats.cpuSystemSeconds = a.system / USER_HZ;
  }

  const cpu = dirs.cpu;
  const cpuStat = (options.cfs ?? true) ? read(cpu, 'cpu.stat') : undefined;
  if (cpuStat !== undefined) {
    const c = pickKeyed(cpuStat, V1_CPU_KEYS, 'cpu.stat');
    stats.cfsPeriods = c.nr_periods;
    stats.cfsThrottledPeriods = c.nr_throttled;
    if (c.throttled_time !== undefined) stats.cfsThrottledSeconds = c.throttled_time / 1e9;
  }
  if (dirs.blkio !== undefined) {
    const io = readBlkio(dirs.blkio, read, options.blkioFiles);
    if (io !== undefined) stats.io = io;
  }
  if (dirs.pids !== undefined) readThreads(dirs.pids, read, stats);
  if (!spec) return stats;
  const quota = readSpec(cpu, 'cpu.cfs_quota_us');
  if (quota !== undefined) stats.cpuQuota = Math.max(0, numberFrom(quota.trim(), 'cpu.cfs_quota_us'));
  const period = readSpec(cpu, 'cpu.cfs_period_us');
  if (period !== undefined) stats.cpuPeriod = numberFrom(period.trim(), 'cpu.cfs_period_us');
  const shares = readSpec(cpu, 'cpu.shares');
  if (shares !== undefined) stats.cpuShares = numberFrom(shares.trim(), 'cpu.shares');
  return stats;
}

/** Stats of the cgroup at `path` from v2 files; undefined when the cgroup is gone. */
export function readCgroupV2(
  layout: Extract<CgroupLayout, { version: 2 }>,
  path: string,
  read: Read = readOptional,
  options: ReadOptions = {},
): CgroupStats | undefined {
  const spec = options.spec ?? true;
  const readSpec = options.readSpec ?? read;
  const dir = options.dirs?.memory ?? join(layout.root, path);
  // cpu.stat's usage lines come from the cgroup core: present even without the cpu controller.
  const cpuStat = read(dir, 'cpu.stat');
  if (cpuStat === undefined) return undefined;
  const stats: CgroupStats = {};
  const c = pickKeyed(cpuStat, V2_CPU_KEYS, 'cpu.stat');
  const usec = (v: number | undefined) => (v === undefined ? undefined : v / 1e6);
  stats.cpuUsageSeconds = usec(c.usage_usec);
  stats.cpuUserSeconds = usec(c.user_usec);
  stats.cpuSystemSeconds = usec(c.system_usec);
  stats.cfsPeriods = c.nr_periods;
  stats.cfsThrottledPeriods = c.nr_throttled;
  stats.cfsThrottledSeconds = usec(c.throttled_usec);
  const max = spec ? readSpec(dir, 'cpu.max') : undefined;
  if (max !== undefined) {
    const { quota, period } = parseCpuMax(max);
    stats.cpuQuota = quota;
    stats.cpuPeriod = period;
  }
  const weight = spec ? readSpec(dir, 'cpu.weight') : undefined;
  if (weight !== undefined) stats.cpuShares = weightToShares(numberFrom(weight.trim(), 'cpu.weight'));

  const current = read(dir, 'memory.current');
  if (current !== undefined) {
    stats.memoryUsage = numberFrom(current.trim(), 'memory.current');
    const limit = spec ? readSpec(dir, 'memory.max') : undefined;
    if (limit !== undefined) stats.memoryLimit = parseLimit(limit, 'memory.max');
    const peak = read(dir, 'memory.peak');
    if (peak !== undefined) stats.memoryMaxUsage = numberFrom(peak.trim(), 'memory.peak');
    const memStat = read(dir, 'memory.stat');
    if (memStat !== undefined) {
      const m = pickKeyed(memStat, V2_MEMORY_KEYS, 'memory.stat');
      // cAdvisor's v2 mapping: rss = anon, cache = file.
      stats.memoryRss = m.anon;
      stats.memoryCache = m.file;
      stats.memoryMappedFile = m.file_mapped;
      stats.memoryWorkingSet = workingSet(stats.memoryUsage, m.inactive_file);
    }
    const swap = read(dir, 'memory.swap.current');
    if (swap !== undefined) stats.memorySwap = numberFrom(swap.trim(), 'memory.swap.current');
    const events = read(dir, 'memory.events');
    if (events !== undefined) {
      const e = pickKeyed(events, EVENT_KEYS, 'memory.events');
      stats.oomEvents = e.oom_kill;
      // v2 has no failcnt; cAdvisor reports the times usage hit the limit ("max") in its place.
      stats.memoryFailcnt = e.max;
    }
  }
  // io.stat exists only where the io controller is enabled for the cgroup; empty before any I/O.
  const ioStat = read(dir, 'io.stat');
  if (ioStat !== undefined && ioStat.trim() !== '') stats.io = parseIoStat(ioStat, 'io.stat');
  // pids.current likewise only where the pids controller is enabled.
  readThreads(dir, read, stats);
  return stats;
}

/** pids.current (every task, threads included, of the cgroup and below): cAdvisor's ThreadsCurrent. */
function readThreads(dir: string, read: Read, stats: CgroupStats): void {
  const current = read(dir, 'pids.current');
  if (current !== undefined) stats.threads = numberFrom(current.trim(), 'pids.current');
}

/**
 * One cgroup's stats. `spec: false` skips the limit files (memory limit, CFS quota and period,
 * shares), which change only on `docker update` or a pod resize: the collector re-reads them now
 * and then instead of at every scrape.
 */
export function readCgroupStats(
  layout: CgroupLayout,
  path: string,
  read: Read = readOptional,
  options: ReadOptions = {},
): CgroupStats | undefined {
  return layout.version === 2
    ? readCgroupV2(layout, path, read, options)
    : readCgroupV1(layout, path, read, options);
}

export const SPEC_FIELDS = ['memoryLimit', 'cpuQuota', 'cpuPeriod', 'cpuShares'] as const;

/** The directories of one cgroup path, one per hierarchy the layout reads. */
export function cgroupDirs(layout: CgroupLayout, path: string): string[] {
  if (layout.version === 2) return [join(layout.root, path)];
  const roots = [layout.memory, layout.cpu, layout.cpuacct];
  if (layout.blkio !== undefined) roots.push(layout.blkio);
  if (layout.pids !== undefined) roots.push(layout.pids);
  return [...new Set(roots)].map((root) => join(root, path));
}

/**
 * The cgroup path of a process in the hierarchy the layout reads (from /proc/<pid>/cgroup): the
 * `0::` line for v2, the memory line for v1. Undefined when it cannot be placed, e.g. the agent
 * sits in a private cgroup namespace and the path climbs out of it ("/../..").
 */
export function cgroupPathOf(procCgroup: string, version: 1 | 2): string | undefined {
  for (const line of procCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, hierarchy, controllers = '', path = ''] = m;
    const wanted =
      version === 2 ? hierarchy === '0' && controllers === '' : controllers.split(',').includes('memory');
    if (wanted) return path.startsWith('/..') ? undefined : path;
  }
  return undefined;
}
