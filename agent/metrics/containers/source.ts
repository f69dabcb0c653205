/**
 * One running container as the container collector sees it: where its cgroup is, which process
 * holds its network namespace, and the identity labels cAdvisor and the kubelet put on its series.
 */
export interface ContainerInfo {
  /** The cgroup path under each hierarchy root, e.g. /docker/<id> or /kubepods/burstable/pod<uid>/<id>. */
  readonly cgroupPath: string;
  /** `id,name,image,container,pod,namespace`, built once (the id label is the cgroup path, as cAdvisor's). */
  readonly labels: ContainerLabels;
  /** A process inside the container, for /proc/<pid>/net/dev; undefined: read cgroup.procs at scrape. */
  readonly pid?: number;
  /** Unix seconds the container started. */
  readonly startTime?: number;
  /** The runtime's ID of the container (cgroup source: from its cgroup), to find it in the CRI's stats. */
  readonly containerId?: string;
  /**
   * Whether its network namespace is its own. A container that joined another's (every
   * container of a pod joins the pause container's) or the host's reports no network series,
   * as in cAdvisor — otherwise a pod's traffic would be counted once per container.
   */
  readonly ownNetwork?: boolean;
}

export type ContainerLabels = Readonly<{
  id: string;
  name: string;
  image: string;
  container: string;
  pod: string;
  namespace: string;
}>;

/** Where the collector learns which containers exist; `list()` is the current view, cheap to call. */
export interface ContainerSource {
  /** `auto` until the auto source has found out which of the two this node needs (runtime.ts). */
  readonly kind: 'docker' | 'cgroups' | 'auto';
  list(): readonly ContainerInfo[];
  /** Keeps the view current (e.g. follows the Docker events stream) until the signal aborts. */
  run(signal: AbortSignal): Promise<void>;
}

/** The kubelet's container labels (set by dockershim / cri-dockerd on every pod container). */
export const KUBE_LABELS = {
  pod: 'io.kubernetes.pod.name',
  namespace: 'io.kubernetes.pod.namespace',
  container: 'io.kubernetes.container.name',
  podUid: 'io.kubernetes.pod.uid',
} as const;

/**
 * Pod metadata for containers found only by their cgroup (containerd, CRI-O): the kubelet's /pods
 * knows which pod and container name a container ID belongs to. shared/pods implements it.
 */
export interface PodLookup {
  container(
    podUid: string,
    containerId: string,
  ): { pod: string; namespace: string; container: string; image: string } | undefined;
}
