import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CNI, NodewardError } from '../../../shared/errors.ts';
import type { Logger } from '../../../shared/logger.ts';
import type { PodMetadataSource } from '../../../shared/pods/index.ts';
import type { Allocation, Ipam } from '../../ipam/ipam.ts';
import { handleRecordSchema, parseRecord } from '../../ipam/records.ts';
import { IP_ANNOTATION, POOL_ANNOTATION } from '../../ipam/select.ts';
import type { NetnsRunner } from '../../net/exec.ts';
import { IpError, runTool } from '../../net/exec.ts';
import { hostVethName } from '../../net/names.ts';
import type { SegmentHealth, Segments } from '../../net/segment.ts';
import {
  configurePair,
  createPair,
  type PairRequest,
  readContainerSide,
  removeHostVeth,
} from '../../net/veth.ts';
import type { Store } from '../../store/store.ts';
import { appendJournal } from '../journal.ts';
import type { CniRequest } from '../protocol.ts';
import { CniError, type CniVersion, isSupportedVersion, parseCniArgs } from '../spec.ts';
import { missingRoutes } from './check.ts';
import { isIpamOnly, type NetConf, parseNetConf } from './conf.ts';
import { buildResult, type CniResult, podRoutes } from './result.ts';

/**
 * The verbs, agent side. ADD rolls back everything it did when a later step fails (the address is
 * released, the veth removed); DEL forgives (a missing netns or link is success, and an unreachable
 * store turns the release into a journal entry replayed later).
 */

export interface HandlerDeps {
  readonly ipam: Ipam;
  readonly store: Store;
  readonly segments: Segments;
  /** Runs host-side commands (the agent's netns, or network.cni.hostNetns). */
  readonly host: NetnsRunner;
  readonly node: string;
  readonly journalDir: string;
  /** network.cni.pool: the network's pool when the config names none. */
  readonly defaultPool?: string | undefined;
  readonly log?: Logger | undefined;
  /** Segment health as last refreshed (STATUS answers 50 when a segment is broken). */
  readonly health?: () => readonly SegmentHealth[];
  /** How long STATUS waits for the store. */
  readonly statusTimeoutMs?: number;
  /**
   * Pod metadata (the kubelet's /pods): a pod whose controlling owner is a StatefulSet gets a
   * sticky address without the annotation. Absent: only the annotation decides.
   */
  readonly podMetadata?: PodMetadataSource | undefined;
  /** How long an ADD waits for pod metadata it does not have cached (default 2000 ms). */
  readonly podMetadataTimeoutMs?: number | undefined;
}

/**
 * Pod annotation: "true" asks for a sticky address (kept across re-creation of the same
 * namespace/name), "false" refuses one even for a StatefulSet pod. The runtime passes annotations
 * but not the owner kind; with a pod-metadata source the owner kind StatefulSet also says sticky.
 */
export const STICKY_ANNOTATION = 'nodeward.io/sticky-ip';

