import { readdirSync } from 'node:fs';
import { unavailable } from './sysfs.ts';

/**
 * Attribute text read the way prometheus/procfs reads it, for the collectors node_exporter builds
 * on its sysfs classes (fc_host, infiniband, power_supply, scsi_tape, …).
 */

const UINT = /^(?:0[xX]([0-9a-fA-F]+)|0[oO]?([0-7]+)|0[bB]([01]+)|([1-9][0-9]*|0))$/;
const DECIMAL = /^[0-9]+$/;
const MAX_UINT64 = 2n ** 64n - 1n;

/**
 * Go's strconv.ParseUint(text, base, 64): base 0 (procfs's ValueParser) takes a 0x, 0o/0 or 0b
 * prefix, because fc_host statistics are printed in hex; base 10 takes digits only. A bigint, so
 * fibrechannel can tell 2^64−1 ("not implemented by the HBA") from 2^64; undefined where Go fails.
 */
export function parseUint(text: string, base: 0 | 10 = 0): bigint | undefined {
  let value: bigint;
  if (base === 10) {
    if (!DECIMAL.test(text)) return undefined;
    value = BigInt(text);
  } else {
    const m = UINT.exec(text);
    if (!m) return undefined;
    const [, hex, oct, bin, dec] = m;
    value = BigInt(hex ? `0x${hex}` : oct ? `0o${oct}` : bin ? `0b${bin}` : dec!);
  }
  return value <= MAX_UINT64 ? value : undefined;
}

/** Go's strconv.ParseInt(text, 0, 64), as a number (power_supply values are signed: current_now). */
export function parseInt64(text: string): number | undefined {
  const negative = text.startsWith('-');
  const magnitude = parseUint(negative || text.startsWith('+') ? text.slice(1) : text);
  if (magnitude === undefined) return undefined;
  const value = negative ? -magnitude : magnitude;
  return value >= -(2n ** 63n) && value < 2n ** 63n ? Number(value) : undefined;
}

/**
 * A label value: the attribute's bytes as UTF-8. readAttribute keeps bytes as latin1 (numbers
 * need no decoding), which would turn a vendor's "Société" into mojibake; invalid bytes become
 * U+FFFD, as node_exporter's strings.ToValidUTF8 makes them.
 */
export const utf8 = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');

/**
 * The regular files of a directory, sorted; undefined when it does not exist. procfs reads only
 * these: a class directory also holds `power/`, `device` and `subsystem`, and reading a
 * directory fails.
 */
export function listFiles(dir: string): string[] | undefined {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name)
      .sort();
  } catch (err) {
    if (unavailable(err)) return undefined;
    throw err;
  }
}
