import { type Cidr, formatCidr, hostMask, lastOf, networkOf } from './addr.ts';
import { type Interval, intersect } from './intervals.ts';
import type { Pool } from './pool.ts';

/**
 * The pure allocator: which address, or which block to claim, from a pool and what is in use —
 * no I/O, no clock, no randomness, so every decision can be tested exhaustively and replayed.
 *
 * Policy, in order:
 *  1. the lowest free address in the node's own blocks (lowest block first);
 *  2. else claim an unclaimed block that has a usable address (the first at or after the node's
 *     starting point, see claimStart), and take its lowest;
 *  3. else borrow the lowest free address from another node's block;
 *  4. else the pool is exhausted.
 *
 * Why lowest-free and not round-robin (host-local's choice): it packs each block from the bottom,
 * so blocks drain and can be handed back to the pool, and the answer is a function of the used
 * set alone — no cursor to persist, nothing that differs between two agents looking at the same
 * data. The cost is that a released address is reused at once; sticky IPs cover pods that must
 * keep theirs, and the CNI layer announces a reused address (gratuitous ARP / unsolicited NA).
 */

export type Block = Cidr;

/** What is known of one block: its used addresses (allocated or reserved). */
export interface BlockView {
  readonly block: Block;
  readonly used: ReadonlySet<bigint>;
}

export interface PoolView {
  /** Blocks claimed by this node. */
  readonly own: readonly BlockView[];
  /** Blocks claimed by other nodes (needed only to borrow; may be empty until then). */
  readonly others: readonly BlockView[];
  /** Bases of every claimed block, this node's and others'. */
  readonly claimed: ReadonlySet<bigint>;
  /**
   * Addresses known to be used in blocks nobody claims (a claim removed under them): a block
   * claimed anew must not hand those out again.
   */
  readonly unclaimedUsed?: ReadonlyMap<bigint, ReadonlySet<bigint>>;
  /** Where to start looking for a block to claim (`claimStart`); default the pool's start. */
  readonly claimFrom?: bigint;
}

export type Plan =
  | { readonly kind: 'own'; readonly block: Block; readonly ip: bigint }
  | { readonly kind: 'claim'; readonly block: Block; readonly ip: bigint }
  | { readonly kind: 'borrow'; readonly block: Block; readonly ip: bigint }
  | { readonly kind: 'exhausted' };

export const blockOf = (pool: Pool, ip: bigint): Block => networkOf(pool.family, ip, pool.blockPrefix);

/** The pool's usable addresses inside one block. */
export const usableIn = (pool: Pool, block: Block): Interval[] =>
  intersect(pool.usable, [{ lo: block.base, hi: lastOf(block) }]);

/** The lowest usable address of `block` not in `used`. */
export function lowestFree(pool: Pool, block: Block, used: ReadonlySet<bigint>): bigint | undefined {
  for (const { lo, hi } of usableIn(pool, block)) {
    // Stops after at most |used| + 1 steps: every skipped address is in `used`.
    for (let ip = lo; ip <= hi; ip++) if (!used.has(ip)) return ip;
  }
  return undefined;
}

/**
 * The first block not yet claimed that holds a usable address, searching upwards from the block
 * that holds `from` (default: the pool's start) and then wrapping around. Walks the usable
 * intervals a block at a time, so the cost is the number of claimed blocks passed over, not the
 * pool's size.
 */
export function nextUnclaimedBlock(
  pool: Pool,
  claimed: ReadonlySet<bigint>,
  from?: bigint,
): Block | undefined {
  const step = hostMask(pool.family, pool.blockPrefix) + 1n;
  const start = from === undefined ? pool.cidr.base : blockOf(pool, from).base;
  const search = (min: bigint, max: bigint): Block | undefined => {
    for (const { lo, hi } of pool.usable) {
      if (hi < min || lo > max) continue;
      let base = blockOf(pool, lo > min ? lo : min).base;
      for (; base <= hi && base <= max; base += step) {
        // Every block met here contains part of [lo, hi], hence a usable address.
        if (!claimed.has(base)) return { family: pool.family, base, prefix: pool.blockPrefix };
      }
    }
    return undefined;
  };
  return (
    search(start, lastOf(pool.cidr)) ??
    (start > pool.cidr.base ? search(pool.cidr.base, start - 1n) : undefined)
  );
}

/**
 * Where a node starts looking for a block to claim: a point in the pool derived from its name.
 * Nodes that claim at the same moment (a fresh pool, a scale-up) then rarely race for the same
 * block; a lost race still costs only a retry.
 */
export function claimStart(pool: Pool, node: string): bigint {
  let h = 0xcbf29ce484222325n; // FNV-1a, 64 bits
  for (const byte of Buffer.from(node, 'utf8'))
    h = ((h ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  const blocks = 1n << BigInt(pool.blockPrefix - pool.cidr.prefix);
  return pool.cidr.base + (h % blocks) * (hostMask(pool.family, pool.blockPrefix) + 1n);
}

const byBase = (a: BlockView, b: BlockView) =>
  a.block.base < b.block.base ? -1 : a.block.base > b.block.base ? 1 : 0;

export function plan(pool: Pool, view: PoolView): Plan {
  for (const b of [...view.own].sort(byBase)) {
    const ip = lowestFree(pool, b.block, b.used);
    if (ip !== undefined) return { kind: 'own', block: b.block, ip };
  }
  const fresh = nextUnclaimedBlock(pool, view.claimed, view.claimFrom);
  if (fresh) {
    const ip = lowestFree(pool, fresh, view.unclaimedUsed?.get(fresh.base) ?? new Set());
    if (ip !== undefined) return { kind: 'claim', block: fresh, ip };
  }
  for (const b of [...view.others].sort(byBase)) {
    const ip = lowestFree(pool, b.block, b.used);
    if (ip !== undefined) return { kind: 'borrow', block: b.block, ip };
  }
  return { kind: 'exhausted' };
}

/** Used and total usable addresses of a pool, for messages and `ipam show`. */
export function usage(pool: Pool, blocks: readonly BlockView[]): { used: bigint; total: bigint } {
  let used = 0n;
  for (const b of blocks) {
    const usable = usableIn(pool, b.block);
    for (const ip of b.used) if (usable.some((i) => i.lo <= ip && ip <= i.hi)) used++;
  }
  return { used, total: pool.size };
}

/** "10.0.0.64-26": a block as a store key segment ("/" would split the key). */
export const blockKeyName = (block: Block): string => formatCidr(block).replace('/', '-');
