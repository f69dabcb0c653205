import type { Logger } from '../../shared/logger.ts';
import type { PoolSpec } from '../ipam/pool.ts';
import type { Store } from '../store/store.ts';
import { IpError, jsonLines, type LinkInfo, type NetnsRunner } from './exec.ts';
import { defaultMtu, planSegment, type SegmentPlan } from './plan.ts';

/**
 * The node's side of each pod segment: uplink (VLAN subinterface or VXLAN device) and bridge,
 * made on first use and reused after. Ensure-or-reuse: concurrent ADDs in this agent share one
 * ensure; a link made meanwhile by someone else ("File exists") is re-read and reused.
 *
 * VXLAN peers: each node publishes its VTEP address under `vteps/<vni>/<node>` in the IPAM store
 * when it first serves a segment, and floods broadcast/unknown traffic (the all-zero fdb entry) to
 * every other node listed there, re-read every peerSyncInterval.
 */

export const vtepsPrefix = (vni: number) => `vteps/${vni}/`;
export const vtepKey = (vni: number, node: string) => `vteps/${vni}/${node}`;

export interface SegmentOptions {
  readonly host: NetnsRunner;
  readonly store: Store;
  readonly node: string;
  readonly master: string;
  readonly localAddress: string | undefined;
  readonly vxlanPort: number;
  readonly mtu: number | undefined;
  readonly log?: Logger | undefined;
}

export interface SegmentHealth {
  readonly segment: string;
  readonly bridge: string;
  readonly bridgeUp: boolean;
  readonly uplink: string | undefined;
  readonly uplinkUp: boolean;
  readonly uplinkCarrier: boolean;
  readonly peers: number;
}

export interface EnsuredSegment {
  readonly plan: SegmentPlan;
  readonly mtu: number;
}

const ZERO_MAC = '00:00:00:00:00:00';

export class Segments {
  readonly #o: SegmentOptions;
  readonly #ensured = new Map<string, EnsuredSegment>();
  readonly #inFlight = new Map<string, Promise<EnsuredSegment>>();
  readonly #peers = new Map<string, number>();
  /** The segment each pool was last served on: lets ADD attach the veth before IPAM answers. */
  readonly #byPool = new Map<string, EnsuredSegment>();
  #local: Promise<string> | undefined;

  constructor(options: SegmentOptions) {
    this.#o = options;
  }

  mtuOf(mode: PoolSpec['segment']['mode']): number {
    return this.#o.mtu ?? defaultMtu(mode);
  }

  /** The segment's links, made if missing; cached until health finds them gone. */
  async ensure(segment: PoolSpec['segment'], pool: string): Promise<EnsuredSegment> {
    const mtu = this.mtuOf(segment.mode);
    const localAddress = segment.mode === 'vxlan' ? await this.#localAddress() : undefined;
    const plan = planSegment(segment, pool, {
      master: this.#o.master,
      localAddress,
      vxlanPort: this.#o.vxlanPort,
      mtu,
    });
    const key = plan.links.key;
    const done = this.#ensured.get(key);
    if (done) {
      this.#byPool.set(pool, done);
      return done;
    }
    let p = this.#inFlight.get(key);
    if (!p) {
      p = this.#make(plan, mtu).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, p);
    }
    const made = await p;
    this.#byPool.set(pool, made);
    return made;
  }

  /** The ensured segment `pool` was last served on, if its links are still believed to exist. */
  predict(pool: string): EnsuredSegment | undefined {
    const seg = this.#byPool.get(pool);
    return seg && this.#ensured.get(seg.plan.links.key) === seg ? seg : undefined;
  }

