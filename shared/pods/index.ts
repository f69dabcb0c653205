/**
 * Pod metadata for node-local modules (log labels, container metrics, IPAM annotations), from the
 * kubelet's `/pods` or an API-server watch of this node's pods. See cache.ts for the cache's
 * rules, source.ts and apiserver.ts for the two sources, pod.ts for owner resolution.
 */

export { type Connection, inClusterUrl, KubeError as PodSourceError } from '../kube/index.ts';
export { ApiServerPodSource, type ApiServerPodSourceOptions } from './apiserver.ts';
export { PodCache } from './cache.ts';
export { fetchPodList, type KubeletOptions } from './kubelet.ts';
export {
  type ContainerInfo,
  containerIdOf,
  ownersOf,
  type PodInfo,
  type PodOwners,
  podInfoOf,
  type V1Pod,
  type V1PodList,
} from './pod.ts';
export { logPodSourceHealth, sharedPodSource } from './shared.ts';
export {
  KubeletPodSource,
  type KubeletPodSourceOptions,
  type PodMetadataSource,
  type PodRef,
  type PodSource,
  type PodSourceListener,
} from './source.ts';
