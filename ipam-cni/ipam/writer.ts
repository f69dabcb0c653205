import { NodewardError } from '../../shared/errors.ts';
import type { Condition, Entry, Store, Write } from '../store/store.ts';
import { conditionKey, MAX_COMMIT_OPS } from '../store/store.ts';
import { formatIp, parseIp } from './addr.ts';
import { type Block, blockKeyName, blockOf, claimStart, plan } from './allocator.ts';
import { blockKey, handleKey, ipKey, poolKey, stickyKey } from './keys.ts';
import { unusableReason } from './pool.ts';
import { CachedPoolView, RoundDraft } from './pool-view.ts';
import type { StoredPool } from './pools.ts';
import {
  type BlockRecord,
  type HandleRecord,
  handleRecordSchema,
  type IpRecord,
  ipRecordSchema,
  parseRecord,
  type StickyRecord,
} from './records.ts';
import { admissionProblem, type Subject } from './select.ts';

/**
 * Group commit for one (node, pool): the allocations that arrive while a transaction is in flight
 * are planned together and written by the next ONE transaction. etcd commits a few hundred
 * transactions a second on three members sharing a disk, whatever their size; batching is what
 * turns that into thousands of allocations a second. Every allocation is still durable in the
 * store before its promise resolves, and still guarded by its own compares: the handle key and
 * the ip key must not exist (or, for a sticky address, must be the reservation we read), the
 * block must still be ours (or not yet claimed, when the round claims it), and the pool record
 * must be the one we planned with.
 *
 * One round at a time per writer: two rounds planned from the same view would pick the same
 * lowest-free addresses and fail each other.
 */

export interface WriteRequest {
  readonly containerID: string;
  readonly ifName: string;
  readonly pod: string;
  readonly namespace: string;
  readonly node: string;
  /** CNI_NETNS of the ADD, kept in the handle record for the node GC. */
  readonly netns?: string | undefined;
  /** The CNI network (conf name) and pod UID of the ADD, kept in the handle record. */
  readonly network?: string | undefined;
  readonly podUid?: string | undefined;
  readonly subject: Subject;
  /** A specific address (requested or sticky), else the allocator picks. */
  readonly ip: bigint | undefined;
  /** The ip key's modRevision when it is this sticky pod's reservation (else the key must be absent). */
  readonly reservedModRevision: number | undefined;
  readonly sticky: boolean;
  /** Write the sticky record in the same transaction (first allocation of a sticky pod). */
  readonly createSticky: boolean;
}

export type WriteOutcome =
  | { readonly kind: 'allocated'; readonly pool: StoredPool; readonly ip: bigint }
  | { readonly kind: 'existing'; readonly handle: HandleRecord };

/**
 * The request must be prepared again (pool selection, sticky lookup): what it was prepared from
 * changed under it. Internal to the IPAM service, never leaves it.
 */
export class Reprepare extends Error {
  constructor(why: string) {
    super(why);
    this.name = 'Reprepare';
  }
}

export interface WriterDeps {
  readonly store: Store;
  readonly node: string;
  readonly poolName: string;
  /** The service's pool cache: the writer reads it, and reports what a failed commit showed. */
  readonly pools: {
    get(name: string): StoredPool | undefined;
    learn(name: string, entry: Entry | undefined): void;
  };
  readonly batchSize: number;
  readonly conflictRetries: number;
  /** A compare this writer lost to another writer (metrics). */
  readonly onConflict?: (() => void) | undefined;
  readonly viewMaxAgeMs: number;
  readonly now: () => Date;
}

interface Pending {
  readonly req: WriteRequest;
  /** Rounds lost because one of this request's own compares failed. */
  conflicts: number;
  /** Rounds taken part in, for whatever reason. */
  rounds: number;
  settled: boolean;
  resolve(outcome: WriteOutcome): void;
  reject(err: unknown): void;
}

