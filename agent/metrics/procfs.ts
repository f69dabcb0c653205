import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statfsSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';

/**
 * A kernel file under a root (procRoot, sysRoot), read whole, that a collector reads at every
 * scrape (/proc/stat, /proc/meminfo, /proc/net/dev…). Synchronously on purpose: procfs text is
 * generated in memory in microseconds, while the async path pays a thread-pool round trip for
 * each of open, read and close — measured here, it doubled the CPU of a scrape (4.5 → 2.3 ms).
 * Calls that can hang on a dead device (statfs) stay asynchronous, with a timeout.
 *
 * Under a procfs root the file is kept open and re-read from offset 0 (procfs regenerates the
 * text on each read from 0): two reads (the text, then end of file) instead of open, fstat, two
 * reads and close — ≈ 35 files at every scrape, and a system call is dear on a virtualised node.
 */
export async function readKernelFile(root: string, ...path: string[]): Promise<string> {
  return readKernelFileHeld(root, ...path);
}

/** readKernelFile for a collector that reads several files in a row (netstat, sockstat). */
export function readKernelFileHeld(root: string, ...path: string[]): string {
  return isProcfs(root) ? readHeld(join(root, ...path)) : readKernelFileSync(root, ...path);
}

const PROC_SUPER_MAGIC = 0x9fa0;
const procfsRoots = new Map<string, boolean>();

/** Whether a root is procfs (fixture trees and other roots are read with readFileSync). */
function isProcfs(root: string): boolean {
  let procfs = procfsRoots.get(root);
  if (procfs === undefined) {
    try {
      procfs = statfsSync(root).type === PROC_SUPER_MAGIC;
    } catch {
      procfs = false;
    }
    procfsRoots.set(root, procfs);
  }
  return procfs;
}

/** Path → descriptor of the global files read at every scrape (a fixed set: no per-pid paths). */
const held = new Map<string, number>();
let buffer = Buffer.allocUnsafe(64 * 1024);

/** The whole text of a held file: reads from 0 until end of file (a seq_file gives a page or so per read). */
function readWhole(fd: number): string {
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      const bigger = Buffer.allocUnsafe(buffer.length * 2);
      buffer.copy(bigger, 0, 0, length);
      buffer = bigger;
    }
    const n = readSync(fd, buffer, length, buffer.length - length, length);
    if (n === 0) return buffer.toString('utf8', 0, length);
    length += n;
  }
}

function readHeld(path: string): string {
  const fd = held.get(path);
  if (fd !== undefined) {
    try {
      return readWhole(fd);
    } catch {
      // Gone since (a netfilter module unloaded): forget it, and open the path again below.
      held.delete(path);
      try {
        closeSync(fd);
      } catch {
        // Already unusable.
      }
    }
  }
  // Errors as readFileSync gives them (ENOENT: the kernel does not offer it).
  const opened = unlessAbsent(path, () => openSync(path, 'r'));
  try {
    const text = readWhole(opened);
    held.set(path, opened);
    return text;
  } catch (err) {
    closeSync(opened);
    throw err;
  }
}

export function readKernelFileSync(root: string, ...path: string[]): string {
  const file = join(root, ...path);
  return unlessAbsent(file, () => readFileSync(file, 'utf8'));
}

/**
 * Kernel paths found absent, with the error that said so. What this node lacks (a bond, NFS,
 * hwmon, mdadm…) is asked for at every scrape, and a failed open builds an Error with its stack:
 * ≈ 12 µs here, ≈ 20 times a scrape. Next time existsSync (≈ 4 µs, no Error) checks that the
 * path is still absent and the same error is thrown again, so a module loaded since is found at
 * the next scrape. Bounded: the paths of devices long gone must not pile up.
 */
const absent = new Map<string, Error>();
const MAX_ABSENT_PATHS = 1024;

/** `call`, which opens `path`; an absent path is known without a failed call the second time. */
export function unlessAbsent<T>(path: string, call: () => T): T {
  const known = absent.get(path);
  if (known !== undefined) {
    if (!existsSync(path)) throw known;
    absent.delete(path);
  }
  try {
    return call();
  } catch (err) {
    if (isAbsent(err)) {
      if (absent.size >= MAX_ABSENT_PATHS) absent.clear();
      absent.set(path, err as Error);
    }
    throw err;
  }
}

/** Whether an fs error means "the kernel does not offer this" rather than a failure. */
export function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** The whitespace-separated fields of one line. */
export function fieldsOf(line: string): string[] {
  return line.trim().split(/\s+/);
}

/** A number from a kernel file, or an error naming where it came from. */
export function numberFrom(text: string | undefined, where: string): number {
  const value = text === undefined || text === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(value)) throw new Error(`${where}: expected a number, got ${JSON.stringify(text)}`);
  return value;
}

/**
 * Open descriptors of a process. Since Linux 6.2 the size of /proc/<pid>/fd is that count: one
 * stat instead of listing the directory (both much cheaper than cAdvisor's readlink of every fd,
 * which it needs only for container_sockets). Older kernels say 0 there, and a procRoot that is
 * not procfs says a directory's size: both are listed instead. Undefined when the process is gone
 * or its fds are not ours to see.
 */
export function fdCounter(procRoot: string): (pid: string) => number | undefined {
  let sized = false;
  try {
    sized = statSync(`${procRoot}/self/fd`).size > 0;
  } catch {
    sized = false;
  }
  return (pid) => {
    const dir = `${procRoot}/${pid}/fd`;
    try {
      // A listing of our own fds includes the one the listing itself holds open.
      return sized ? statSync(dir).size : readdirSync(dir).length - (pid === 'self' ? 1 : 0);
    } catch {
      return undefined;
    }
  };
}
