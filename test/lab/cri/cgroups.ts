import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { mountTable } from '../mounts.ts';

/**
 * Pod cgroups as the kubelet's cgroupfs driver lays them out (`/kubepods/<qos>/pod<uid>`), in every
 * mounted hierarchy: each cgroup v1 controller (and named hierarchies such as name=systemd) and the
 * v2 tree, unified or hybrid alike. containerd removes a container's own cgroup when the container
 * goes, but never the pod's and its parents: that is the kubelet's work, and the lab's here.
 */

/** The directories of a cgroup path (`/kubepods/besteffort/pod…`), one per mounted hierarchy. */
export function cgroupDirs(path: string): string[] {
  const dirs: string[] = [];
  for (const m of mountTable()) {
    if (m.fstype !== 'cgroup' && m.fstype !== 'cgroup2') continue;
    const rel = relative(m.root, posix.resolve('/', path));
    // A hierarchy mounted from inside a cgroup namespace does not reach the path.
    if (rel.startsWith('..')) continue;
    dirs.push(join(m.mountPoint, rel));
  }
  return dirs;
}

/** The cgroup dirs of path that exist now (for tests: "did the runtime or we leave it behind?"). */
export function existingCgroupDirs(path: string): string[] {
  return cgroupDirs(path).filter((d) => existsSync(d));
}

/**
 * Removes the cgroup (and the cgroups below it, deepest first) in every hierarchy. A cgroup that
 * still has processes cannot go (EBUSY): those dirs are returned.
 */
export function removeCgroup(path: string): string[] {
  const left: string[] = [];
  for (const dir of cgroupDirs(path)) left.push(...removeCgroupDir(dir));
  return left;
}

function removeCgroupDir(dir: string): string[] {
  let children: string[];
  try {
    children = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(dir, e.name));
  } catch {
    return [];
  }
  const left = children.flatMap(removeCgroupDir);
  try {
    rmdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left.push(dir);
  }
  return left;
}

/**
 * Removes a cgroup as removeCgroup does, retrying while its last processes are still exiting (a
 * SIGKILLed task leaves its cgroup a moment after the signal).
 */
export async function removeCgroupSoon(path: string, timeoutMs = 3000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = removeCgroup(path);
    if (left.length === 0 || Date.now() >= deadline) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The pod cgroups a lab's pods used, and which of their ancestors did not exist before the lab
 * made them (`/kubepods`, `/kubepods/besteffort` on a machine that never ran a pod): at cleanup
 * the pod cgroups go, and so do those ancestors once empty. Ancestors someone else had already
 * made (a concurrent suite, a real kubelet) are left alone, and a non-empty one cannot be removed.
 */
export class CgroupTracker {
  readonly #pods = new Set<string>();
  readonly #madeAncestors = new Set<string>();

  /** Call before the runtime creates anything under `path`. */
  track(path: string): void {
    const normal = posix.resolve('/', path);
    if (this.#pods.has(normal)) return;
    this.#pods.add(normal);
    for (let p = posix.dirname(normal); p !== '/'; p = posix.dirname(p)) {
      if (cgroupDirs(p).some((d) => !existsSync(d))) this.#madeAncestors.add(p);
    }
  }

  get tracked(): readonly string[] {
    return [...this.#pods];
  }

  /** Synchronous, for the exit handler; returns the dirs that are still there. */
  removeAllNow(): string[] {
    const left = [...this.#pods].flatMap(removeCgroup);
    for (const p of this.#ancestorsDeepestFirst()) {
      for (const dir of cgroupDirs(p)) {
        try {
          rmdirSync(dir);
        } catch {
          // Still in use (another pod, another suite) or already gone.
        }
      }
    }
    return left;
  }

  async removeAll(timeoutMs = 3000): Promise<string[]> {
    for (const p of this.#pods) await removeCgroupSoon(p, timeoutMs);
    return this.removeAllNow();
  }

  #ancestorsDeepestFirst(): string[] {
    return [...this.#madeAncestors].sort((a, b) => b.length - a.length);
  }
}
