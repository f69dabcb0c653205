import type { ApiServer } from './http.ts';
import { listObjects } from './list.ts';
import { type KubeObject, MIRROR_ANNOTATION } from './objects.ts';

/**
 * What the API server says about one node right now, for a decision that frees addresses (the
 * IPAM cluster GC): whether its Node object exists, and which pods are bound to it. Consistent
 * reads (no resourceVersion: from etcd, not the watch cache) made at the moment of the decision,
 * for the few nodes that lost their lease — no watch of every Node in the cluster (large objects,
 * and a cache that may lag is the wrong thing to free addresses on). Any failure throws: a
 * question the API server did not answer is never read as "gone".
 */

export interface PlacedPod {
  readonly namespace: string;
  readonly name: string;
  /** metadata.uid, and the kubelet's uid of a static pod (its mirror annotation). */
  readonly uids: readonly string[];
}

export interface NodePlacement {
  /** False: the Node object is deleted (absent from a list of that name). */
  readonly exists: boolean;
  /** The pods whose spec.nodeName is the node (empty when it does not exist). */
  readonly pods: readonly PlacedPod[];
}

export async function nodePlacement(
  api: ApiServer,
  node: string,
  signal?: AbortSignal,
): Promise<NodePlacement> {
  const nodes = await listObjects<KubeObject>(
    api,
    { path: 'api/v1/nodes', fieldSelector: `metadata.name=${node}` },
    undefined,
    signal,
  );
  if (!nodes.items.some((n) => n.metadata?.name === node)) return { exists: false, pods: [] };
  const pods = await listObjects<KubeObject>(
    api,
    { path: 'api/v1/pods', fieldSelector: `spec.nodeName=${node}` },
    undefined,
    signal,
  );
  const placed: PlacedPod[] = [];
  for (const { metadata: m } of pods.items) {
    if (!m?.name || !m.namespace) continue;
    const mirror = m.annotations?.[MIRROR_ANNOTATION];
    placed.push({
      namespace: m.namespace,
      name: m.name,
      uids: [m.uid, mirror].filter((u): u is string => typeof u === 'string' && u !== ''),
    });
  }
  return { exists: true, pods: placed };
}
