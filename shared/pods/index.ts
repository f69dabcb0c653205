/**
 * Pod metadata for node-local modules (log labels, container metrics, IPAM annotations), from the
 * kubelet's `/pods`. See source.ts for the cache's rules and pod.ts for owner resolution.
 */
export { fetchPodList, KubeletError, type KubeletOptions } from './kubelet.ts';
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
  type PodSourceListener,
} from './source.ts';
