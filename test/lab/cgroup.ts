import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { mountTable } from './mounts.ts';

/**
 * The cgroup directories of a process, one per hierarchy it is in, resolved through the mount
 * table so the answer holds for cgroup v1 (/sys/fs/cgroup/<controller>/…), v2 (/sys/fs/cgroup/…)
 * and hybrid layouts (v2 mounted at /sys/fs/cgroup/unified beside the v1 controllers) alike.
 */
export function cgroupDirsOfPid(pid: number): string[] {
  const mounts = mountTable().filter((m) => m.fstype === 'cgroup' || m.fstype === 'cgroup2');
  const dirs: string[] = [];
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, , controllers = '', path = '/'] = match;
    const wanted = controllers.split(',').filter(Boolean);
    const mount =
      wanted.length === 0
        ? mounts.find((m) => m.fstype === 'cgroup2')
        : mounts.find((m) => m.fstype === 'cgroup' && wanted.every((c) => m.superOptions.includes(c)));
    // A hierarchy may be listed in /proc/<pid>/cgroup without being mounted anywhere.
    if (mount) dirs.push(join(mount.mountPoint, relative(mount.root, path)));
  }
  return dirs;
}
