import type { NetworkConfig } from '../../shared/config/index.ts';
import type { Logger } from '../../shared/logger.ts';
import type { GcKind } from '../ipam/metrics.ts';
import type { Store } from '../store/store.ts';
import { ClusterGc, type ClusterGcRound, type NodeEvidence } from './cluster.ts';
import { dockerSource, type LivenessSource, netnsSource, ValidAttachments } from './liveness.ts';
import { NodeGc, type NodeGcRound } from './node.ts';
import type { Presence } from './presence.ts';

export { ClusterGc, type ClusterGcRound, type NodeEvidence, type PlacedPod } from './cluster.ts';
export { dockerSource, netnsSource, ValidAttachments } from './liveness.ts';
export { NodeGc, type NodeGcRound } from './node.ts';
export { gcLeaderKey, nodeLivenessKey, Presence } from './presence.ts';

/**
 * The IPAM GC as the network module runs it: each tick refreshes this agent's liveness lease
 * (etcd), runs the node reconciler, and — when this agent wins the election — the cluster GC.
 */

export interface IpamGcOptions {
  readonly store: Store;
  readonly node: string;
  readonly gc: NetworkConfig['ipam']['gc'];
  readonly log?: Logger | undefined;
  readonly onRelease?: ((kind: GcKind) => void) | undefined;
  readonly now?: () => number;
  /** Extra liveness sources (tests). */
  readonly sources?: readonly LivenessSource[];
  /** The API server's word on nodes whose lease is gone (cluster GC); absent: it frees nothing. */
  readonly nodes?: NodeEvidence | undefined;
}

export interface IpamGc {
  /** Fed by the CNI GC verb (cni.dev/valid-attachments). */
  readonly valid: ValidAttachments;
  tick(): Promise<{ node: NodeGcRound; cluster: ClusterGcRound | undefined }>;
  stop(): Promise<void>;
}

export async function startIpamGc(o: IpamGcOptions): Promise<IpamGc> {
  const valid = new ValidAttachments(o.now);
  const sources = [netnsSource(), valid, dockerSource(o.gc.dockerSocket), ...(o.sources ?? [])];
  const common = {
    store: o.store,
    node: o.node,
    graceMs: o.gc.grace,
    log: o.log,
    onRelease: o.onRelease,
    ...(o.now ? { now: o.now } : {}),
  };
  const nodeGc = new NodeGc({ ...common, sources });
  let presence: Presence | undefined;
  let clusterGc: ClusterGc | undefined;
  if (o.store.kind === 'etcd') {
    const { EtcdStore } = await import('../store/etcd.ts');
    const { Presence } = await import('./presence.ts');
    if (o.store instanceof EtcdStore) {
      presence = new Presence(o.store, o.node, Math.max(1, Math.round(o.gc.leaseTtl / 1000)), o.log);
      if (o.gc.cluster) {
        clusterGc = new ClusterGc({ ...common, nodes: o.nodes });
        if (o.nodes === undefined)
          o.log?.warn(
            'ipam gc: the cluster GC frees the addresses of a node only once the API server confirms the node or its pods are gone; with pods.source other than apiserver it has no API server to ask and frees nothing',
          );
      }
    }
  }
  return {
    valid,
    async tick() {
      await presence?.ensure();
      const node = await nodeGc.round();
      const cluster =
        clusterGc && presence && (await presence.tryLead()) ? await clusterGc.round() : undefined;
      return { node, cluster };
    },
    async stop() {
      await presence?.close();
    },
  };
}
