import type { PodMetadataSource } from '../../../shared/pods/index.ts';
import type { PodLookup } from './source.ts';

/**
 * The shared kubelet pod cache as the cgroup source's lookup: pod by UID (from the cgroup path),
 * container by ID (current or previous instance), its image from status.containerStatuses[].image
 * (what the runtime reports it runs: cAdvisor's `image` label on containerd and CRI-O nodes). A pod
 * the cache does not know yet triggers one rate-limited refresh; the cgroup source asks again at
 * the next scrape.
 */
export function podLookupFrom(source: PodMetadataSource): PodLookup {
  return {
    container(podUid, containerId) {
      const ref = { uid: podUid, namespace: '', name: '' };
      const pod = source.get(ref);
      if (!pod) {
        void source.resolve(ref).catch(() => {});
        return undefined;
      }
      const c = pod.containers.find((x) => x.id === containerId || x.lastId === containerId);
      // Not (yet) in the pod's statuses — the pause container, or one newer than the last poll:
      // pod and namespace are known, the container name stays empty and is asked for again.
      return { pod: pod.name, namespace: pod.namespace, container: c?.name ?? '', image: c?.image ?? '' };
    },
  };
}
