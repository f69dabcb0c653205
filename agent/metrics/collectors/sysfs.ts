import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { type Labels, NoDataError } from '../collector.ts';
import { isAbsent, readKernelFileSync, unlessAbsent } from '../procfs.ts';

/**
 * Small reads of sysfs and procfs attribute files, as node_exporter's collectors make them. A sysfs
 * attribute is at most a page; one buffer serves every read (reads are synchronous), so a scrape
 * that reads a few hundred attributes allocates only the strings it keeps.
 */
const buffer = Buffer.allocUnsafe(64 * 1024);

/**
 * What the kernel answers for an attribute it has but cannot show now (carrier of a downed link,
 * speed of a virtual one) or that is gone or not ours to read: node_exporter leaves such a
 * property out, and so do we.
 */
const UNAVAILABLE = new Set([
  'ENOENT',
  'ENOTDIR',
  'EINVAL',
  'EOPNOTSUPP',
  'EACCES',
  'EPERM',
  'ENODEV',
  'ENXIO',
]);

export const unavailable = (err: unknown) =>
  UNAVAILABLE.has((err as NodeJS.ErrnoException | undefined)?.code ?? '');

/** The attribute's text without surrounding whitespace, or undefined when it cannot be read. */
export function readAttribute(path: string): string | undefined {
  let fd: number;
  try {
    fd = unlessAbsent(path, () => openSync(path, 'r'));
  } catch (err) {
    if (unavailable(err)) return undefined;
    throw err;
  }
  try {
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.toString('latin1', 0, n).trim();
  } catch (err) {
    if (unavailable(err)) return undefined;
    throw err;
  } finally {
    closeSync(fd);
  }
}

/** The attribute as a number, or undefined when absent or not numeric. */
export function readNumber(path: string): number | undefined {
  const text = readAttribute(path);
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** Entry names of a directory, sorted; undefined when it does not exist. */
export function listDir(path: string): string[] | undefined {
  try {
    return unlessAbsent(path, () => readdirSync(path)).sort();
  } catch (err) {
    if (unavailable(err)) return undefined;
    throw err;
  }
}

/**
 * The memory page size, from the auxiliary vector the kernel gave this process (AT_PAGESZ = 6, in
 * native-endian 64-bit pairs): Node has no getpagesize(), and sockstat counts memory in pages.
 * 4096 when auxv cannot be read.
 */
export function pageSize(procRoot: string): number {
  let fd: number | undefined;
  try {
    fd = openSync(`${procRoot}/self/auxv`, 'r');
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    for (let at = 0; at + 16 <= n; at += 16) {
      const type = buffer.readBigUInt64LE(at);
      if (type === 0n) break;
      if (type === 6n) return Number(buffer.readBigUInt64LE(at + 8));
    }
  } catch {
    // A procfs without auxv: the common page size.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return 4096;
}

/**
 * One label set per key (a CPU, a device), made once: the registry renders a label object it has
 * seen before without building its text again.
 */
export function labelsBy<L extends Labels>(make: (key: string) => L): (key: string) => L {
  const made = new Map<string, L>();
  return (key) => {
    let labels = made.get(key);
    if (!labels) {
      labels = make(key);
      made.set(key, labels);
    }
    return labels;
  };
}

/** A kernel file whose absence means the feature is not in this kernel: no data, not a failure. */
export function readOrNoData(root: string, path: string, what: string): string {
  try {
    return readKernelFileSync(root, path);
  } catch (err) {
    if (isAbsent(err)) throw new NoDataError(what);
    throw err;
  }
}

/**
 * Attribute files kept open and re-read with pread at offset 0 (sysfs regenerates the text on
 * each read from 0): measured here, 6.5 µs instead of 34 µs per attribute for open + read + close,
 * and netclass reads ≈ 20 per network device per scrape. A directory not named in `retain` (a veth
 * gone with its pod) has its files closed; a file of a device re-created under the same name fails
 * its read (ENODEV) and is opened afresh.
 */
export interface HeldAttributes {
  read(dir: string, name: string): string | undefined;
  /** Closes the files of every directory not in `dirs`. */
  retain(dirs: ReadonlySet<string>): void;
  readonly size: number;
}

/**
 * At most this many files are held open: a node with hundreds of pod veths would otherwise hold
 * thousands of descriptors (the hard limit is often 20,000, shared with the log shipper). Past it,
 * attributes are read with open + read + close.
 */
export const MAX_HELD_ATTRIBUTE_FILES = 512;

export function createHeldAttributes(maxHeld = MAX_HELD_ATTRIBUTE_FILES): HeldAttributes {
  /** Directory → attribute → fd, or -1 for an attribute this device does not have. */
  const held = new Map<string, Map<string, number>>();
  let size = 0;
  const closeFd = (fd: number) => {
    if (fd < 0) return;
    size--;
    try {
      closeSync(fd);
    } catch {
      // Gone with its device.
    }
  };
  const readFd = (fd: number) =>
    buffer.toString('latin1', 0, readSync(fd, buffer, 0, buffer.length, 0)).trim();
  const open = (files: Map<string, number>, path: string, name: string): number => {
    try {
      const fd = openSync(path, 'r');
      size++;
      files.set(name, fd);
      return fd;
    } catch (err) {
      if (!unavailable(err)) throw err;
      files.set(name, -1);
      return -1;
    }
  };
  const readOnce = (path: string): string | undefined => {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if (unavailable(err)) return undefined;
      throw err;
    }
    try {
      return readFd(fd);
    } catch (err) {
      if (unavailable(err) || (err as NodeJS.ErrnoException).code === 'ENODEV') return undefined;
      throw err;
    } finally {
      closeSync(fd);
    }
  };
  return {
    read(dir, name) {
      let files = held.get(dir);
      if (!files) {
        files = new Map();
        held.set(dir, files);
      }
      if (!files.has(name) && size >= maxHeld) return readOnce(`${dir}/${name}`);
      let fd = files.get(name) ?? open(files, `${dir}/${name}`, name);
      if (fd < 0) return undefined;
      try {
        return readFd(fd);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENODEV') {
          if (unavailable(err)) return undefined;
          throw err;
        }
      }
      // The device was removed, perhaps re-created under the same name: open the path again.
      closeFd(fd);
      files.delete(name);
      fd = open(files, `${dir}/${name}`, name);
      if (fd < 0) return undefined;
      try {
        return readFd(fd);
      } catch (err) {
        if (unavailable(err)) return undefined;
        throw err;
      }
    },
    retain(dirs) {
      for (const [dir, files] of held) {
        if (dirs.has(dir)) continue;
        for (const fd of files.values()) closeFd(fd);
        held.delete(dir);
      }
    },
    get size() {
      return size;
    },
  };
}
