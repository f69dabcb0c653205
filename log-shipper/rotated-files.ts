import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { openFile, type TailFile } from './tail.ts';

/**
 * The kubelet's rotated log files: `<base>.<YYYYMMDD-hhmmss>`, gzipped into `….gz` (the original
 * removed) once a newer rotation exists; the oldest deleted beyond containerLogMaxFiles.
 */

/** The rotation stamp of `<base>.<YYYYMMDD-hhmmss>[.gz]`; undefined for anything else. */
export function rotationStamp(base: string, name: string): string | undefined {
  if (!name.startsWith(`${base}.`)) return undefined;
  let rest = name.slice(base.length + 1);
  if (rest.endsWith('.gz')) rest = rest.slice(0, -3);
  return /^\d{8}-\d{6}$/.test(rest) ? rest : undefined;
}

export interface Rotation {
  readonly path: string;
  readonly stamp: string;
  readonly gz: boolean;
  readonly dev: bigint;
  readonly ino: bigint;
  /** On disk (compressed for a .gz). */
  readonly size: number;
}

/** The rotations of `<dir>/<base>` now on disk, oldest first (a stamp both plain and .gz: the .gz is being written, the plain one counts). */
export async function listRotations(dir: string, base: string): Promise<Rotation[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const byStamp = new Map<string, string>();
  for (const name of names) {
    const stamp = rotationStamp(base, name);
    if (stamp === undefined) continue;
    const had = byStamp.get(stamp);
    if (had === undefined || had.endsWith('.gz')) byStamp.set(stamp, name);
  }
  const out: Rotation[] = [];
  for (const [stamp, listed] of [...byStamp].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    let name = listed;
    let st = await statOf(join(dir, name));
    // Compressed since the listing: the kubelet wrote <name>.gz, then removed <name>.
    if (st === undefined && !name.endsWith('.gz')) {
      name = `${name}.gz`;
      st = await statOf(join(dir, name));
    }
    if (st === undefined || !st.isFile()) continue;
    const path = join(dir, name);
    out.push({ path, stamp, gz: name.endsWith('.gz'), dev: st.dev, ino: st.ino, size: Number(st.size) });
  }
  return out;
}

const statOf = (path: string) => stat(path, { bigint: true }).catch(() => undefined);

/**
 * A plain rotated file; when the kubelet compressed it since it was listed (it writes
 * `<name>.gz`, then removes `<name>`), its .gz (`gz`: decompressed as it is read).
 */
export async function openRotated(path: string): Promise<{ file: TailFile; gz: boolean }> {
  try {
    return { file: openFile(await open(path, 'r')), gz: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return { file: await openGzipped(`${path}.gz`), gz: true };
  }
}

/**
 * A rotated `.gz` read as a stream: decompressed as the tailer asks for bytes, one chunk (16 KiB) in
 * memory at a time, never the whole file. The file descriptor is held from the open, so the kubelet
 * deleting it (containerLogMaxFiles) does not take it away. Reads go forward; a read before the
 * current chunk starts the decompression over (only fingerprints do that, at the start).
 */
export async function openGzipped(path: string): Promise<TailFile> {
  const fh = await open(path, 'r');
  let iter: AsyncIterator<Buffer> | undefined;
  let chunk: Buffer | undefined;
  /** Decompressed offset of chunk[0]. */
  let chunkStart = 0;
  let total: number | undefined;
  const restart = () => {
    void iter?.return?.();
    const gunzip = createGunzip();
    fh.createReadStream({ start: 0, autoClose: false }).pipe(gunzip);
    iter = gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    chunk = undefined;
    chunkStart = 0;
  };
  return {
    async read(buffer, offset, length, position) {
      if (iter === undefined || position < chunkStart) restart();
      let n = 0;
      while (n < length) {
        const at = position + n;
        if (chunk !== undefined && at < chunkStart + chunk.length) {
          n += chunk.copy(
            buffer,
            offset + n,
            at - chunkStart,
            Math.min(chunk.length, at - chunkStart + length - n),
          );
          continue;
        }
        if (total !== undefined && at >= total) break;
        if (chunk !== undefined) chunkStart += chunk.length;
        chunk = undefined;
        const next = await iter!.next();
        if (next.done) {
          total = chunkStart;
          break;
        }
        chunk = next.value;
      }
      return { bytesRead: n };
    },
    // Not followed (nlink 0: read to its end, then closed); the size is known only at the end.
    stat: () => ({ size: total ?? chunkStart + (chunk?.length ?? 0) + 1, nlink: 0 }),
    async close() {
      await iter?.return?.();
      await fh.close();
    },
  };
}

/** The uncompressed size a `.gz` declares in its trailer (ISIZE, modulo 4 GiB: rotated logs are far smaller). */
export async function gzippedSize(path: string): Promise<number | undefined> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (fh === undefined) return undefined;
  try {
    const { size } = await fh.stat();
    if (size < 18) return undefined;
    const buf = Buffer.alloc(4);
    await fh.read(buf, 0, 4, size - 4);
    return buf.readUInt32LE(0);
  } finally {
    await fh.close();
  }
}

const MIN_RATE_SPAN = 1000;

/**
 * When a rotated file's first line was written, and the bytes per millisecond it was written at
 * (undefined over less than a second): from the CRI timestamps of the lines in its first 64 KiB.
 * Undefined when they do not tell (not CRI, one line).
 */
export async function writeRate(
  rotation: Rotation,
): Promise<{ start: number; bytesPerMs: number | undefined } | undefined> {
  let file: TailFile | undefined;
  try {
    file = rotation.gz ? await openGzipped(rotation.path) : await plainFile(rotation.path);
    const buf = Buffer.allocUnsafe(64 * 1024);
    let got = 0;
    for (;;) {
      const { bytesRead } = await file.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (got === buf.length) break;
    }
    const firstEnd = buf.indexOf(0x0a);
    const lastEnd = buf.subarray(0, got).lastIndexOf(0x0a);
    if (firstEnd === -1 || lastEnd <= firstEnd) return undefined;
    const lastStart = buf.subarray(0, lastEnd).lastIndexOf(0x0a) + 1;
    const time = (at: number) => Date.parse(buf.toString('latin1', at, buf.indexOf(0x20, at)));
    const start = time(0);
    const end = time(lastStart);
    if (!Number.isFinite(start) || !Number.isFinite(end)) return undefined;
    // Lines written in one burst say nothing of the rate over minutes.
    return { start, bytesPerMs: end - start < MIN_RATE_SPAN ? undefined : lastStart / (end - start) };
  } catch {
    return undefined;
  } finally {
    await file?.close().catch(() => {});
  }
}

async function plainFile(path: string): Promise<TailFile> {
  const fh = await open(path, 'r');
  return {
    read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
    stat: () => ({ size: 0, nlink: 0 }),
    close: () => fh.close(),
  };
}
