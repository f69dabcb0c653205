import { closeSync, openSync, readSync } from 'node:fs';
import { isAbsent } from '../procfs.ts';

/**
 * Kernel files kept open and re-read from offset 0. A cgroup or proc file regenerates its text on
 * every read at offset 0, so one pread replaces open + fstat + read + close: measured here, 3.5 µs
 * instead of 11 µs per file — and a scrape of 50 containers reads ≈ 650 of them.
 */
export interface FileHandles {
  /** The file's text, or undefined when it does not exist (controller off, cgroup gone). */
  read(path: string): string | undefined;
  /** Closes every handle under a path prefix (a gone container's cgroup, a gone process). */
  closeUnder(prefix: string): void;
  closeAll(): void;
  readonly size: number;
}

export function createFileHandles(): FileHandles {
  const fds = new Map<string, number>();
  let buffer = Buffer.allocUnsafe(16 * 1024);

  const open = (path: string): number | undefined => {
    try {
      const fd = openSync(path, 'r');
      fds.set(path, fd);
      return fd;
    } catch (err) {
      if (isAbsent(err) || (err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
      throw err;
    }
  };
  const close = (path: string) => {
    const fd = fds.get(path);
    if (fd === undefined) return;
    fds.delete(path);
    try {
      closeSync(fd);
    } catch {
      // Already gone with its cgroup.
    }
  };
  const readFd = (fd: number): string => {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, 0);
      if (n < buffer.length) return buffer.toString('utf8', 0, n);
      buffer = Buffer.allocUnsafe(buffer.length * 2);
    }
  };

  return {
    read(path) {
      const held = fds.get(path);
      if (held !== undefined) {
        try {
          return readFd(held);
        } catch {
          // The cgroup was removed (ENODEV), perhaps re-created at the same path (docker restart):
          // drop the stale handle and open the path afresh.
          close(path);
        }
      }
      const fd = open(path);
      if (fd === undefined) return undefined;
      try {
        return readFd(fd);
      } catch (err) {
        close(path);
        if (['ENODEV', 'ESRCH', 'ENOENT'].includes((err as NodeJS.ErrnoException).code ?? ''))
          return undefined;
        throw err;
      }
    },
    closeUnder(prefix) {
      for (const path of [...fds.keys()]) if (path.startsWith(prefix)) close(path);
    },
    closeAll() {
      for (const path of [...fds.keys()]) close(path);
    },
    get size() {
      return fds.size;
    },
  };
}
