import { describe, expect, it } from 'vitest';
import { type Cidr, formatIp, parseIp, sizeOf } from './addr.ts';
import {
  type BlockView,
  blockKeyName,
  blockOf,
  claimStart,
  lowestFree,
  nextUnclaimedBlock,
  type Plan,
  plan,
  usage,
} from './allocator.ts';
import { compilePool, type Pool, unusableReason } from './pool.ts';

const ip = (s: string) => parseIp(s)!.value;
const fmt = (p: Pool, v: bigint) => formatIp(p.family, v);

/** Allocates for one node until exhausted; returns the addresses in the order handed out. */
function drain(pool: Pool, limit = 10_000): string[] {
  const own: { block: Cidr; used: Set<bigint> }[] = [];
  const claimed = new Set<bigint>();
  const out: string[] = [];
  for (let i = 0; i < limit; i++) {
    const next = plan(pool, { own, others: [], claimed });
    if (next.kind === 'exhausted') return out;
    if (next.kind === 'claim') {
      own.push({ block: next.block, used: new Set() });
      claimed.add(next.block.base);
    }
    own.find((b) => b.block.base === next.block.base)!.used.add(next.ip);
    out.push(fmt(pool, next.ip));
  }
  throw new Error('did not exhaust');
}

/** Every address of a small pool that unusableReason (the spec-level rule) lets through. */
function usableByRule(pool: Pool): string[] {
  const out: string[] = [];
  const first = pool.cidr.base;
  for (let v = first; v < first + sizeOf(pool.cidr); v++)
    if (!unusableReason(pool, v)) out.push(fmt(pool, v));
  return out;
}

describe('one node draining a pool hands out every usable address once, lowest first', () => {
  it.each([
    [{ name: 'p', cidr: '10.0.0.0/29', gateway: '10.0.0.1' }, 5],
    [{ name: 'p', cidr: '10.0.0.0/30' }, 2],
    [{ name: 'p', cidr: '10.0.0.0/31' }, 2],
    [{ name: 'p', cidr: '10.0.0.0/31', gateway: '10.0.0.1' }, 1],
    [{ name: 'p', cidr: '10.0.0.9/32' }, 1],
    [
      {
        name: 'p',
        cidr: '10.0.0.0/24',
        gateway: '10.0.0.1',
        blockSize: 28,
        exclude: ['10.0.0.16/28', '10.0.0.77'],
      },
      236,
    ],
    [
      {
        name: 'p',
        cidr: '10.0.0.0/24',
        blockSize: 30,
        ranges: [
          { start: '10.0.0.5', end: '10.0.0.9' },
          { start: '10.0.0.200', end: '10.0.0.201' },
        ],
      },
      7,
    ],
    [{ name: 'p', cidr: 'fd00::/126' }, 3],
    [{ name: 'p', cidr: 'fd00::/127' }, 2],
    [{ name: 'p', cidr: 'fd00::7/128' }, 1],
    [{ name: 'p', cidr: 'fd00::/120', gateway: 'fd00::1', blockSize: 124, exclude: ['fd00::20/124'] }, 238],
  ])('%j → %i addresses', (spec, expected) => {
    const pool = compilePool(spec);
    const got = drain(pool);
    expect(got).toHaveLength(expected);
    expect(new Set(got).size).toBe(got.length);
    expect(got).toEqual(usableByRule(pool)); // every usable address, ascending: lowest-free
  });

  it('never hands out the gateway, network or broadcast address', () => {
    const pool = compilePool({ name: 'p', cidr: '192.168.1.0/24', gateway: '192.168.1.254', blockSize: 26 });
    const got = drain(pool);
    expect(got).not.toContain('192.168.1.0');
    expect(got).not.toContain('192.168.1.255');
    expect(got).not.toContain('192.168.1.254');
    expect(got).toHaveLength(253);
  });
});

