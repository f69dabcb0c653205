import { CNI, NodewardError } from '../../../shared/errors.ts';
import type { Logger } from '../../../shared/logger.ts';
import type { PodMetadataSource } from '../../../shared/pods/index.ts';
import type { Ipam } from '../../ipam/ipam.ts';
import { handleRecordSchema, parseRecord } from '../../ipam/records.ts';
import { IP_ANNOTATION, POOL_ANNOTATION } from '../../ipam/select.ts';
import type { NetnsRunner } from '../../net/exec.ts';
import { IpError } from '../../net/exec.ts';
import { hostVethName } from '../../net/names.ts';
import type { SegmentHealth, Segments } from '../../net/segment.ts';
import {
  announceAddress,
  configurePair,
  createPair,
  garpProblem,
  type PairRequest,
  readContainerSide,
  removeHostVeth,
  VethReaper,
} from '../../net/veth.ts';
import type { Store } from '../../store/store.ts';
import type { CniRequest } from '../protocol.ts';
import { CniError, type CniVersion, isSupportedVersion, parseCniArgs } from '../spec.ts';
import { attachmentKey, Teardowns } from '../teardown.ts';
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
  /** Time spent per stage of a verb (metrics, the bench's breakdown). */
  readonly onStage?: ((verb: 'ADD' | 'DEL', stage: string, seconds: number) => void) | undefined;
  /** Pending teardowns changed (journal depth). */
  readonly onJournalDepth?: ((depth: number) => void) | undefined;
  /** One background teardown attempt ended. */
  readonly onTeardown?: ((seconds: number, ok: boolean) => void) | undefined;
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

export class CniHandlers {
  readonly #d: HandlerDeps;
  /** Told every valid-attachments list a CNI GC brings (the IPAM node GC's liveness evidence). */
  onValidAttachments: ((list: readonly { containerID: string; ifname: string }[]) => void) | undefined;
  /** DELs answered, torn down in the background (see ../teardown.ts). */
  readonly teardowns: Teardowns;
  /**
   * The last ADD or teardown of each attachment: each waits for the one before it, so a DEL that
   * arrives while its ADD is in flight tears down what that ADD made, and an ADD after a DEL
   * starts on a clean slate.
   */
  readonly #last = new Map<string, Promise<unknown>>();
  /** Gratuitous ARPs still being sent, by attachment. */
  readonly #announcing = new Map<string, Promise<void>>();
  #garpNoted = false;
  /** Host veth ends of teardowns, deleted in batches (one RTNL-held RCU wait per batch). */
  readonly #reaper: VethReaper;

  constructor(deps: HandlerDeps) {
    this.#d = deps;
    this.#reaper = new VethReaper(deps.host);
    this.teardowns = new Teardowns({
      journalDir: deps.journalDir,
      run: (req) => this.#teardown(req),
      log: deps.log,
      onDepth: deps.onJournalDepth,
      onAttempt: deps.onTeardown,
    });
  }