function versionOf(conf: NetConf): CniVersion {
  if (!isSupportedVersion(conf.cniVersion)) {
    throw new CniError(CNI.incompatibleVersion, `cniVersion ${conf.cniVersion} is not supported`);
  }
  return conf.cniVersion;
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export class CniHandlers {
  readonly #d: HandlerDeps;
  /** Told every valid-attachments list a CNI GC brings (the IPAM node GC's liveness evidence). */
  onValidAttachments: ((list: readonly { containerID: string; ifname: string }[]) => void) | undefined;
  #garpReason: string | undefined;
  #arping: string | undefined;

  constructor(deps: HandlerDeps) {
    this.#d = deps;
  }

  async handle(req: CniRequest): Promise<unknown> {
    switch (req.command) {
      case 'ADD':
        return this.add(req);
      case 'DEL':
        return this.del(req);
      case 'CHECK':
        return this.check(req);
      case 'GC':
        return this.gc(req);
      case 'STATUS':
        return this.status();
    }
  }

  async add(req: CniRequest): Promise<CniResult> {
    const conf = parseNetConf(req.config);
    const version = versionOf(conf);
    const args = parseCniArgs(req.args);
    const annotations = conf.runtimeConfig?.['io.kubernetes.cri.pod-annotations'] ?? {};
    const requested = conf.runtimeConfig?.ips?.[0]?.split('/')[0] ?? annotations[IP_ANNOTATION];
    const pair: PairRequest = { containerID: req.containerID, ifName: req.ifName, netns: req.netns };
    const networkPool = conf.ipam?.pool ?? conf.pool ?? this.#d.defaultPool;
    // When the pool is (very likely) known before IPAM answers, the host end goes onto its bridge
    // in the same batch that makes the pair: one process less per ADD. A wrong guess is fixed below.
    const poolHint = annotations[POOL_ANNOTATION] ?? (requested === undefined ? networkPool : undefined);
    const predicted = poolHint === undefined ? undefined : this.#d.segments.predict(poolHint);
    const attach = predicted && { bridge: predicted.plan.links.bridge, mtu: conf.mtu ?? predicted.mtu };
    // The pair needs nothing from IPAM: make it while the address is allocated.
    const pod = args.get('K8S_POD_NAME') || undefined;
    const namespace = args.get('K8S_POD_NAMESPACE') || 'default';
    const [allocated, made] = await Promise.allSettled([
      this.#sticky(annotations, pod, namespace, args.get('K8S_POD_UID') || undefined).then((sticky) =>
        this.#d.ipam.allocate({
          containerID: req.containerID,
          ifName: req.ifName,
          pod: pod ?? req.containerID,
          namespace,
          node: this.#d.node,
          netns: req.netns || undefined,
          sticky,
          selection: {
            annotationPool: annotations[POOL_ANNOTATION],
            requestedIP: requested,
            networkPool,
          },
        }),
      ),
      isIpamOnly(conf) ? Promise.resolve(undefined) : createPair(this.#d.host, pair, attach),
    ]);
    const allocation = allocated.status === 'fulfilled' ? allocated.value : undefined;
    const veth = made.status === 'fulfilled' ? made.value : undefined;
    try {
      if (allocated.status === 'rejected') throw allocated.reason;
      if (made.status === 'rejected') throw made.reason;
      if (!allocation) throw new Error('unreachable: no allocation');
      if (!veth) return buildResult(version, allocation, undefined);
      const segment = await this.#d.segments.ensure(allocation.segment, allocation.pool);
      const mtu = conf.mtu ?? segment.mtu;
      const bridge = segment.plan.links.bridge;
      await configurePair(
        this.#d.host,
        pair,
        veth,
        {
          bridge,
          mtu,
          address: `${allocation.ip}/${allocation.prefixLength}`,
          family: allocation.family,
          routes: podRoutes(allocation),
        },
        attach?.bridge === bridge && attach.mtu === mtu,
      );
      this.#announce(req, allocation);
      return buildResult(version, allocation, [
        { name: veth.hostName, mac: veth.hostMac, mtu },
        { name: req.ifName, mac: veth.containerMac, sandbox: req.netns, mtu },
      ]);
    } catch (err) {
      // Undo what this ADD made. A repeated ADD finds the address already held: that is the first
      // ADD's, not ours to free (and its pair made our createPair fail, so there is none to remove).
      if (veth) {
        await removeHostVeth(this.#d.host, veth.hostName).catch((lerr: unknown) => {
          this.#d.log?.error(
            { err: lerr, containerID: req.containerID },
            'cni: ADD rollback could not remove the veth',
          );
        });
      }
      if (allocation && !allocation.existing) {
        await this.#d.ipam.release(req.containerID, req.ifName).catch((rerr: unknown) => {
          this.#d.log?.error(
            { err: rerr, containerID: req.containerID },
            'cni: ADD rollback could not release the address',
          );
        });
      }
      throw err;
    }
  }

  /**
   * Whether the pod keeps its address across re-creation: the annotation when set, else (with a
   * pod-metadata source) a StatefulSet owner. Without a pod name there is no identity to keep it
   * for. A metadata source that fails or does not know the pod means not sticky (logged).
   */
  async #sticky(
    annotations: Readonly<Record<string, string>>,
    pod: string | undefined,
    namespace: string,
    uid: string | undefined,
  ): Promise<boolean> {
    if (pod === undefined) return false;
    const asked = annotations[STICKY_ANNOTATION];
    if (asked === 'true') return true;
    if (asked === 'false') return false;
    const source = this.#d.podMetadata;
    if (!source) return false;
    const ref = { namespace, name: pod, uid };
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = this.#d.podMetadataTimeoutMs ?? 2000;
      const info =
        source.get(ref) ??
        (await Promise.race([
          source.resolve(ref),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no pod metadata within ${timeout} ms`)), timeout);
          }),
        ]));
      if (!info) this.#d.log?.debug({ namespace, pod }, 'cni: pod metadata unknown; address not sticky');
      return info?.owners.statefulset !== undefined;
    } catch (err) {
      this.#d.log?.warn({ err, namespace, pod }, 'cni: pod metadata lookup failed; address not sticky');
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Gratuitous ARP, so switches and the router forget a previous owner of the address. Sent in
   * the background (it must not delay the ADD); without arping it is skipped, said once — the
   * kernel then announces the address with the pod's first ARP request.
   */
  #announce(req: CniRequest, a: Allocation): void {
    if (a.family !== 4) return;
    this.#arping ??= findOnPath('arping');
    if (!this.#arping) {
      if (!this.#garpReason) {
        this.#garpReason = 'arping is not installed: gratuitous ARP skipped';
        this.#d.log?.info(this.#garpReason);
      }
      return;
    }
    void runTool('nsenter', [
      `--net=${req.netns}`,
      '--',
      this.#arping,
      '-U',
      '-c',
      '1',
      '-I',
      req.ifName,
      a.ip,
    ]).catch((err: unknown) => this.#d.log?.debug({ err }, 'cni: gratuitous ARP failed'));
  }

  async del(req: CniRequest): Promise<void> {
    let conf: NetConf | undefined;
    try {
      conf = parseNetConf(req.config);
    } catch (err) {
      // DEL forgives a config it cannot read: the address is released all the same.
      this.#d.log?.warn({ err, containerID: req.containerID }, 'cni: DEL with an unreadable config');
    }
    // Links and address go at once (the bridge plugin, too, releases before tearing down): the
    // old pod is stopped, and a DEL waits for the slower of the two, not for both.
    const links =
      !conf || !isIpamOnly(conf)
        ? removeHostVeth(this.#d.host, hostVethName(req.containerID, req.ifName))
        : Promise.resolve(false);
    const release = this.#d.ipam.release(req.containerID, req.ifName).then(
      () => undefined,
      (err: unknown) => {
        if (!(err instanceof NodewardError && err.retriable)) throw err;
        // The store is away: DEL still succeeds (the runtime must be able to tear the pod down);
        // the release waits in the journal and is replayed.
        appendJournal(this.#d.journalDir, { ...req, command: 'DEL' });
        this.#d.log?.warn(
          { err, containerID: req.containerID },
          'cni: DEL journaled, the IPAM store is unreachable',
        );
      },
    );
    const [l, r] = await Promise.allSettled([links, release]);
    if (l.status === 'rejected') throw l.reason;
    if (r.status === 'rejected') throw r.reason;
  }

  /** DEL as replayed from the journal: the netns is long gone; only links and the address remain. */
  async replayDel(req: CniRequest): Promise<void> {
    await removeHostVeth(this.#d.host, hostVethName(req.containerID, req.ifName));
    await this.#d.ipam.release(req.containerID, req.ifName);
  }

  async check(req: CniRequest): Promise<void> {
    const conf = parseNetConf(req.config);
    versionOf(conf);
    const prev = conf.prevResult as Partial<CniResult> | undefined;
    if (!prev || !Array.isArray(prev.ips)) {
      throw new NodewardError('CNI_CONFIG_INVALID', 'CHECK needs prevResult with ips');
    }
    const failed = (msg: string) => new NodewardError('CNI_CHECK_FAILED', msg);
    const hKey = `handles/${req.containerID}/${req.ifName}`;
    const handle = (await this.#d.store.get([hKey])).get(hKey);
    if (!handle) throw failed(`no address is allocated to ${req.containerID}/${req.ifName}`);
    const held = parseRecord(handleRecordSchema, handle).ip;
    const prevIps = prev.ips.map((i) => i.address.split('/')[0]);
    if (!prevIps.includes(held))
      throw failed(`the allocated address ${held} is not in prevResult (${prevIps.join(', ')})`);
    if (isIpamOnly(conf)) return;

    const family = held.includes(':') ? 6 : 4;
    const state = await readContainerSide(req.netns, req.ifName, family);
    if (!state.link) throw failed(`interface ${req.ifName} is missing in ${req.netns}`);
    if (!state.link.flags?.includes('UP')) throw failed(`interface ${req.ifName} is down`);
    const prevIf = prev.interfaces?.find((i) => i.sandbox !== undefined && i.name === req.ifName);
    if (prevIf && state.link.address !== prevIf.mac) {
      throw failed(`interface ${req.ifName} has MAC ${state.link.address}, prevResult says ${prevIf.mac}`);
    }
    const have = new Set((state.link.addr_info ?? []).map((x) => `${x.local}/${x.prefixlen}`));
    for (const ip of prev.ips) {
      if (!have.has(ip.address)) throw failed(`address ${ip.address} is missing on ${req.ifName}`);
    }
    const [missing] = missingRoutes(prev.routes ?? [], state.routes, family);
    if (missing) {
      throw failed(
        `route ${missing.dst}${missing.gw ? ` via ${missing.gw}` : ''} is missing on ${req.ifName}`,
      );
    }
    const hostName = hostVethName(req.containerID, req.ifName);
    const hostSide = await this.#d.host.ip([['link', 'show', 'dev', hostName]]).catch((err: unknown) => {
      if (err instanceof IpError && err.notFound) return undefined;
      throw err;
    });
    if (hostSide === undefined) throw failed(`host end ${hostName} of ${req.ifName} is missing`);
  }

  /** Releases this node's attachments that the runtime no longer lists. */
  async gc(req: CniRequest): Promise<void> {
    const conf = parseNetConf(req.config);
    const valid = conf['cni.dev/valid-attachments'];
    if (!valid) throw new NodewardError('CNI_CONFIG_INVALID', 'GC needs cni.dev/valid-attachments');
    this.onValidAttachments?.(valid);
    const keep = new Set(valid.map((a) => `${a.containerID}/${a.ifname}`));
    const { entries } = await this.#d.store.list('handles/');
    for (const e of entries) {
      const rest = e.key.slice('handles/'.length);
      if (keep.has(rest)) continue;
      const record = parseRecord(handleRecordSchema, e);
      if (record.node !== this.#d.node) continue;
      const slash = rest.lastIndexOf('/');
      const [containerID, ifName] = [rest.slice(0, slash), rest.slice(slash + 1)];
      if (!isIpamOnly(conf)) await removeHostVeth(this.#d.host, hostVethName(containerID, ifName));
      await this.#d.ipam.release(containerID, ifName);
      this.#d.log?.info({ containerID, ifName, ip: record.ip }, 'cni: GC released a stale attachment');
    }
  }

  async status(): Promise<void> {
    const timeout = this.#d.statusTimeoutMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#d.store.list('pools/'),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout);
        }),
      ]);
    } catch (err) {
      throw new CniError(CNI.notAvailable, `the IPAM store is unreachable: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    const broken = (this.#d.health?.() ?? []).filter((h) => !h.bridgeUp || !h.uplinkUp);
    if (broken.length > 0) {
      throw new CniError(
        CNI.notAvailable,
        `segment links are down: ${broken.map((h) => `${h.segment} (${h.bridge}${h.uplink ? `, ${h.uplink}` : ''})`).join(', ')}`,
      );
    }
  }

  get garpReason(): string | undefined {
    return this.#garpReason;
  }
}
