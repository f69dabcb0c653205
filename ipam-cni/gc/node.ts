import type { Logger } from '../../shared/logger.ts';
import { handlesPrefix, lastSegment, parseHandleKey } from '../ipam/keys.ts';
import type { GcKind } from '../ipam/metrics.ts';
import { blockRecordSchema, handleRecordSchema, parseRecord } from '../ipam/records.ts';
import type { Store } from '../store/store.ts';
import type { Attachment, LivenessSource, Verdict } from './liveness.ts';
import { releaseObservedHandle } from './release.ts';

/**
 * The node reconciler: this node's allocations against the live attachments. An allocation is a
 * candidate when no liveness source says it is alive and at least one says it is dead; it is
 * released only when a second observation, at least `graceMs` after the first, sees the very same
 * record (same modRevision) still a candidate — and the release itself compares that revision, so
 * a record re-used in between is never touched.
 *
 * The same two-observation rule hands back this node's empty blocks: a block with no address for
 * longer than the grace is deleted under two compares (the block record unchanged, nothing under
 * its ips prefix), so an allocation racing with it either lands first (the delete fails) or fails
 * its own block compare and claims again.
 */

export interface NodeGcOptions {
  readonly store: Store;
  readonly node: string;
  readonly graceMs: number;
  readonly sources: readonly LivenessSource[];
  /** Hand back empty blocks too. */
  readonly releaseEmptyBlocks?: boolean;
  readonly now?: () => number;
  readonly log?: Logger | undefined;
  readonly onRelease?: ((kind: GcKind) => void) | undefined;
}

export interface NodeGcRound {
  /** Allocations of this node seen. */
  readonly allocations: number;
  /** Candidates first seen this round (or seen again with a changed record). */
  readonly newCandidates: number;
  readonly released: string[];
  readonly blocksReleased: string[];
  /** Candidates whose record changed meanwhile: observation restarted. */
  readonly changed: string[];
}

interface Seen {
  readonly firstAt: number;
  readonly modRevision: number;
}

export class NodeGc {
  readonly #o: NodeGcOptions;
  readonly #now: () => number;
  readonly #candidates = new Map<string, Seen>();
  readonly #emptyBlocks = new Map<string, Seen>();

  constructor(options: NodeGcOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** One observation; releases what has been a candidate, unchanged, for longer than the grace. */
  async round(): Promise<NodeGcRound> {
    const out = {
      allocations: 0,
      newCandidates: 0,
      released: [] as string[],
      blocksReleased: [] as string[],
      changed: [] as string[],
    };
    const verdicts = (await Promise.all(this.#o.sources.map((s) => s.snapshot()))).filter(
      (v): v is Verdict => v !== undefined,
    );
    const now = this.#now();
    const { entries } = await this.#o.store.list(handlesPrefix);
    const present = new Set<string>();
    for (const e of entries) {
      const handle = parseRecord(handleRecordSchema, e);
      if (handle.node !== this.#o.node) continue;
      out.allocations++;
      const a: Attachment = { ...parseHandleKey(e.key), handle };
      const answers = verdicts.map((v) => v(a));
      const candidate = !answers.includes(true) && answers.includes(false);
      if (!candidate) continue;
      present.add(e.key);
      const seen = this.#candidates.get(e.key);
      if (!seen || seen.modRevision !== e.modRevision) {
        if (seen) out.changed.push(e.key);
        this.#candidates.set(e.key, { firstAt: now, modRevision: e.modRevision });
        out.newCandidates++;
        continue;
      }
      if (now - seen.firstAt < this.#o.graceMs) continue;
      const outcome = await releaseObservedHandle(this.#o.store, e);
      this.#candidates.delete(e.key);
      if (outcome === 'released') {
        out.released.push(e.key);
        this.#o.onRelease?.('node');
        this.#o.log?.info(
          { containerID: a.containerID, ifName: a.ifName, ip: handle.ip, pool: handle.pool },
          'ipam gc: released a leaked address (its container is gone)',
        );
      } else if (outcome === 'changed') out.changed.push(e.key);
    }
    for (const k of this.#candidates.keys()) if (!present.has(k)) this.#candidates.delete(k);
    if (this.#o.releaseEmptyBlocks !== false) out.blocksReleased.push(...(await this.#blocks(now)));
    return out;
  }

  async #blocks(now: number): Promise<string[]> {
    const { store } = this.#o;
    const released: string[] = [];
    const blocks = (await store.list('blocks/')).entries.filter(
      (b) => parseRecord(blockRecordSchema, b).node === this.#o.node,
    );
    const present = new Set<string>();
    for (const b of blocks) {
      const [, pool = '', name = ''] = b.key.split('/');
      const ipsPrefix = `ips/${pool}/${name}/`;
      const used = await store.list(ipsPrefix);
      if (used.entries.length > 0) continue;
      present.add(b.key);
      const seen = this.#emptyBlocks.get(b.key);
      if (!seen || seen.modRevision !== b.modRevision) {
        this.#emptyBlocks.set(b.key, { firstAt: now, modRevision: b.modRevision });
        continue;
      }
      if (now - seen.firstAt < this.#o.graceMs) continue;
      const r = await store.commit({
        conditions: [
          { key: b.key, modRevision: b.modRevision },
          { prefix: ipsPrefix, empty: true },
        ],
        writes: [{ key: b.key, delete: true }],
      });
      this.#emptyBlocks.delete(b.key);
      if (r.ok) {
        released.push(b.key);
        this.#o.onRelease?.('block');
        this.#o.log?.info(
          { pool, block: lastSegment(b.key) },
          'ipam gc: handed an empty block back to the pool',
        );
      }
    }
    for (const k of this.#emptyBlocks.keys()) if (!present.has(k)) this.#emptyBlocks.delete(k);
    return released;
  }
}