  /** Whether ADD can announce the address (said once when it cannot). */
  #garp(netns: string): boolean {
    const problem = garpProblem(netns);
    if (problem && !this.#garpNoted) {
      this.#garpNoted = true;
      this.#d.log?.info({ reason: problem }, 'cni: gratuitous ARP skipped');
    }
    return problem === undefined;
  }

  #stage(verb: 'ADD' | 'DEL', stage: string, since: number): number {
    const now = performance.now();
    this.#d.onStage?.(verb, stage, (now - since) / 1000);
    return now;
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
    const prev = this.#last.get(attachmentKey(req.containerID, req.ifName));
    // Taken now, before any await: the DELs this ADD must wait for are those already recorded.
    const mark = this.teardowns.mark();
    return this.#sequence(
      req,
      (async () => {
        await prev?.catch(() => {});
        return this.#add(req, mark);
      })(),
    );
  }

  /** Makes `op` the last operation of the request's attachment until it settles. */
  #sequence<T>(req: CniRequest, op: Promise<T>): Promise<T> {
    const key = attachmentKey(req.containerID, req.ifName);
    this.#last.set(key, op);
    const forget = () => {
      if (this.#last.get(key) === op) this.#last.delete(key);
    };
    op.then(forget, forget);
    return op;
  }

  async #add(req: CniRequest, mark: number): Promise<CniResult> {
    const started = performance.now();
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
    // An earlier DEL of this attachment (or of this pod: its sticky address) is torn down first.
    await this.teardowns.settle(req.containerID, req.ifName, pod && `${namespace}/${pod}`, mark);
    let t = this.#stage('ADD', 'settle', started);
    const [allocated, made] = await Promise.allSettled([
      this.#sticky(annotations, pod, namespace, args.get('K8S_POD_UID') || undefined).then((sticky) =>
        this.#d.ipam
          .allocate({
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
          })
          .finally(() => this.#stage('ADD', 'ipam', t)),
      ),
      isIpamOnly(conf)
        ? Promise.resolve(undefined)
        : createPair(this.#d.host, pair, attach).finally(() => this.#stage('ADD', 'pair', t)),
    ]);
    t = performance.now();
    const allocation = allocated.status === 'fulfilled' ? allocated.value : undefined;
    const veth = made.status === 'fulfilled' ? made.value : undefined;
    try {
      if (allocated.status === 'rejected') throw allocated.reason;
      if (made.status === 'rejected') throw made.reason;
      if (!allocation) throw new Error('unreachable: no allocation');
      if (!veth) return buildResult(version, allocation, undefined);
      const segment = await this.#d.segments.ensure(allocation.segment, allocation.pool);
      t = this.#stage('ADD', 'segment', t);
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
      this.#stage('ADD', 'configure', t);
      if (allocation.family === 4 && this.#garp(req.netns)) {
        // In the background: the answer does not wait for the announcement. A teardown of this
        // attachment waits for it, so it never announces an address already released.
        const key = attachmentKey(req.containerID, req.ifName);
        const announcing = announceAddress(pair, veth).catch((err: unknown) => {
          this.#d.log?.debug({ err, containerID: req.containerID }, 'cni: gratuitous ARP not sent');
        });
        this.#announcing.set(key, announcing);
        void announcing.finally(() => {
          if (this.#announcing.get(key) === announcing) this.#announcing.delete(key);
        });
      }
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
   * DEL: recorded in the journal, answered, torn down in the background (`#teardown`); an ADD of
   * the same attachment or pod waits for that. When the journal cannot be written (disk full,
   * read-only), the teardown runs before the answer, as it would without a journal.
   */
  async del(req: CniRequest): Promise<void> {
    const started = performance.now();
    try {
      const after = this.#last.get(attachmentKey(req.containerID, req.ifName));
      void this.#sequence(req, this.teardowns.record(req, after));
    } catch (err) {
      this.#d.log?.error(
        { err, containerID: req.containerID, journalDir: this.#d.journalDir },
        'cni: DEL not journaled; tearing down before answering',
      );
      // Still in the attachment's order: after an ADD in flight, before the next one.
      const prev = this.#last.get(attachmentKey(req.containerID, req.ifName));
      await this.#sequence(
        req,
        (async () => {
          await prev?.catch(() => {});
          await this.#teardown(req);
        })(),
      );
    }
    this.#stage('DEL', 'journal', started);
  }

  /**
   * The work of a DEL: the host veth (its peer goes with it), then the address — in that order, so
   * an address is never free while an interface that answers ARP for it still exists (a pending
   * announcement of it included). A missing link or handle is success.
   */
  async #teardown(req: CniRequest): Promise<void> {
    let conf: NetConf | undefined;
    try {
      conf = parseNetConf(req.config);
    } catch (err) {
      // DEL forgives a config it cannot read: links and address go all the same.
      this.#d.log?.warn({ err, containerID: req.containerID }, 'cni: DEL with an unreadable config');
    }
    let t = performance.now();
    const key = attachmentKey(req.containerID, req.ifName);
    await this.#announcing.get(key)?.catch(() => {});
    if (!(conf && isIpamOnly(conf))) {
      await this.#reaper.remove(hostVethName(req.containerID, req.ifName));
      t = this.#stage('DEL', 'links', t);
    }
    await this.#d.ipam.release(req.containerID, req.ifName);
    this.#stage('DEL', 'release', t);
  }

  async check(req: CniRequest): Promise<void> {
    const conf = parseNetConf(req.config);
    versionOf(conf);
    const failed = (msg: string) => new NodewardError('CNI_CHECK_FAILED', msg);
    if (this.teardowns.has(req.containerID, req.ifName)) {
      throw failed(`${req.containerID}/${req.ifName} was deleted; its teardown is pending`);
    }
    const prev = conf.prevResult as Partial<CniResult> | undefined;
    if (!prev || !Array.isArray(prev.ips)) {
      throw new NodewardError('CNI_CONFIG_INVALID', 'CHECK needs prevResult with ips');
    }
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
      // Deleted already: the teardown queue releases it (and retries while the store is away).
      if (this.teardowns.has(containerID, ifName)) continue;
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
}