interface Member {
  readonly p: Pending;
  readonly ip: bigint;
  readonly block: Block;
  readonly ipKey: string;
  readonly handleKey: string;
  readonly stickyKey: string | undefined;
  readonly blockKeys: readonly string[];
}

export class PoolWriter {
  readonly #deps: WriterDeps;
  readonly view: CachedPoolView;
  #queue: Pending[] = [];
  #running = false;

  constructor(deps: WriterDeps) {
    this.#deps = deps;
    this.view = new CachedPoolView(deps.node);
  }

  submit(req: WriteRequest): Promise<WriteOutcome> {
    return new Promise<WriteOutcome>((resolve, reject) => {
      const p: Pending = {
        req,
        conflicts: 0,
        rounds: 0,
        settled: false,
        resolve: (o) => {
          p.settled = true;
          resolve(o);
        },
        reject: (e) => {
          p.settled = true;
          reject(e);
        },
      };
      this.#queue.push(p);
      void this.#drain();
    });
  }

  /** Tells the view an address was released (by this process), so it can be reused at once. */
  forget(pool: StoredPool, ip: bigint): void {
    this.view.forget(blockOf(pool.pool, ip), ip);
  }

  async #drain(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#deps.batchSize);
        let again: Pending[] = [];
        try {
          again = await this.#round(batch);
        } catch (err) {
          // A store error: the outcome of the commit is unknown, so the view is read again.
          this.view.stale = true;
          for (const p of batch) if (!p.settled) p.reject(err);
        }
        this.#queue.unshift(...again.filter((p) => !p.settled));
      }
    } finally {
      this.#running = false;
    }
  }

  /** Plans and commits one batch; returns the requests to try again in the next round. */
  async #round(batch: Pending[]): Promise<Pending[]> {
    const { store, poolName, now } = this.#deps;
    const stored = this.#deps.pools.get(poolName);
    if (!stored || stored.draining) {
      for (const p of batch) p.reject(new Reprepare(`pool ${poolName} is gone or draining`));
      return [];
    }
    const pool = stored.pool;
    if (this.view.needsRead(this.#deps.viewMaxAgeMs, Date.now())) {
      await this.view.read(store, pool, 'own', Date.now());
    } else if (this.view.blocksStale) {
      await this.view.readBlocks(store, pool);
      if (this.view.stale) await this.view.read(store, pool, 'own', Date.now());
    }
    const draft = new RoundDraft(this.view, claimStart(pool, this.#deps.node));
    const conditions: Condition[] = [{ key: poolKey(poolName), modRevision: stored.modRevision }];
    const writes: Write[] = [];
    const members: Member[] = [];
    const deferred: Pending[] = [];
    const keysInRound = new Set<string>();
    const since = now().toISOString();
    let freshlyReadAll = false;

    // Specific addresses first, so the allocator does not hand one of them to a dynamic request.
    const ordered = [
      ...batch.filter((p) => p.req.ip !== undefined),
      ...batch.filter((p) => p.req.ip === undefined),
    ];
    for (const p of ordered) {
      p.rounds++;
      const problem = admissionProblem(pool, p.req.subject);
      if (problem) {
        p.reject(new Reprepare(problem));
        continue;
      }
      let ip: bigint;
      let block: Block;
      if (p.req.ip !== undefined) {
        if (unusableReason(pool, p.req.ip)) {
          p.reject(new Reprepare('the requested address is no longer usable'));
          continue;
        }
        ip = p.req.ip;
        block = blockOf(pool, ip);
      } else {
        let next = plan(pool, draft.plannable());
        if ((next.kind === 'borrow' || next.kind === 'exhausted') && !this.view.allRead) {
          await this.view.read(store, pool, 'all', Date.now());
          freshlyReadAll = true;
          next = plan(pool, draft.plannable());
        }
        if (next.kind === 'exhausted') {
          if (draft.picks > 0) {
            // Perhaps only because of this round's own picks, which may yet fail: decide later.
            deferred.push(p);
            continue;
          }
          if (!freshlyReadAll) {
            await this.view.read(store, pool, 'all', Date.now());
            freshlyReadAll = true;
            next = plan(pool, draft.plannable());
          }
          if (next.kind === 'exhausted') {
            p.reject(
              new NodewardError(
                'POOL_EXHAUSTED',
                `pool ${pool.name} is exhausted: ${this.view.describeUsage(pool)}; release addresses, widen its ranges or add a pool`,
                { details: { pool: pool.name } },
              ),
            );
            continue;
          }
        }
        ip = next.ip;
        block = next.block;
      }

      const ipText = formatIp(pool.family, ip);
      const m = {
        p,
        ip,
        block,
        ipKey: ipKey(pool.name, blockKeyName(block), ipText),
        handleKey: handleKey(p.req.containerID, p.req.ifName),
        stickyKey: p.req.createSticky ? stickyKey(p.req.namespace, p.req.pod, p.req.ifName) : undefined,
      };
      if ([m.ipKey, m.handleKey, m.stickyKey].some((k) => k !== undefined && keysInRound.has(k))) {
        deferred.push(p); // the same handle, address or pod twice in one batch: next round
        continue;
      }
      const conds: Condition[] = [
        { key: m.handleKey, absent: true },
        p.req.reservedModRevision === undefined
          ? { key: m.ipKey, absent: true }
          : { key: m.ipKey, modRevision: p.req.reservedModRevision },
      ];
      const ws: Write[] = [];
      if (m.stickyKey) conds.push({ key: m.stickyKey, absent: true });
      const bKey = blockKey(pool.name, block);
      const claimed = this.view.blocks.get(block.base);
      const claimNow = !claimed && !draft.claims.has(block.base);
      if (claimNow) {
        conds.push({ key: bKey, absent: true });
        const record: BlockRecord = { node: p.req.node, since };
        ws.push({ key: bKey, value: JSON.stringify(record) });
      } else if (claimed?.node === this.view.node && !keysInRound.has(bKey)) {
        conds.push({ key: bKey, modRevision: claimed.modRevision });
      }
      if (
        conditions.length + conds.length > MAX_COMMIT_OPS ||
        writes.length + ws.length + 3 > MAX_COMMIT_OPS
      ) {
        deferred.push(p);
        continue;
      }
      const ipRecord: IpRecord = {
        containerID: p.req.containerID,
        ifName: p.req.ifName,
        pod: p.req.pod,
        namespace: p.req.namespace,
        node: p.req.node,
        since,
        sticky: p.req.sticky,
      };
      const handle: HandleRecord = {
        pool: pool.name,
        ip: ipText,
        block: blockKeyName(block),
        sticky: p.req.sticky,
        pod: p.req.pod,
        namespace: p.req.namespace,
        node: p.req.node,
        since,
        ...(p.req.netns ? { netns: p.req.netns } : {}),
        ...(p.req.network ? { network: p.req.network } : {}),
        ...(p.req.podUid ? { podUid: p.req.podUid } : {}),
      };
      ws.push(
        { key: m.ipKey, value: JSON.stringify(ipRecord) },
        { key: m.handleKey, value: JSON.stringify(handle) },
      );
      if (m.stickyKey) {
        const sticky: StickyRecord = { pool: pool.name, ip: ipText, block: blockKeyName(block) };
        ws.push({ key: m.stickyKey, value: JSON.stringify(sticky) });
      }
      conditions.push(...conds);
      writes.push(...ws);
      for (const c of conds) keysInRound.add(conditionKey(c));
      const guarded = claimNow || draft.claims.has(block.base) || claimed?.node === this.view.node;
      draft.take(block, ip, claimNow);
      members.push({ ...m, blockKeys: guarded ? [bKey] : [] });
    }
    if (members.length === 0) return deferred;

    const result = await store.commit({ conditions, writes });
    if (result.ok) {
      for (const m of members) {
        if (!this.view.blocks.has(m.block.base)) {
          this.view.blocks.set(m.block.base, {
            block: m.block,
            node: this.view.node,
            modRevision: result.revision,
          });
        }
        this.view.markUsed(m.block, m.ip);
        m.p.resolve({ kind: 'allocated', pool: stored, ip: m.ip });
      }
      return deferred;
    }
    return [...this.#lost(result.current, stored, members), ...deferred];
  }

  /**
   * A failed commit: learn from the keys read back with it which compares failed, settle what can
   * be settled (an existing handle is an idempotent success, a held requested address a conflict)
   * and send the rest to the next round.
   */
  #lost(current: ReadonlyMap<string, Entry>, stored: StoredPool, members: readonly Member[]): Pending[] {
    const pool = stored.pool;
    const poolEntry = current.get(poolKey(pool.name));
    if (poolEntry?.modRevision !== stored.modRevision) {
      this.#deps.pools.learn(pool.name, poolEntry);
      this.view.stale = true;
      for (const m of members) m.p.reject(new Reprepare(`pool ${pool.name} changed`));
      return [];
    }
    const lostBlocks = new Set<string>();
    for (const m of members) {
      for (const key of m.blockKeys) {
        const e = current.get(key);
        const known = this.view.blocks.get(m.block.base);
        const expected = known?.node === this.view.node ? known.modRevision : undefined;
        if (e?.modRevision !== expected) {
          this.view.learnBlock(pool, key, e);
          this.view.blocksStale = true;
          lostBlocks.add(key);
        }
      }
    }
    const again: Pending[] = [];
    for (const m of members) {
      const { p } = m;
      const handle = current.get(m.handleKey);
      if (handle) {
        const record = parseRecord(handleRecordSchema, handle);
        const a = record.pool === pool.name ? parseIp(record.ip) : undefined;
        if (a?.family === pool.family) this.view.markUsed(blockOf(pool, a.value), a.value);
        p.resolve({ kind: 'existing', handle: record });
        continue;
      }
      const held = current.get(m.ipKey);
      let ownFault = m.blockKeys.some((k) => lostBlocks.has(k));
      if (p.req.reservedModRevision !== undefined) {
        if (held?.modRevision !== p.req.reservedModRevision) {
          p.reject(new Reprepare('the sticky reservation changed'));
          continue;
        }
      } else if (held) {
        this.view.markUsed(m.block, m.ip);
        if (p.req.ip !== undefined) {
          p.reject(ipConflict(pool.name, formatIp(pool.family, m.ip), parseRecord(ipRecordSchema, held)));
          continue;
        }
        ownFault = true;
      }
      if (m.stickyKey && current.has(m.stickyKey)) {
        p.reject(new Reprepare('the sticky record appeared'));
        continue;
      }
      if (ownFault) {
        p.conflicts++;
        this.#deps.onConflict?.();
      }
      if (p.conflicts > this.#deps.conflictRetries || p.rounds > 4 * (this.#deps.conflictRetries + 1)) {
        p.reject(
          new NodewardError(
            'IPAM_CONTENTION',
            `allocation in pool ${pool.name} lost ${p.conflicts} compare-and-swap races in ${p.rounds} rounds; retry`,
            { details: { pool: pool.name } },
          ),
        );
        continue;
      }
      again.push(p);
    }
    return again;
  }
}

export function ipConflict(pool: string, ip: string, holder: IpRecord): NodewardError {
  const who =
    holder.containerID === null
      ? `is kept for StatefulSet pod ${holder.namespace}/${holder.pod} (sticky)`
      : `is held by pod ${holder.namespace}/${holder.pod} (container ${holder.containerID}, interface ${holder.ifName}, node ${holder.node}, since ${holder.since})`;
  return new NodewardError(
    'IP_CONFLICT',
    `IP ${ip} in pool ${pool} ${who}; release it first (\`nodeward ipam release --ip ${ip}\`) or request another address`,
    { details: { pool, ip, holder } },
  );
}
