import { IP_ANNOTATION, POOL_ANNOTATION } from '../../ipam/select.ts';
import { configurePair, createPair, type PairRequest, removeHostVeth } from '../../net/veth.ts';
import type { CniRequest } from '../protocol.ts';
import { parseCniArgs } from '../spec.ts';
import { isIpamOnly, parseNetConf, versionOf } from './conf.ts';
import { stageEnded, type VerbContext } from './handler-deps.ts';
import { buildResult, type CniResult, podRoutes } from './result.ts';
import { isSticky } from './sticky.ts';

/**
 * ADD: the address and the veth pair at once, then the segment, then both ends configured. A
 * failure at any step rolls back what this ADD made (the pair removed, the address released).
 * `mark` is the teardown record position when the ADD arrived: it waits only for DELs before it.
 */
export async function addAttachment(ctx: VerbContext, req: CniRequest, mark: number): Promise<CniResult> {
  const { deps } = ctx;
  const started = performance.now();
  const conf = parseNetConf(req.config);
  const version = versionOf(conf);
  const args = parseCniArgs(req.args);
  const annotations = conf.runtimeConfig?.['io.kubernetes.cri.pod-annotations'] ?? {};
  const requested = conf.runtimeConfig?.ips?.[0]?.split('/')[0] ?? annotations[IP_ANNOTATION];
  const pair: PairRequest = { containerID: req.containerID, ifName: req.ifName, netns: req.netns };
  const networkPool = conf.ipam?.pool ?? conf.pool ?? deps.defaultPool;
  // When the pool is (very likely) known before IPAM answers, the host end goes onto its bridge
  // in the same batch that makes the pair: one process less per ADD. A wrong guess is fixed below.
  const poolHint = annotations[POOL_ANNOTATION] ?? (requested === undefined ? networkPool : undefined);
  const predicted = poolHint === undefined ? undefined : deps.segments.predict(poolHint);
  const attach = predicted && { bridge: predicted.plan.links.bridge, mtu: conf.mtu ?? predicted.mtu };
  // The pair needs nothing from IPAM: make it while the address is allocated.
  const pod = args.get('K8S_POD_NAME') || undefined;
  const namespace = args.get('K8S_POD_NAMESPACE') || 'default';
  // An earlier DEL of this attachment (or of this pod: its sticky address) is torn down first.
  await ctx.teardowns.settle(req.containerID, req.ifName, pod && `${namespace}/${pod}`, mark);
  let t = stageEnded(deps, 'ADD', 'settle', started);
  const [allocated, made] = await Promise.allSettled([
    isSticky(deps, annotations, pod, namespace, args.get('K8S_POD_UID') || undefined).then((sticky) =>
      deps.ipam
        .allocate({
          containerID: req.containerID,
          ifName: req.ifName,
          pod: pod ?? req.containerID,
          namespace,
          node: deps.node,
          netns: req.netns || undefined,
          network: conf.name,
          podUid: args.get('K8S_POD_UID') || undefined,
          sticky,
          selection: {
            annotationPool: annotations[POOL_ANNOTATION],
            requestedIP: requested,
            networkPool,
          },
        })
        .finally(() => stageEnded(deps, 'ADD', 'ipam', t)),
    ),
    isIpamOnly(conf)
      ? Promise.resolve(undefined)
      : createPair(deps.host, pair, attach).finally(() => stageEnded(deps, 'ADD', 'pair', t)),
  ]);
  t = performance.now();
  const allocation = allocated.status === 'fulfilled' ? allocated.value : undefined;
  const veth = made.status === 'fulfilled' ? made.value : undefined;
  try {
    if (allocated.status === 'rejected') throw allocated.reason;
    if (made.status === 'rejected') throw made.reason;
    if (!allocation) throw new Error('unreachable: no allocation');
    if (!veth) return buildResult(version, allocation, undefined);
    const segment = await deps.segments.ensure(
      allocation.segment,
      allocation.pool,
      allocation.nodeGateway && allocation.gateway !== undefined
        ? { address: allocation.gateway, prefixLength: allocation.prefixLength, family: allocation.family }
        : undefined,
    );
    t = stageEnded(deps, 'ADD', 'segment', t);
    const mtu = conf.mtu ?? segment.mtu;
    const bridge = segment.plan.links.bridge;
    await configurePair(
      deps.host,
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
    stageEnded(deps, 'ADD', 'configure', t);
    if (allocation.family === 4 && ctx.announcements.possible(req.netns)) ctx.announcements.start(pair, veth);
    return buildResult(version, allocation, [
      { name: veth.hostName, mac: veth.hostMac, mtu },
      { name: req.ifName, mac: veth.containerMac, sandbox: req.netns, mtu },
    ]);
  } catch (err) {
    // Undo what this ADD made. A repeated ADD finds the address already held: that is the first
    // ADD's, not ours to free (and its pair made our createPair fail, so there is none to remove).
    if (veth) {
      await removeHostVeth(deps.host, veth.hostName).catch((lerr: unknown) => {
        deps.log?.error(
          { err: lerr, containerID: req.containerID },
          'cni: ADD rollback could not remove the veth',
        );
      });
    }
    if (allocation && !allocation.existing) {
      await deps.ipam.release(req.containerID, req.ifName).catch((rerr: unknown) => {
        deps.log?.error(
          { err: rerr, containerID: req.containerID },
          'cni: ADD rollback could not release the address',
        );
      });
    }
    throw err;
  }
}
