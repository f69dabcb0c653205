import type { Entry, Store } from '../store/store.ts';
import { formatCidr, parseCidr, parseIp } from './addr.ts';
import { type Block, type BlockView, blockOf, type PoolView, usage } from './allocator.ts';
import { blockIpsPrefix, blocksPrefix, ipsPrefix, lastSegment } from './keys.ts';
import type { Pool } from './pool.ts';
import { blockRecordSchema, parseRecord } from './records.ts';

/**
 * One node's working view of one pool: which blocks are claimed by whom, and the used addresses
 * of the blocks it has read. It is a hint, never the truth — every commit built from it compares
 * the keys it relies on, and a failed compare brings back what changed. It only decides how often
 * we guess right. It is read again when it is older than a bound (to notice addresses others
 * released in our blocks), after a store error, and always before a pool is declared exhausted.
 */

export interface ClaimedBlock {
  readonly block: Block;
  readonly node: string;
  readonly modRevision: number;
}

export class CachedPoolView {
  readonly node: string;
  readonly blocks = new Map<bigint, ClaimedBlock>();
  /** Used addresses per block base, for the blocks read so far. */
  readonly used = new Map<bigint, Set<bigint>>();
  /** Whether every block's used set has been read (needed to borrow, and to say "exhausted"). */
  allRead = false;
  stale = true;
  /** A claim or block compare failed: others claimed blocks we do not know of. */
  blocksStale = false;
  #readAt = 0;

  constructor(node: string) {
    this.node = node;
  }

  needsRead(maxAgeMs: number, now: number): boolean {
    return this.stale || now - this.#readAt > maxAgeMs;
  }

  /** Reads the claimed blocks, and the used sets of this node's blocks (or of all blocks). */
  async read(store: Store, pool: Pool, scope: 'own' | 'all', now: number): Promise<void> {
    const claimed = await store.list(blocksPrefix(pool.name));
    this.blocks.clear();
    this.used.clear();
    for (const e of claimed.entries) this.learnBlock(pool, e.key, e);
    if (scope === 'all') {
      const ips = await store.list(ipsPrefix(pool.name));
      for (const b of this.blocks.keys()) this.used.set(b, new Set());
      for (const e of ips.entries) this.#addIp(pool, e);
    } else {
      const own = [...this.blocks.values()].filter((b) => b.node === this.node);
      const listings = await Promise.all(own.map((b) => store.list(blockIpsPrefix(pool.name, b.block))));
      for (const [i, b] of own.entries()) {
        this.used.set(b.block.base, new Set());
        for (const e of listings[i]!.entries) this.#addIp(pool, e);
      }
    }
    this.allRead = scope === 'all';
    this.stale = false;
    this.blocksStale = false;
    this.#readAt = now;
  }

  /**
   * Reads the block claims again, keeping the used sets read so far (a lost claim race means
   * others claimed blocks meanwhile: learning them one failed commit at a time would be slow).
   */
  async readBlocks(store: Store, pool: Pool): Promise<void> {
    const claimed = await store.list(blocksPrefix(pool.name));
    const before = new Map(this.blocks);
    this.blocks.clear();
    for (const e of claimed.entries) this.learnBlock(pool, e.key, e);
    for (const [base, b] of this.blocks) {
      // A block of ours we had not read (claimed by another instance under our name): read all.
      if (b.node === this.node && !this.used.has(base) && before.get(base)?.node !== this.node)
        this.stale = true;
    }
    this.blocksStale = false;
  }

  /** Records a block key as read from the store (undefined: it no longer exists). */
  learnBlock(pool: Pool, key: string, entry: Entry | undefined): void {
    const parsed = parseCidr(lastSegment(key).replace(/-(\d+)$/, '/$1'));
    if (!parsed.ok || parsed.cidr.prefix !== pool.blockPrefix) return; // not a block of this layout
    const base = parsed.cidr.base;
    if (!entry) {
      this.blocks.delete(base);
      this.used.delete(base);
      return;
    }
    const record = parseRecord(blockRecordSchema, entry);
    this.blocks.set(base, { block: parsed.cidr, node: record.node, modRevision: entry.modRevision });
  }

  markUsed(block: Block, ip: bigint): void {
    let set = this.used.get(block.base);
    if (!set) {
      set = new Set();
      this.used.set(block.base, set);
    }
    set.add(ip);
  }

  forget(block: Block, ip: bigint): void {
    this.used.get(block.base)?.delete(ip);
  }

  #addIp(pool: Pool, e: Entry): void {
    const a = parseIp(lastSegment(e.key));
    if (!a || a.family !== pool.family) return;
    const block = blockOf(pool, a.value);
    let set = this.used.get(block.base);
    if (!set) {
      // An address in a block nobody claims (claim lost to a removal race, or written by hand):
      // still used, so still counted.
      set = new Set();
      this.used.set(block.base, set);
    }
    set.add(a.value);
  }

  /** Usage summary for messages: "5 of 5 addresses in use (node-a: 1 block, …)". */
  describeUsage(pool: Pool): string {
    const views: BlockView[] = [...this.used.entries()].map(([base, used]) => ({
      block: { family: pool.family, base, prefix: pool.blockPrefix },
      used,
    }));
    const { used, total } = usage(pool, views);
    const perNode = new Map<string, number>();
    for (const b of this.blocks.values()) perNode.set(b.node, (perNode.get(b.node) ?? 0) + 1);
    const nodes = [...perNode.entries()].map(([n, c]) => `${n}: ${c}`).join(', ');
    return `${used} of ${total} addresses in use (${formatCidr(pool.cidr)}; blocks of /${pool.blockPrefix} per node: ${nodes || 'none'})`;
  }
}

/**
 * The view a round of allocations plans against: the cached view plus what this round has taken
 * and claimed so far (not yet committed), so one round never hands out an address twice.
 */
export class RoundDraft {
  readonly #view: CachedPoolView;
  readonly #claimFrom: bigint;
  readonly taken = new Map<bigint, Set<bigint>>();
  readonly claims = new Map<bigint, Block>();
  picks = 0;

  constructor(view: CachedPoolView, claimFrom: bigint) {
    this.#view = view;
    this.#claimFrom = claimFrom;
  }

  take(block: Block, ip: bigint, claim: boolean): void {
    let set = this.taken.get(block.base);
    if (!set) {
      set = new Set();
      this.taken.set(block.base, set);
    }
    set.add(ip);
    if (claim) this.claims.set(block.base, block);
    this.picks++;
  }

  #used(base: bigint): Set<bigint> {
    const out = new Set(this.#view.used.get(base));
    for (const ip of this.taken.get(base) ?? []) out.add(ip);
    return out;
  }

  plannable(): PoolView {
    const node = this.#view.node;
    const own: BlockView[] = [];
    const others: BlockView[] = [];
    for (const b of this.#view.blocks.values()) {
      if (b.node === node) own.push({ block: b.block, used: this.#used(b.block.base) });
      else if (this.#view.allRead) others.push({ block: b.block, used: this.#used(b.block.base) });
    }
    for (const block of this.claims.values()) own.push({ block, used: this.#used(block.base) });
    const claimed = new Set([...this.#view.blocks.keys(), ...this.claims.keys()]);
    const unclaimedUsed = new Map<bigint, Set<bigint>>();
    for (const base of this.#view.used.keys())
      if (!claimed.has(base)) unclaimedUsed.set(base, this.#used(base));
    return { own, others, claimed, unclaimedUsed, claimFrom: this.#claimFrom };
  }
}
