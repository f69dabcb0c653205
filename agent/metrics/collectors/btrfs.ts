import { readdirSync } from 'node:fs';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { listDir, readAttribute } from './sysfs.ts';

const INFO = family('node_btrfs_info', 'gauge', 'Filesystem information');
const GLOBAL_RSV = family('node_btrfs_global_rsv_size_bytes', 'gauge', 'Size of global reserve.');
const COMMITS = family(
  'node_btrfs_commits_total',
  'counter',
  'The total number of commits that have occurred.',
);
const LAST_COMMIT = family(
  'node_btrfs_last_commit_seconds',
  'gauge',
  'Duration of the most recent commit, in seconds.',
);
const MAX_COMMIT = family(
  'node_btrfs_max_commit_seconds',
  'gauge',
  'Duration of the slowest commit, in seconds.',
);
const COMMIT_SECONDS = family(
  'node_btrfs_commit_seconds_total',
  'counter',
  'Sum of the duration of all commits, in seconds.',
);
const RESERVED = family('node_btrfs_reserved_bytes', 'gauge', 'Amount of space reserved for a data type');
const USED = family('node_btrfs_used_bytes', 'gauge', 'Amount of used space by a layout/data type');
const SIZE = family('node_btrfs_size_bytes', 'gauge', 'Amount of space allocated for a layout/data type');
const RATIO = family('node_btrfs_allocation_ratio', 'gauge', 'Data allocation ratio for a layout/data type');
const DEVICE_SIZE = family(
  'node_btrfs_device_size_bytes',
  'gauge',
  'Size of a device that is part of the filesystem.',
);

const BLOCK_GROUP_TYPES = ['data', 'metadata', 'system'] as const;

/**
 * A number file as procfs reads it: absent or not an integer is 0, so a field an older kernel
 * lacks still gives its series.
 */
function readValue(path: string): number {
  const text = readAttribute(path);
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : 0;
}

/** Bytes on disk per byte of data in a profile; raid5/6 by the filesystem's device count, as procfs. */
export function allocationRatio(profile: string, devices: number): number {
  switch (profile) {
    case 'single':
    case 'raid0':
      return 1;
    case 'dup':
    case 'raid1':
    case 'raid10':
      return 2;
    case 'raid1c3':
      return 3;
    case 'raid1c4':
      return 4;
    case 'raid5':
      return devices / (devices - 1);
    case 'raid6':
      return devices / (devices - 2);
    default:
      return 0;
  }
}

/** Subdirectories (the profiles: single, dup, raid1 …) of an allocation/<type> directory. */
const profiles = (dir: string) =>
  readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();

/** commit_stats (Linux 6.0+): `commits 1234`, `last_commit_ms 12` …; all 0 before. */
export function parseCommitStats(text: string | undefined, where: string) {
  const stats = { commits: 0, last_commit_ms: 0, max_commit_ms: 0, total_commit_ms: 0 };
  for (const line of (text ?? '').split('\n')) {
    if (line.trim() === '') continue;
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2 || !/^\d+$/.test(parts[1]!))
      throw new Error(`${where}: unexpected line ${JSON.stringify(line)}`);
    if (Object.hasOwn(stats, parts[0]!)) stats[parts[0] as keyof typeof stats] = Number(parts[1]);
  }
  return stats;
}

/**
 * /sys/fs/btrfs/<fsid>/: allocation per block group type and profile, commit times, device sizes.
 * node_exporter also asks the kernel by ioctl (BTRFS_IOC_DEV_INFO / GET_DEV_STATS, through the
 * mount point) for each device's used bytes, UUID and error counters: node_btrfs_device_unused_bytes,
 * node_btrfs_device_errors_total and the btrfs_dev_uuid label. Node cannot issue ioctls, and sysfs
 * does not give the device UUID that label needs, so we report what node_exporter reports when its
 * ioctl fails: device_size_bytes{uuid, device} from sysfs alone.
 * No filesystem is no series and no error, as node_exporter has it.
 */
export function createBtrfsCollector(settings: MetricsConfig): Collector {
  const root = `${settings.sysRoot}/fs/btrfs`;
  return {
    families: [
      INFO,
      GLOBAL_RSV,
      COMMITS,
      LAST_COMMIT,
      MAX_COMMIT,
      COMMIT_SECONDS,
      RESERVED,
      USED,
      SIZE,
      RATIO,
      DEVICE_SIZE,
    ],
    async collect(emit) {
      // Filesystems are named by fsid; `features` has no dash.
      for (const fsid of (listDir(root) ?? []).filter((e) => e.includes('-'))) {
        const dir = `${root}/${fsid}`;
        const devices = listDir(`${dir}/devices`);
        if (devices === undefined) throw new Error(`${dir}/devices: cannot list`);
        // metadata_uuid (Linux 5.0+) is the UUID users see; it differs from the fsid after `btrfstune -m`.
        const uuid = readAttribute(`${dir}/metadata_uuid`) || fsid;
        emit(INFO, 1, { uuid, label: readAttribute(`${dir}/label`) ?? '' });
        const labels = { uuid };
        emit(GLOBAL_RSV, readValue(`${dir}/allocation/global_rsv_size`), labels);
        const commits = parseCommitStats(readAttribute(`${dir}/commit_stats`), `${dir}/commit_stats`);
        emit(COMMITS, commits.commits, labels);
        emit(LAST_COMMIT, commits.last_commit_ms / 1000, labels);
        emit(MAX_COMMIT, commits.max_commit_ms / 1000, labels);
        emit(COMMIT_SECONDS, commits.total_commit_ms / 1000, labels);
        for (const type of BLOCK_GROUP_TYPES) {
          const typeDir = `${dir}/allocation/${type}`;
          emit(RESERVED, readValue(`${typeDir}/bytes_reserved`), { uuid, block_group_type: type });
          for (const mode of profiles(typeDir)) {
            const labels = { uuid, block_group_type: type, mode };
            emit(USED, readValue(`${typeDir}/${mode}/used_bytes`), labels);
            emit(SIZE, readValue(`${typeDir}/${mode}/total_bytes`), labels);
            emit(RATIO, allocationRatio(mode, devices.length), labels);
          }
        }
        // devices/<name> links to the block device, whose size is in 512-byte sectors.
        for (const device of devices)
          emit(DEVICE_SIZE, 512 * readValue(`${dir}/devices/${device}/size`), { uuid, device });
      }
    },
  };
}
