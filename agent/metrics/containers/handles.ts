import { closeSync, openSync, readSync } from 'node:fs';
import { isAbsent } from '../procfs.ts';

/**
 * Kernel files kept open and re-read from offset 0. A cgroup or proc file regenerates its text on
 * every read at offset 0, so one pread replaces open + fstat + read + close: measured here, 3.5 µs
 * instead of 11 µs per file — and a scrape of 50 containers reads ≈ 500 of them.
 */
export interface FileHandles {
  /** The text of `dir/file`, or undefined when it does not exist (controller off, cgroup gone). */
  read(dir: string, file: string): string | undefined;
  /** Closes every handle under a directory prefix (a gone container's cgroup, a gone process). */
  closeUnder(prefix: string): void;
  closeAll(): void;
  readonly size: number;
}

export function createFileHandles(): FileHandles {
  // By directory, then file name: callers pass the same directory strings (kept per container)
  // and literal file names, so no path is built or hashed per read.
  const fds = new Map<string, Map<string, number>>();
  let size = 0;
  let buffer = Buffer.allocUnsafe(16 * 1024);

  const open = (dir: string, file: string): number | undefined => {
    try {
      const fd = openSync(`${dir}/${file}`, 'r');
      let files = fds.get(dir);
      if (!files) {
        files = new Map();
        fds.set(dir, files);
      }
      files.set(file, fd);
      size++;
      return fd;
    } catch (err) {
      if (isAbsent(err) || (err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
      throw err;
    }
  };
  const close = (dir: string, file: string) => {
    const files = fds.get(dir);
    const fd = files?.get(file);
    if (fd === undefined) return;
    files!.delete(file);
    if (files!.size === 0) fds.delete(dir);
    size--;
    try {
      closeSync(fd);
    } catch {
      // Already gone with its cgroup.
    }
  };
  const readFd = (fd: number): string => {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, 0);
      // Kernel text is ASCII: latin1 decodes it without UTF-8 validation.
      if (n < buffer.length) return buffer.toString('latin1', 0, n);
      buffer = Buffer.allocUnsafe(buffer.length * 2);
    }
  };

  return {
    read(dir, file) {
      const held = fds.get(dir)?.get(file);
      if (held !== undefined) {
        try {
          return readFd(held);
        } catch {
          // The cgroup was removed (ENODEV), perhaps re-created at the same path (docker restart):
          // drop the stale handle and open the path afresh.
          close(dir, file);
        }
      }
      const fd = open(dir, file);
      if (fd === undefined) return undefined;
      try {
        return readFd(fd);
      } catch (err) {
        close(dir, file);
        if (['ENODEV', 'ESRCH', 'ENOENT'].includes((err as NodeJS.ErrnoException).code ?? ''))
          return undefined;
        throw err;
      }
    },
    closeUnder(prefix) {
      for (const [dir, files] of [...fds]) {
        if (!`${dir}/`.startsWith(prefix)) continue;
        for (const file of [...files.keys()]) close(dir, file);
      }
    },
    closeAll() {
      for (const [dir, files] of [...fds]) for (const file of [...files.keys()]) close(dir, file);
    },
    get size() {
      return size;
    },
  };
}
