import { setTimeout as sleep } from 'node:timers/promises';
import { formatIp } from '../../ipam-cni/ipam/addr.ts';
import type { Pool } from '../../ipam-cni/ipam/pool.ts';
import type { Store } from '../../ipam-cni/store/store.ts';

/**
 * The anchor for the IPAM bench: the whole-pool-lock design (whereabouts' shape). Every
 * allocation takes one mutex for the pool, reads every allocation of the pool, picks the lowest
 * free address, writes it, and lets go. Correct, simple — and serial across the cluster. The
 * mutex is the cheapest correct one on etcd (create-if-absent, delete), cheaper than the
 * Kubernetes lease whereabouts uses, so the comparison flatters the anchor.
 */
export class PoolLockAllocator {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  async allocate(pool: Pool, containerID: string): Promise<string> {
    const lock = `lock/${pool.name}`;
    for (let wait = 1; ; wait = Math.min(wait * 2, 8)) {
      const got = await this.#store.commit({
        conditions: [{ key: lock, absent: true }],
        writes: [{ key: lock, value: containerID }],
      });
      if (got.ok) break;
      await sleep(wait * Math.random());
    }
    try {
      const { entries } = await this.#store.list(`lockdesign/${pool.name}/`);
      const used = new Set(entries.map((e) => e.key.slice(e.key.lastIndexOf('/') + 1)));
      for (const { lo, hi } of pool.usable) {
        for (let v = lo; v <= hi; v++) {
          const ip = formatIp(pool.family, v);
          if (used.has(ip)) continue;
          const r = await this.#store.commit({
            conditions: [{ key: `lockdesign/${pool.name}/${ip}`, absent: true }],
            writes: [
              { key: `lockdesign/${pool.name}/${ip}`, value: containerID },
              { key: `lockdesign-handles/${containerID}`, value: ip },
            ],
          });
          if (!r.ok) throw new Error(`the pool lock did not exclude another writer (${ip})`);
          return ip;
        }
      }
      throw new Error(`pool ${pool.name} exhausted`);
    } finally {
      await this.#store.commit({ conditions: [], writes: [{ key: lock, delete: true }] });
    }
  }
}
