/**
 * Sets of addresses as sorted, disjoint, inclusive [lo, hi] intervals. A /64 has 2^64 addresses:
 * pools, ranges and exclusions must be reasoned about as intervals, never enumerated.
 */

export interface Interval {
  readonly lo: bigint;
  readonly hi: bigint;
}

/** Sorts and merges touching or overlapping intervals. */
export function normalize(list: readonly Interval[]): Interval[] {
  const sorted = list.filter((i) => i.lo <= i.hi).sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out.at(-1);
    if (last && i.lo <= last.hi + 1n) {
      if (i.hi > last.hi) out[out.length - 1] = { lo: last.lo, hi: i.hi };
    } else {
      out.push(i);
    }
  }
  return out;
}

export function intersect(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    // Not Math.max/min: they take numbers, these are bigints.
    let lo = x.lo;
    if (y.lo > lo) lo = y.lo;
    let hi = x.hi;
    if (y.hi < hi) hi = y.hi;
    if (lo <= hi) out.push({ lo, hi });
    if (x.hi < y.hi) i++;
    else j++;
  }
  return out;
}

/** a minus b; both normalized. */
export function subtract(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let j = 0;
  for (const x of a) {
    let lo = x.lo;
    while (j < b.length && b[j]!.hi < lo) j++;
    let k = j;
    while (k < b.length && b[k]!.lo <= x.hi) {
      const y = b[k]!;
      if (y.lo > lo) out.push({ lo, hi: y.lo - 1n });
      if (y.hi + 1n > lo) lo = y.hi + 1n;
      k++;
    }
    if (lo <= x.hi) out.push({ lo, hi: x.hi });
  }
  return out;
}

export const count = (set: readonly Interval[]): bigint => set.reduce((n, i) => n + (i.hi - i.lo + 1n), 0n);

export function contains(set: readonly Interval[], value: bigint): boolean {
  let lo = 0;
  let hi = set.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const i = set[mid]!;
    if (value < i.lo) hi = mid - 1;
    else if (value > i.hi) lo = mid + 1;
    else return true;
  }
  return false;
}
