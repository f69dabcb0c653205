import { NodewardError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { livenessPrefix } from '../gc/presence.ts';
import type { PoolSpec } from '../ipam/pool.ts';
import type { Store } from '../store/store.ts';
import { IpError, jsonLines, type LinkInfo, type NetnsRunner } from './exec.ts';
import { gatewayMac, segmentLinks } from './names.ts';
import { defaultMtu, linkMismatch, planSegment, type SegmentPlan } from './plan.ts';

/**
 * The node's side of each pod segment: uplink (VLAN subinterface or VXLAN device) and bridge,
 * made on first use and reused after. Ensure-or-reuse: concurrent ADDs in this agent share one
 * ensure; a link made meanwhile by someone else ("File exists") is re-read and reused.
 *
 * VXLAN peers: each node publishes its VTEP address under `vteps/<vni>/<node>` in the IPAM store
 * when it first serves a segment, and floods broadcast/unknown traffic (the all-zero fdb entry) to
 * every other node listed there, re-read every peerSyncInterval. A node that stops cleanly deletes
 * its keys (`unpublish`); an agent that starts again re-publishes for the segments whose links
 * it finds (`adopt`). A peer whose key has been gone for `peerGraceMs` loses its flood entry on
 * every other node — the grace lets an agent restart (upgrade) without cutting its pods off.
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
  /** How long a peer's vtep key must stay gone before its flood entry is removed (default 0). */
  readonly peerGraceMs?: number | undefined;
  /**
   * Agents keep liveness keys `nodes/<node>` on their etcd lease (the IPAM GC's presence): a peer
   * whose liveness key is gone (crashed, powered off: no clean stop deleted its vtep key) counts
   * as departed too. Only when every agent of the cluster runs with the GC on an etcd store.
   */
  readonly livenessKeys?: boolean | undefined;
  readonly now?: (() => number) | undefined;
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

/** A pool gateway the node holds on the segment's bridge (pool nodeGateway). */
export interface NodeGateway {
  readonly address: string;
  readonly prefixLength: number;
  readonly family: 4 | 6;
}

const ZERO_MAC = '00:00:00:00:00:00';

export class Segments {
  readonly #o: SegmentOptions;
  readonly #ensured = new Map<string, EnsuredSegment>();
  readonly #inFlight = new Map<string, Promise<EnsuredSegment>>();
  readonly #peers = new Map<string, number>();
  /** Per segment: flood destinations without a vtep key, and since when (ms). */
  readonly #departed = new Map<string, Map<string, number>>();
  /** Vtep keys this agent wrote, with their modRevision (deleted by unpublish when unchanged). */
  readonly #published = new Map<string, number>();
  /** The segment each pool was last served on: lets ADD attach the veth before IPAM answers. */
  readonly #byPool = new Map<string, EnsuredSegment>();
  /** `<bridge>/<address>` of the gateways this agent put on bridges (forgotten with the segment). */
  readonly #gateways = new Set<string>();
  #local: Promise<string> | undefined;

  constructor(options: SegmentOptions) {
    this.#o = options;
  }

  mtuOf(mode: PoolSpec['segment']['mode']): number {
    return this.#o.mtu ?? defaultMtu(mode);
  }

  /**
   * The segment's links, made if missing; cached until health finds them gone. With `gateway`,
   * the bridge also holds that address (and the segment's anycast MAC), once per bridge.
   */
  async ensure(segment: PoolSpec['segment'], pool: string, gateway?: NodeGateway): Promise<EnsuredSegment> {
    const ensured = await this.#ensureLinks(segment, pool);
    if (gateway) await this.#holdGateway(ensured.plan, gateway);
    return ensured;
  }

  /**
   * The node reaches its pods through the gateway address on the bridge (the kubelet's probes come
   * from the host), and pods route through their own node. Every node uses the same MAC, so an
   * ARP for the gateway answered by another node over VXLAN says the same as the local answer.
   * IPv6 without DAD: the address is on every node by design.
   */
  async #holdGateway(plan: SegmentPlan, gw: NodeGateway): Promise<void> {
    const key = `${plan.links.bridge}/${gw.address}`;
    if (this.#gateways.has(key)) return;
    const bridge = plan.links.bridge;
    await this.#o.host.ip([
      ['link', 'set', 'dev', bridge, 'address', gatewayMac(plan.links.key)],
      [
        'addr',
        'replace',
        `${gw.address}/${gw.prefixLength}`,
        'dev',
        bridge,
        ...(gw.family === 6 ? ['nodad'] : []),
      ],
    ]);
    this.#gateways.add(key);
  }

  async #ensureLinks(segment: PoolSpec['segment'], pool: string): Promise<EnsuredSegment> {
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
      for (const expected of plan.expect) {
        const found = have.get(expected.link);
        const problem = found && linkMismatch(expected, found);
        if (problem) {
          throw new NodewardError(
            'NET_SETUP',
            `segment ${plan.links.key}: ${problem}; nodeward does not reuse it: remove or rename that link, or give the pool another segment`,
          );
        }
      }
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
    const out = await this.#o.host.ip([['link', 'show']], { json: true, details: true });
    const [links] = jsonLines<LinkInfo[]>(out);
    return new Map((links ?? []).map((l) => [l.ifname, l]));
  }

  async #publish(vni: number): Promise<void> {
    const key = vtepKey(vni, this.#o.node);
    const address = await this.#localAddress();
    const cur = (await this.#o.store.get([key])).get(key);
    if (cur && (JSON.parse(cur.value) as { address?: string }).address === address) {
      this.#published.set(key, cur.modRevision);
      return;
    }
    const r = await this.#o.store.commit({
      conditions: [cur ? { key, modRevision: cur.modRevision } : { key, absent: true }],
      writes: [{ key, value: JSON.stringify({ address, since: new Date().toISOString() }) }],
    });
    if (r.ok) this.#published.set(key, r.revision);
  }

  /**
   * A clean stop: deletes the vtep keys this agent published (each only if unchanged since), so
   * the other nodes drop their flood entries towards this one once their grace has passed.
   */
  async unpublish(): Promise<void> {
    for (const [key, modRevision] of this.#published) {
      await this.#o.store.commit({ conditions: [{ key, modRevision }], writes: [{ key, delete: true }] });
      this.#published.delete(key);
    }
  }

  /**
   * At start: the segments whose links already exist on the node (pods kept running while the
   * agent was away) are ensured again — their vtep keys re-published, their peers synced — without
   * waiting for an ADD. Failures are logged; the next ADD or tick retries.
   */
  async adopt(
    pools: Iterable<{
      readonly name: string;
      readonly segment: PoolSpec['segment'];
      readonly gateway?: NodeGateway | undefined;
    }>,
  ): Promise<number> {
    const have = await this.#linkNames();
    let adopted = 0;
    for (const { name, segment, gateway } of pools) {
      const links = segmentLinks(segment, name, this.#o.master);
      if (!have.has(links.bridge) || (links.uplink !== undefined && !have.has(links.uplink))) continue;
      try {
        await this.ensure(segment, name, gateway);
        adopted++;
      } catch (err) {
        this.#o.log?.warn({ err, pool: name, segment: links.key }, 'cni: existing segment not adopted');
      }
    }
    return adopted;
  }

  /**
   * Flood entries towards every other node of the segment: adds missing ones; removes those whose
   * vtep key has been gone for peerGraceMs (every all-zero entry on our VXLAN device is ours).
   */
  async #syncPeers(plan: SegmentPlan): Promise<void> {
    if (plan.id === undefined || plan.links.uplink === undefined) return;
    const prefix = vtepsPrefix(plan.id);
    const [{ entries }, alive] = await Promise.all([
      this.#o.store.list(prefix),
      this.#o.livenessKeys
        ? this.#o.store
            .list(livenessPrefix)
            .then((l) => new Set(l.entries.map((e) => e.key.slice(livenessPrefix.length))))
        : undefined,
    ]);
    const local = await this.#localAddress();
    const want = new Set<string>();
    for (const e of entries) {
      const node = e.key.slice(prefix.length);
      if (node === this.#o.node) continue;
      if (alive && !alive.has(node)) continue;
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
    const now = (this.#o.now ?? Date.now)();
    const grace = this.#o.peerGraceMs ?? 0;
    const departed = this.#departed.get(plan.links.key) ?? new Map<string, number>();
    this.#departed.set(plan.links.key, departed);
    const remove: string[] = [];
    for (const a of have) {
      if (want.has(a)) continue;
      const since = departed.get(a) ?? now;
      departed.set(a, since);
      if (now - since >= grace) remove.push(a);
    }
    for (const a of departed.keys()) if (want.has(a) || !have.has(a)) departed.delete(a);
    const commands = [
      ...add.map((a) => ['fdb', 'append', ZERO_MAC, 'dev', dev, 'dst', a]),
      ...remove.map((a) => ['fdb', 'del', ZERO_MAC, 'dev', dev, 'dst', a]),
    ];
    if (commands.length > 0) await this.#o.host.bridge(commands);
    for (const a of remove) departed.delete(a);
    if (remove.length > 0) {
      this.#o.log?.info(
        { segment: plan.links.key, peers: remove },
        'cni: VXLAN peers left; flood entries removed',
      );
    }
    this.#peers.set(plan.links.key, have.size + add.length - remove.length);
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
      if (!br || (plan.links.uplink !== undefined && !up)) {
        this.#ensured.delete(key);
        for (const g of this.#gateways) if (g.startsWith(`${plan.links.bridge}/`)) this.#gateways.delete(g);
      }
      health.push(h);
    }
    return health;
  }

  get ensuredCount(): number {
    return this.#ensured.size;
  }
}
