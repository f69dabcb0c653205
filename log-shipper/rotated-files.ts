import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

/**
 * The kubelet's rotated log files: `<base>.<YYYYMMDD-hhmmss>`, gzipped into `….gz` (the original
 * removed) once a newer rotation exists.
 */

/** The rotation stamp of `<base>.<YYYYMMDD-hhmmss>[.gz]`; undefined for anything else. */
export function rotationStamp(base: string, name: string): string | undefined {
  if (!name.startsWith(`${base}.`)) return undefined;
  let rest = name.slice(base.length + 1);
  if (rest.endsWith('.gz')) rest = rest.slice(0, -3);
  return /^\d{8}-\d{6}$/.test(rest) ? rest : undefined;
}

const gunzipAsync = promisify(gunzip);

/** Decompressed rotated files larger than this are not read (the kubelet's default is 10 MiB). */
const MAX_GZ_BYTES = 1024 * 1024 * 1024;

/** In memory: rotated files are containerLogMaxSize (10 MiB by default). */
export async function readGzipped(path: string): Promise<Buffer> {
  return gunzipAsync(await readFile(path), { maxOutputLength: MAX_GZ_BYTES });
}
