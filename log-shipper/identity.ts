import { createHash } from 'node:crypto';

/**
 * File identity: device + inode say which file it is now; a fingerprint of its first bytes says it
 * is still the file a checkpoint was written for, so a reused inode cannot inherit an offset.
 */

/** Bytes the fingerprint covers once the file is that long; shorter files are re-fingerprinted as they grow. */
export const FINGERPRINT_BYTES = 256;

export interface Fingerprint {
  readonly len: number;
  readonly hash: string;
}

export const EMPTY_FINGERPRINT: Fingerprint = { len: 0, hash: '' };

export function identityKey(dev: bigint | string, ino: bigint | string): string {
  return `${dev}:${ino}`;
}

/** Positional reads: a FileHandle, or a file held in memory. */
export interface PositionalReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/** Fingerprint of the first `len` bytes (fewer if the file is shorter). */
export async function fingerprint(fh: PositionalReader, len: number): Promise<Fingerprint> {
  if (len <= 0) return EMPTY_FINGERPRINT;
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  if (got === 0) return EMPTY_FINGERPRINT;
  return {
    len: got,
    hash: createHash('sha256').update(buf.subarray(0, got)).digest('base64url').slice(0, 22),
  };
}

/** Whether a file starts with the bytes a fingerprint was taken of; an empty fingerprint tells nothing (false). */
export async function startsWith(fh: PositionalReader, fp: Fingerprint): Promise<boolean> {
  if (fp.len === 0) return false;
  const mine = await fingerprint(fh, fp.len);
  return mine.len === fp.len && mine.hash === fp.hash;
}
