import { statfs as fsStatfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family, type Labels } from '../collector.ts';
import { fieldsOf, isAbsent, readKernelFile } from '../procfs.ts';

const SIZE = family('node_filesystem_size_bytes', 'gauge', 'Filesystem size in bytes.');
const FREE = family('node_filesystem_free_bytes', 'gauge', 'Filesystem free space in bytes.');
const AVAIL = family(
  'node_filesystem_avail_bytes',
  'gauge',
  'Filesystem space available to non-root users in bytes.',
);
const FILES = family('node_filesystem_files', 'gauge', 'Filesystem total file nodes.');
const FILES_FREE = family('node_filesystem_files_free', 'gauge', 'Filesystem total free file nodes.');
const READONLY = family('node_filesystem_readonly', 'gauge', 'Filesystem read-only status.');
const DEVICE_ERROR = family(
  'node_filesystem_device_error',
  'gauge',
  'Whether an error occurred while getting statistics for the given device.',
);

export interface Mount {
  device: string;
  mountPoint: string;
  fsType: string;
  readonly: boolean;
}

/** The subset of statfs(2) the families need. */
export type Statfs = (
  path: string,
) => Promise<{ bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number }>;

/** fstab(5) escapes in mount points: space, tab, newline and backslash as \ooo octal. */
const decodeOctal = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));

/** /proc/<pid>/mounts: device, mount point, type, options, dump, pass. */
export function parseMounts(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [device, mountPoint, fsType, options] = fieldsOf(line);
    if (options === undefined) throw new Error(`mounts: malformed line ${JSON.stringify(line)}`);
    mounts.push({
      device: device!,
      mountPoint: decodeOctal(mountPoint!),
      fsType: fsType!,
      readonly: options.split(',').includes('ro'),
    });
  }
  return mounts;
}

/**
 * PID 1's mount table is the host's when procRoot is the host's procfs; with hidepid it is invisible
 * and the agent's own table is the fallback (node_exporter does the same).
 */
async function readMounts(procRoot: string): Promise<Mount[]> {
  try {
    return parseMounts(await readKernelFile(procRoot, '1/mounts'));
  } catch (err) {
    if (!isAbsent(err)) throw err;
    return parseMounts(await readKernelFile(procRoot, 'self/mounts'));
  }
}

/** A mount point as the host names it, when the table lists it under hostRoot (node_exporter's rootfs strip). */
function hostPath(mountPoint: string, hostRoot: string): string {
  if (hostRoot === '/' || !(mountPoint === hostRoot || mountPoint.startsWith(`${hostRoot}/`)))
    return mountPoint;
  return mountPoint.slice(hostRoot.length) || '/';
}

const TIMED_OUT = Symbol('timed out');
const FAILED = Symbol('failed');

export function createFilesystemCollector(
  settings: MetricsConfig,
  statfs: Statfs = (path) => fsStatfs(path),
): Collector {
  const { mountPointsExclude, fsTypesExclude, mountTimeout } = settings.filesystem;
  const hostRoot = settings.hostRoot.replace(/\/+$/, '') || '/';
  const excludeMount = new RegExp(mountPointsExclude);
  const excludeType = new RegExp(fsTypesExclude);
  // statfs on a hung mount (dead NFS server) never returns and holds one of libuv's few pool
  // threads; asking again each scrape would take them all and stall every fs call of the agent.
  // So a path whose call is still out is not asked again until that call returns.
  const outstanding = new Set<string>();

  const statWithin = (path: string, deadline: Promise<typeof TIMED_OUT>) => {
    if (outstanding.has(path)) return TIMED_OUT;
    outstanding.add(path);
    const call = statfs(path).then(
      (s) => s,
      () => FAILED,
    );
    void call.finally(() => outstanding.delete(path));
    return Promise.race([call, deadline]);
  };

  return {
    families: [SIZE, FREE, AVAIL, FILES, FILES_FREE, READONLY, DEVICE_ERROR],
    async collect(emit) {
      const seen = new Set<string>();
      const chosen: { labels: Labels; path: string; readonly: boolean }[] = [];
      for (const m of await readMounts(settings.procRoot)) {
        const mountpoint = hostPath(m.mountPoint, hostRoot);
        if (excludeMount.test(mountpoint) || excludeType.test(m.fsType)) continue;
        // A mount stacked twice on the same point with the same device would repeat its series.
        const key = `${m.device}\0${mountpoint}\0${m.fsType}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const path = hostRoot === '/' ? mountpoint : join(hostRoot, mountpoint);
        chosen.push({
          labels: { device: m.device, fstype: m.fsType, mountpoint },
          path,
          readonly: m.readonly,
        });
      }

      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
        timer = setTimeout(resolve, mountTimeout, TIMED_OUT);
      });
      const stats = await Promise.all(chosen.map((c) => statWithin(c.path, deadline)));
      clearTimeout(timer);

      chosen.forEach(({ labels, readonly }, i) => {
        const s = stats[i]!;
        const failed = typeof s === 'symbol';
        emit(DEVICE_ERROR, failed ? 1 : 0, labels);
        emit(READONLY, readonly ? 1 : 0, labels);
        if (failed) return;
        emit(SIZE, s.blocks * s.bsize, labels);
        emit(FREE, s.bfree * s.bsize, labels);
        emit(AVAIL, s.bavail * s.bsize, labels);
        emit(FILES, s.files, labels);
        emit(FILES_FREE, s.ffree, labels);
      });
    },
  };
}
