/**
 * Snappy *block* format compressor (github.com/google/snappy format_description.txt), which
 * remote_write requires (not the framed/stream format). Written here rather than taken as a
 * dependency: the npm `snappy` package is a native addon, and the compressor alone is short. It is the
 * reference algorithm in its simplest form — greedy matching of 4-byte sequences through a hash
 * table, in independent 64 KiB blocks as the Go encoder does — without the reference's skip
 * heuristics, so it compresses slightly less on incompressible input but always emits valid snappy.
 */

const BLOCK = 1 << 16;
const TABLE_BITS = 14;
/** Inputs shorter than this are sent as one literal (the Go encoder's minNonLiteralBlockSize). */
const MIN_MATCH_INPUT = 17;

function varint(out: Uint8Array, pos: number, value: number): number {
  let v = value;
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[pos++] = v;
  return pos;
}

function literal(out: Uint8Array, pos: number, src: Uint8Array, start: number, end: number): number {
  const n = end - start - 1;
  if (n < 0) return pos;
  if (n < 60) {
    out[pos++] = n << 2;
  } else if (n < 1 << 8) {
    out[pos++] = 60 << 2;
    out[pos++] = n;
  } else if (n < 1 << 16) {
    out[pos++] = 61 << 2;
    out[pos++] = n & 0xff;
    out[pos++] = n >>> 8;
  } else {
    // A block is at most 64 KiB, so three length bytes always suffice.
    out[pos++] = 62 << 2;
    out[pos++] = n & 0xff;
    out[pos++] = (n >>> 8) & 0xff;
    out[pos++] = n >>> 16;
  }
  out.set(src.subarray(start, end), pos);
  return pos + (end - start);
}

function copy(out: Uint8Array, pos: number, offset: number, length: number): number {
  let len = length;
  // Copies are at most 64 long; leave at least 4 for the last one (the 1-byte-offset form's minimum).
  while (len >= 68) {
    pos = copy2(out, pos, offset, 64);
    len -= 64;
  }
  if (len > 64) {
    pos = copy2(out, pos, offset, 60);
    len -= 60;
  }
  if (len >= 12 || offset >= 2048) return copy2(out, pos, offset, len);
  out[pos++] = ((offset >>> 8) << 5) | ((len - 4) << 2) | 1;
  out[pos++] = offset & 0xff;
  return pos;
}

function copy2(out: Uint8Array, pos: number, offset: number, len: number): number {
  out[pos++] = ((len - 1) << 2) | 2;
  out[pos++] = offset & 0xff;
  out[pos++] = offset >>> 8;
  return pos;
}

const load32 = (b: Uint8Array, i: number) => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
const hash = (v: number) => Math.imul(v, 0x1e35a7bd) >>> (32 - TABLE_BITS);

function block(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  pos: number,
  table: Int32Array,
): number {
  if (end - start < MIN_MATCH_INPUT) return literal(out, pos, src, start, end);
  table.fill(-1);
  let pending = start;
  let i = start;
  const last = end - 4;
  while (i <= last) {
    const v = load32(src, i);
    const h = hash(v);
    const candidate = table[h]!;
    table[h] = i;
    if (candidate >= start && load32(src, candidate) === v) {
      pos = literal(out, pos, src, pending, i);
      let len = 4;
      while (i + len < end && src[candidate + len] === src[i + len]) len++;
      pos = copy(out, pos, i - candidate, len);
      i += len;
      pending = i;
    } else {
      i++;
    }
  }
  return literal(out, pos, src, pending, end);
}

/** The largest output for n input bytes (the reference's MaxCompressedLength). */
export const maxCompressedLength = (n: number) => 32 + n + Math.floor(n / 6);

export function snappyCompress(input: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(maxCompressedLength(input.length));
  let pos = varint(out, 0, input.length);
  const table = new Int32Array(1 << TABLE_BITS);
  for (let start = 0; start < input.length; start += BLOCK) {
    pos = block(input, start, Math.min(input.length, start + BLOCK), out, pos, table);
  }
  return out.subarray(0, pos);
}