describe('block choice', () => {
  const pool = compilePool({ name: 'p', cidr: '10.0.0.0/24', blockSize: 26, gateway: '10.0.0.1' });
  const block = (s: string) => blockOf(pool, ip(s));

  it('fills own blocks first, lowest block first, then claims, then borrows', () => {
    const own: BlockView[] = [
      { block: block('10.0.0.128'), used: new Set([ip('10.0.0.128')]) },
      { block: block('10.0.0.0'), used: new Set([ip('10.0.0.2')]) },
    ];
    const first = plan(pool, { own, others: [], claimed: new Set([ip('10.0.0.0'), ip('10.0.0.128')]) });
    expect(first).toMatchObject({ kind: 'own', ip: ip('10.0.0.3') });

    const full = (b: string) => {
      const bl = block(b);
      const used = new Set<bigint>();
      for (let v = bl.base; v < bl.base + 64n; v++) used.add(v);
      return { block: bl, used };
    };
    const claim = plan(pool, {
      own: [full('10.0.0.0')],
      others: [],
      claimed: new Set([ip('10.0.0.0'), ip('10.0.0.64')]),
    });
    expect(claim).toEqual({ kind: 'claim', block: block('10.0.0.128'), ip: ip('10.0.0.128') });

    const others = [full('10.0.0.64'), { block: block('10.0.0.192'), used: new Set([ip('10.0.0.192')]) }];
    const all = new Set([0n, 64n, 128n, 192n].map((o) => ip('10.0.0.0') + o));
    const borrow = plan(pool, { own: [full('10.0.0.0'), full('10.0.0.128')], others, claimed: all });
    expect(borrow).toEqual({ kind: 'borrow', block: block('10.0.0.192'), ip: ip('10.0.0.193') });

    const exhausted = plan(pool, {
      own: [full('10.0.0.0'), full('10.0.0.128')],
      others: [full('10.0.0.64'), full('10.0.0.192')],
      claimed: all,
    });
    expect(exhausted).toEqual({ kind: 'exhausted' });
  });

  it('skips blocks without usable addresses and does not re-give addresses of unclaimed blocks', () => {
    const p = compilePool({
      name: 'p',
      cidr: '10.0.0.0/24',
      blockSize: 28,
      ranges: [{ start: '10.0.0.40', end: '10.0.0.200' }],
    });
    expect(blockKeyName(nextUnclaimedBlock(p, new Set())!)).toBe('10.0.0.32-28');
    const next = plan(p, {
      own: [],
      others: [],
      claimed: new Set(),
      unclaimedUsed: new Map([[ip('10.0.0.32'), new Set([ip('10.0.0.40')])]]),
    });
    expect(next).toEqual({ kind: 'claim', block: blockOf(p, ip('10.0.0.32')), ip: ip('10.0.0.41') });
  });

  it('finds an unclaimed block of a /64 without enumerating it', () => {
    const p = compilePool({ name: 'p', cidr: 'fd00::/64' });
    const claimed = new Set<bigint>();
    const base = ip('fd00::');
    for (let i = 0n; i < 1000n; i++) claimed.add(base + i * 64n);
    const b = nextUnclaimedBlock(p, claimed)!;
    expect(formatIp(6, b.base)).toBe('fd00::fa00');
    expect(lowestFree(p, b, new Set())).toBe(b.base);
    const first = nextUnclaimedBlock(p, new Set())!;
    expect(lowestFree(p, first, new Set())).toBe(base + 1n); // fd00:: is the subnet-router anycast
  });
});

describe('where a node starts claiming', () => {
  const pool = compilePool({ name: 'p', cidr: '10.0.0.0/16', blockSize: 26 });

  it('is a block-aligned point of the pool derived from the node name, spread across nodes', () => {
    const starts = Array.from({ length: 50 }, (_, i) => claimStart(pool, `node-${i}`));
    for (const s of starts) {
      expect(s).toBe(blockOf(pool, s).base);
      expect(s >= pool.cidr.base && s < pool.cidr.base + 65536n).toBe(true);
    }
    expect(new Set(starts).size).toBeGreaterThan(45);
    expect(claimStart(pool, 'node-7')).toBe(claimStart(pool, 'node-7'));
    expect(claimStart(compilePool({ name: 'q', cidr: '10.0.0.0/29' }), 'node-7')).toBe(ip('10.0.0.0'));
  });

  it('searches upwards from the start, then wraps around to the pool start', () => {
    const p = compilePool({
      name: 'p',
      cidr: '10.0.0.0/24',
      blockSize: 26,
      ranges: [{ start: '10.0.0.10', end: '10.0.0.150' }],
    });
    const at = (s: string) =>
      formatIp(4, nextUnclaimedBlock(p, new Set([ip('10.0.0.64')]), ip(s))?.base ?? -1n);
    expect(at('10.0.0.0')).toBe('10.0.0.0');
    expect(at('10.0.0.64')).toBe('10.0.0.128'); // 64 is claimed
    expect(at('10.0.0.192')).toBe('10.0.0.0'); // no usable address at or above: wrap
    const all = new Set([ip('10.0.0.0'), ip('10.0.0.64'), ip('10.0.0.128')]);
    expect(nextUnclaimedBlock(p, all, ip('10.0.0.128'))).toBeUndefined();
    const next = plan(p, { own: [], others: [], claimed: new Set(), claimFrom: ip('10.0.0.128') });
    expect(next).toEqual({ kind: 'claim', block: blockOf(p, ip('10.0.0.128')), ip: ip('10.0.0.128') });
  });
});

