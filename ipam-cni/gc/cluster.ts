import type { Logger } from '../../shared/logger.ts';
import { handlesPrefix } from '../ipam/keys.ts';
import type { GcKind } from '../ipam/metrics.ts';
import { blockRecordSchema, handleRecordSchema, parseRecord } from '../ipam/records.ts';
import type { Entry, Store } from '../store/store.ts';
import { livenessPrefix, nodeLivenessKey } from './presence.ts';
import { releaseObservedHandle } from './release.ts';

/**
 * Cluster GC: the allocations and blocks of nodes whose liveness key (`nodes/<node>`, bound to the
 * agent's etcd lease) has been gone for longer than the grace. Run by the elected agent only
 * (presence.ts) — and every release still carries `nodes/<node>` absent as a compare, so a node
 * that comes back in the meantime, or a second agent racing this one, never makes it free a live
 * record: each record is freed at most once, by one transaction.
 *
 * Addresses kept for sticky pods (no container) stay: the pod gets the same address back on the
 * node it is rescheduled to. A dead node's block is handed back once nothing is left in it.
 */

export interface ClusterGcOptions {
  readonly store: Store;
  /** This agent's node (never collected by itself). */
  readonly node: string;
  readonly graceMs: number;
  readonly now?: () => number;
  readonly log?: Logger | undefined;
  readonly onRelease?: ((kind: GcKind) => void) | undefined;
}

export interface ClusterGcRound {
  /** Nodes with records and no liveness key. */
  readonly missing: string[];
  /** Nodes whose records were collected this round (missing for longer than the grace). */
  readonly collected: string[];
  readonly released: string[];
  readonly blocksReleased: string[];
}

export class ClusterGc {
  readonly #o: ClusterGcOptions;
  readonly #now: () => number;
  /** node → when this agent first saw it without a liveness key */
  readonly #missingSince = new Map<string, number>();

  constructor(options: ClusterGcOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** One pass. Call it only while leading; a new leader starts its grace from scratch. */
  async round(): Promise<ClusterGcRound> {
    const { store } = this.#o;
    const out = {
      missing: [] as string[],
      collected: [] as string[],
      released: [] as string[],
      blocksReleased: [] as string[],
    };
    const now = this.#now();
    const [live, handles, blocks] = await Promise.all([
      store.list(livenessPrefix),
      store.list(handlesPrefix),
      store.list('blocks/'),
    ]);
    const alive = new Set(live.entries.map((e) => e.key.slice(livenessPrefix.length)));
    const byNode = new Map<string, { handles: Entry[]; blocks: Entry[] }>();
    const slot = (node: string) => {
      const s = byNode.get(node) ?? { handles: [], blocks: [] };
      byNode.set(node, s);
      return s;
    };
    for (const e of handles.entries) slot(parseRecord(handleRecordSchema, e).node).handles.push(e);
    for (const e of blocks.entries) slot(parseRecord(blockRecordSchema, e).node).blocks.push(e);
    for (const n of [...this.#missingSince.keys()])
      if (alive.has(n) || !byNode.has(n)) this.#missingSince.delete(n);
    for (const [node, records] of byNode) {
      if (node === this.#o.node || alive.has(node)) continue;
      out.missing.push(node);
      const since = this.#missingSince.get(node);
      if (since === undefined) {
        this.#missingSince.set(node, now);
        continue;
      }
      if (now - since < this.#o.graceMs) continue;
      out.collected.push(node);
      const guard = [{ key: nodeLivenessKey(node), absent: true as const }];
      for (const h of records.handles) {
        if ((await releaseObservedHandle(store, h, { guard })) !== 'released') continue;
        out.released.push(h.key);
        this.#o.onRelease?.('cluster');
      }
      for (const b of records.blocks) {
        const [, pool = '', name = ''] = b.key.split('/');
        const r = await store.commit({
          conditions: [
            ...guard,
            { key: b.key, modRevision: b.modRevision },
            { prefix: `ips/${pool}/${name}/`, empty: true },
          ],
          writes: [{ key: b.key, delete: true }],
        });
        if (!r.ok) continue;
        out.blocksReleased.push(b.key);
        this.#o.onRelease?.('cluster');
      }
      this.#o.log?.warn(
        {
          node,
          released: out.released.length,
          blocks: out.blocksReleased.length,
          blocksLeft: records.blocks.length,
        },
        'ipam gc: collected the allocations of a node whose liveness lease is gone',
      );
    }
    return out;
  }
}