  async #make(plan: SegmentPlan, mtu: number): Promise<EnsuredSegment> {
    for (let attempt = 0; ; attempt++) {
      const have = await this.#linkNames();
      const missing = plan.create.filter((c) => !have.has(c.link));
      try {
        if (missing.length > 0) await this.#o.host.ip(missing.map((c) => c.command));
        await this.#o.host.ip(plan.converge);
        break;
      } catch (err) {
        // Another agent process (or an operator) made the link between our read and our add.
        if (err instanceof IpError && err.exists && attempt < 3) continue;
        throw err;
      }
    }
    const ensured = { plan, mtu };
    if (plan.mode === 'vxlan' && plan.id !== undefined) {
      await this.#publish(plan.id);
      await this.#syncPeers(plan);
    }
    this.#ensured.set(plan.links.key, ensured);
    this.#o.log?.info(
      { segment: plan.links.key, bridge: plan.links.bridge, uplink: plan.links.uplink },
      'cni: segment ready',
    );
    return ensured;
  }

  async #localAddress(): Promise<string> {
    if (this.#o.localAddress) return this.#o.localAddress;
    this.#local ??= (async () => {
      const out = await this.#o.host.ip([['addr', 'show', 'dev', this.#o.master]], { json: true });
      const [links] = jsonLines<LinkInfo[]>(out);
      const inet = links?.[0]?.addr_info?.find((a) => a.family === 'inet');
      if (!inet)
        throw new Error(
          `uplink ${this.#o.master} has no IPv4 address for VXLAN; set network.cni.uplink.localAddress`,
        );
      return inet.local;
    })().catch((err) => {
      this.#local = undefined;
      throw err;
    });
    return this.#local;
  }

  async #linkNames(): Promise<Map<string, LinkInfo>> {
    const out = await this.#o.host.ip([['link', 'show']], { json: true });
    const [links] = jsonLines<LinkInfo[]>(out);
    return new Map((links ?? []).map((l) => [l.ifname, l]));
  }

  async #publish(vni: number): Promise<void> {
    const key = vtepKey(vni, this.#o.node);
    const address = await this.#localAddress();
    const cur = (await this.#o.store.get([key])).get(key);
    if (cur && (JSON.parse(cur.value) as { address?: string }).address === address) return;
    await this.#o.store.commit({
      conditions: [cur ? { key, modRevision: cur.modRevision } : { key, absent: true }],
      writes: [{ key, value: JSON.stringify({ address, since: new Date().toISOString() }) }],
    });
  }

  /** Flood entries towards every other node of the segment (adds missing ones; never removes). */
  async #syncPeers(plan: SegmentPlan): Promise<void> {
    if (plan.id === undefined || plan.links.uplink === undefined) return;
    const { entries } = await this.#o.store.list(vtepsPrefix(plan.id));
    const local = await this.#localAddress();
    const want = new Set<string>();
    for (const e of entries) {
      if (e.key.endsWith(`/${this.#o.node}`)) continue;
      const address = (JSON.parse(e.value) as { address?: unknown }).address;
      if (typeof address === 'string' && address !== local) want.add(address);
    }
    const dev = plan.links.uplink;
    const fdb =
      jsonLines<{ mac: string; dst?: string }[]>(
        await this.#o.host.bridge([['fdb', 'show', 'dev', dev]], { json: true }),
      )[0] ?? [];
    const have = new Set(fdb.filter((f) => f.mac === ZERO_MAC && f.dst).map((f) => f.dst!));
    const add = [...want].filter((a) => !have.has(a));
    if (add.length > 0) {
      await this.#o.host.bridge(add.map((a) => ['fdb', 'append', ZERO_MAC, 'dev', dev, 'dst', a]));
    }
    this.#peers.set(plan.links.key, new Set([...have, ...add]).size);
  }

  /** Re-reads peers of every VXLAN segment and the state of every segment's links. */
  async refresh(): Promise<SegmentHealth[]> {
    const links = await this.#linkNames();
    const health: SegmentHealth[] = [];
    for (const [key, { plan }] of this.#ensured) {
      if (plan.mode === 'vxlan') {
        try {
          await this.#syncPeers(plan);
        } catch (err) {
          this.#o.log?.warn({ err, segment: key }, 'cni: cannot read VXLAN peers');
        }
      }
      const br = links.get(plan.links.bridge);
      const up = plan.links.uplink === undefined ? undefined : links.get(plan.links.uplink);
      const isUp = (l: LinkInfo | undefined) => l?.flags?.includes('UP') === true;
      const h: SegmentHealth = {
        segment: key,
        bridge: plan.links.bridge,
        bridgeUp: isUp(br),
        uplink: plan.links.uplink,
        uplinkUp: plan.links.uplink === undefined ? true : isUp(up),
        uplinkCarrier: plan.links.uplink === undefined ? true : up?.flags?.includes('LOWER_UP') === true,
        peers: this.#peers.get(key) ?? 0,
      };
      // Gone (deleted by hand, node network reset): make it again on the next ADD.
      if (!br || (plan.links.uplink !== undefined && !up)) this.#ensured.delete(key);
      health.push(h);
    }
    return health;
  }

  get ensuredCount(): number {
    return this.#ensured.size;
  }
}
