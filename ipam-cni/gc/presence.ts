import type { Lease } from 'etcd3';
import type { Logger } from '../../shared/logger.ts';
import type { EtcdStore } from '../store/etcd.ts';

/**
 * An agent's presence in etcd: one lease (TTL `ttlSeconds`, kept alive by etcd3) holding the
 * liveness key `nodes/<node>` under the IPAM prefix, and — while this agent leads the cluster GC —
 * the election key `gc-leader`. An agent that dies or loses etcd for longer than the TTL loses
 * both; a lost lease is replaced at the next `ensure()`.
 *
 * Only for the etcd store: the file store is one node's, it has no other nodes to collect.
 */

export const nodeLivenessKey = (node: string) => `nodes/${node}`;
export const livenessPrefix = 'nodes/';
export const gcLeaderKey = 'gc-leader';

const enc = (s: string) => Buffer.from(s, 'utf8');

export class Presence {
  readonly #store: EtcdStore;
  readonly #node: string;
  readonly #ttl: number;
  readonly #log: Logger | undefined;
  #lease: Lease | undefined;
  #leaseId: string | undefined;

  constructor(store: EtcdStore, node: string, ttlSeconds: number, log?: Logger) {
    this.#store = store;
    this.#node = node;
    this.#ttl = ttlSeconds;
    this.#log = log;
  }

  /** Makes sure the lease is alive and the liveness key is on it (creates both if needed). */
  async ensure(): Promise<void> {
    if (this.#lease && !this.#lease.revoked() && this.#leaseId !== undefined) {
      const key = enc(this.#store.keyPrefix + nodeLivenessKey(this.#node));
      const res = await this.#store.call('liveness read', () => this.#store.client.kv.range({ key }));
      const kv = res.kvs[0];
      if (kv && kv.lease === this.#leaseId) return;
    }
    this.#lease?.release();
    const lease = this.#store.client.lease(this.#ttl, { autoKeepAlive: true });
    lease.on('lost', (err) => {
      this.#log?.warn({ err }, 'ipam gc: the liveness lease was lost; it is granted again at the next check');
      if (this.#lease === lease) this.#leaseId = undefined;
    });
    this.#lease = lease;
    this.#leaseId = await this.#store.call('lease grant', () => lease.grant());
    await this.#store.call('liveness write', () =>
      lease
        .put(this.#store.keyPrefix + nodeLivenessKey(this.#node))
        .value(new Date().toISOString())
        .exec(),
    );
  }

  /**
   * Leads the cluster GC if nobody does (or this node already does): the election key is created
   * on this agent's lease only when absent, in one transaction. True while this node leads.
   */
  async tryLead(): Promise<boolean> {
    await this.ensure();
    const key = enc(this.#store.keyPrefix + gcLeaderKey);
    const res = await this.#store.call('gc election', () =>
      this.#store.client.kv.txn({
        compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key, value: enc(this.#node), lease: this.#leaseId } }],
        failure: [{ request_range: { key } }],
      }),
    );
    if (res.succeeded) return true;
    const holder = res.responses[0]?.response_range.kvs[0];
    return holder?.value.toString('utf8') === this.#node && holder.lease === this.#leaseId;
  }

  /** Stops keeping the lease alive without revoking it: its keys go when the TTL runs out (a crash). */
  abandon(): void {
    this.#lease?.release();
    this.#lease = undefined;
    this.#leaseId = undefined;
  }

  /** Revokes the lease: the liveness and election keys go now (a clean shutdown). */
  async close(): Promise<void> {
    const lease = this.#lease;
    this.#lease = undefined;
    this.#leaseId = undefined;
    await lease?.revoke().catch(() => undefined);
  }
}