describe('plan agrees with a brute-force model on random states', () => {
  const pools = [
    compilePool({
      name: 'a',
      cidr: '10.0.0.0/26',
      gateway: '10.0.0.1',
      blockSize: 29,
      exclude: ['10.0.0.20/30', '10.0.0.33'],
    }),
    compilePool({
      name: 'b',
      cidr: 'fd00::/122',
      blockSize: 125,
      ranges: [{ start: 'fd00::3', end: 'fd00::30' }],
    }),
  ];
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };

  function model(pool: Pool, own: BlockView[], others: BlockView[], claimed: Set<bigint>): Plan {
    const free = (b: Cidr, used: ReadonlySet<bigint>) => {
      for (let v = b.base; v < b.base + sizeOf(b); v++)
        if (!unusableReason(pool, v) && !used.has(v)) return v;
      return undefined;
    };
    for (const b of [...own].sort((x, y) => Number(x.block.base - y.block.base))) {
      const v = free(b.block, b.used);
      if (v !== undefined) return { kind: 'own', block: b.block, ip: v };
    }
    const step = 1n << BigInt((pool.family === 4 ? 32 : 128) - pool.blockPrefix);
    for (let base = pool.cidr.base; base < pool.cidr.base + sizeOf(pool.cidr); base += step) {
      const b = blockOf(pool, base);
      if (claimed.has(base)) continue;
      const v = free(b, new Set());
      if (v !== undefined) return { kind: 'claim', block: b, ip: v };
    }
    for (const b of [...others].sort((x, y) => Number(x.block.base - y.block.base))) {
      const v = free(b.block, b.used);
      if (v !== undefined) return { kind: 'borrow', block: b.block, ip: v };
    }
    return { kind: 'exhausted' };
  }

  it.each(pools.map((p) => [p.name, p] as const))('pool %s, 2000 states', (_, pool) => {
    const step = 1n << BigInt((pool.family === 4 ? 32 : 128) - pool.blockPrefix);
    const blocks: Cidr[] = [];
    for (let base = pool.cidr.base; base < pool.cidr.base + sizeOf(pool.cidr); base += step)
      blocks.push(blockOf(pool, base));
    for (let round = 0; round < 2000; round++) {
      const own: BlockView[] = [];
      const others: BlockView[] = [];
      const claimed = new Set<bigint>();
      for (const b of blocks) {
        const owner = rand(4); // 0: unclaimed, 1: own, 2-3: other
        if (owner === 0) continue;
        claimed.add(b.base);
        const used = new Set<bigint>();
        const fill = rand(3) === 0 ? 1 : rand(2); // sometimes full, sometimes random
        for (let v = b.base; v < b.base + sizeOf(b); v++)
          if (fill === 1 ? rand(5) !== 0 || rand(2) === 0 : rand(3) === 0) used.add(v);
        (owner === 1 ? own : others).push({ block: b, used });
      }
      expect(plan(pool, { own, others, claimed })).toEqual(model(pool, own, others, claimed));
    }
  });
});

describe('usage', () => {
  it('counts used addresses that are usable, against the pool size', () => {
    const pool = compilePool({ name: 'p', cidr: '10.0.0.0/29', gateway: '10.0.0.1' });
    const b = blockOf(pool, ip('10.0.0.0'));
    expect(usage(pool, [{ block: b, used: new Set([ip('10.0.0.2'), ip('10.0.0.3')]) }])).toEqual({
      used: 2n,
      total: 5n,
    });
  });
});
