import { describe, expect, it } from 'vitest';
import { contains, count, intersect, normalize, subtract } from './intervals.ts';

const iv = (lo: number, hi: number) => ({ lo: BigInt(lo), hi: BigInt(hi) });
const set = (xs: Iterable<number>) => {
  const out: ReturnType<typeof iv>[] = [];
  for (const x of [...xs].sort((a, b) => a - b)) out.push(iv(x, x));
  return normalize(out);
};
const members = (s: ReturnType<typeof normalize>) => {
  const out: number[] = [];
  for (const i of s) for (let v = i.lo; v <= i.hi; v++) out.push(Number(v));
  return out;
};

describe('interval sets', () => {
  it('normalizes: sorts, merges touching and overlapping, drops empty', () => {
    expect(normalize([iv(5, 9), iv(1, 3), iv(4, 4), iv(8, 12), iv(20, 19)])).toEqual([iv(1, 12)]);
  });

  it('agrees with plain sets on random inputs (intersect, subtract, count, contains)', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const a = new Set(Array.from({ length: rand(30) }, () => rand(64)));
      const b = new Set(Array.from({ length: rand(30) }, () => rand(64)));
      const A = set(a);
      const B = set(b);
      expect(members(intersect(A, B))).toEqual([...a].filter((x) => b.has(x)).sort((x, y) => x - y));
      expect(members(subtract(A, B))).toEqual([...a].filter((x) => !b.has(x)).sort((x, y) => x - y));
      expect(count(A)).toBe(BigInt(a.size));
      for (let v = 0; v < 64; v++) expect(contains(A, BigInt(v))).toBe(a.has(v));
    }
  });
});
