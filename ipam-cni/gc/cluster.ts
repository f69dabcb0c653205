import type { Logger } from '../../shared/logger.ts';
import { handlesPrefix } from '../ipam/keys.ts';
import type { GcKind } from '../ipam/metrics.ts';
import { blockRecordSchema, type HandleRecord, handleRecordSchema, parseRecord } from '../ipam/records.ts';
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
 * A lease gone says only that the agent is gone — crash-looping, upgrading, or cut off from etcd
 * while its pods keep running. So the API server decides, asked at the moment of the decision
 * (NodeEvidence): a handle is freed only when the node's Node object is deleted, or when the API
 * server places no pod with the handle's namespace/name (and uid, when recorded) on that node.
 * A handle whose pod the API server still shows on an existing node is never freed; when the API
 * server cannot be asked (down, no RBAC, no API server configured) nothing of that node is freed
 * and its grace keeps running, so the first answer decides.
 *
 * Addresses kept for sticky pods (no container) stay: the pod gets the same address back on the
 * node it is rescheduled to. A dead node's block is handed back once nothing is left in it.
 */

/** A pod the API server places on a node: namespace/name, and the uids it is known by. */
export interface PlacedPod {
  readonly namespace: string;
  readonly name: string;
  readonly uids: readonly string[];
}

/** What the API server says about a node now. */
export interface NodeEvidence {
  /** Throws when the API server does not answer: nothing is freed on a question left open. */
  placement(node: string): Promise<{ readonly exists: boolean; readonly pods: readonly PlacedPod[] }>;
}

export interface ClusterGcOptions {
  readonly store: Store;
  /** This agent's node (never collected by itself). */
  readonly node: string;
  readonly graceMs: number;
  readonly now?: () => number;
  readonly log?: Logger | undefined;
  readonly onRelease?: ((kind: GcKind) => void) | undefined;
  /** The API server's word on nodes whose lease is gone; absent: nothing is ever freed. */
  readonly nodes?: NodeEvidence | undefined;
}

export interface ClusterGcRound {
  /** Nodes with records and no liveness key. */
  readonly missing: string[];
  /** Nodes whose records were collected this round (missing for longer than the grace, confirmed by the API server). */
  readonly collected: string[];
  /** Nodes past the grace that the API server could not be asked about: nothing of theirs freed. */
  readonly unconfirmed: string[];
  /** Handles left because the API server still shows their pod on the (existing) node. */
  readonly kept: string[];
  readonly released: string[];
  readonly blocksReleased: string[];
}

export class ClusterGc {
  readonly #o: ClusterGcOptions;
  readonly #now: () => number;
  /** node → when this agent first saw it without a liveness key */
  readonly #missingSince = new Map<string, number>();
  /** Nodes already logged as past the grace with no API server to ask. */
  readonly #unasked = new Set<string>();

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
      unconfirmed: [] as string[],
      kept: [] as string[],
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
      const running = await this.#stillRunning(node);
      if (running === undefined) {
        out.unconfirmed.push(node);
        continue;
      }
      out.collected.push(node);
      const guard = [{ key: nodeLivenessKey(node), absent: true as const }];
      const counts = { released: 0, kept: 0, blocks: 0 };
      for (const h of records.handles) {
        if (running(parseRecord(handleRecordSchema, h))) {
          out.kept.push(h.key);
          counts.kept++;
          continue;
        }
        if ((await releaseObservedHandle(store, h, { guard })) !== 'released') continue;
        out.released.push(h.key);
        counts.released++;
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
        counts.blocks++;
        this.#o.onRelease?.('cluster');
      }
      const fields = { node, ...counts, blocksLeft: records.blocks.length - counts.blocks };
      if (counts.released + counts.blocks > 0)
        this.#o.log?.warn(
          fields,
          counts.kept > 0
            ? 'ipam gc: collected the allocations of pods gone from a node whose liveness lease is gone; the API server still shows its other pods, their addresses kept'
            : 'ipam gc: collected the allocations of a node whose liveness lease is gone and whose pods the API server no longer shows',
        );
      // Every round while the agent of a live node is away: not worth a warning each time.
      else if (counts.kept > 0)
        this.#o.log?.debug(
          fields,
          "ipam gc: a node's liveness lease is gone, but the API server still shows its pods",
        );
    }
    return out;
  }

  /**
   * Which of the node's handles belong to a pod the API server still places on it: a test on the
   * handle's record (always false once the Node is deleted), or undefined when the API server
   * could not be asked.
   */
  async #stillRunning(node: string): Promise<((h: HandleRecord) => boolean) | undefined> {
    const evidence = this.#o.nodes;
    if (evidence === undefined) {
      if (this.#unasked.has(node)) return undefined;
      this.#unasked.add(node);
      this.#o.log?.warn(
        { node, code: 'POD_METADATA_UNAVAILABLE' },
        'ipam gc: the liveness lease of a node is gone, but there is no API server to confirm its pods are gone (pods.source is not apiserver): nothing freed',
      );
      return undefined;
    }
    let placement: Awaited<ReturnType<NodeEvidence['placement']>>;
    try {
      placement = await evidence.placement(node);
    } catch (err) {
      this.#o.log?.warn(
        { err, node, code: 'POD_METADATA_UNAVAILABLE' },
        'ipam gc: the liveness lease of a node is gone, but the API server cannot say whether it or its pods are: nothing freed this round',
      );
      return undefined;
    }
    if (!placement.exists) return () => false;
    const byName = new Map<string, PlacedPod>();
    for (const p of placement.pods) byName.set(`${p.namespace}/${p.name}`, p);
    return (h) => {
      const pod = byName.get(`${h.namespace}/${h.pod}`);
      // A pod of that name with another uid is a newer pod: the recorded one is gone.
      return pod !== undefined && (h.podUid === undefined || pod.uids.includes(h.podUid));
    };
  }
}
