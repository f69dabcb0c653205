import type { KubeObject } from '../kube/index.ts';

/**
 * Pods as the kubelet's `/pods` and the API server list them (a core/v1 PodList), reduced to what node-local
 * consumers label things with: identity, labels, annotations, owning workload, containers.
 */

/** The part of a core/v1 Pod read here; every field optional, as in the API's JSON. */
export interface V1Pod extends KubeObject {
  metadata?: KubeObject['metadata'] & {
    creationTimestamp?: string;
    ownerReferences?: {
      apiVersion?: string;
      kind?: string;
      name?: string;
      uid?: string;
      controller?: boolean;
    }[];
  };
  spec?: { nodeName?: string };
  status?: {
    containerStatuses?: V1ContainerStatus[];
    initContainerStatuses?: V1ContainerStatus[];
    ephemeralContainerStatuses?: V1ContainerStatus[];
  };
}

export interface V1ContainerStatus {
  name?: string;
  containerID?: string;
  /** The image the runtime runs, as it reports it (e.g. docker.io/library/nginx:1.27). */
  image?: string;
  restartCount?: number;
  lastState?: { terminated?: { containerID?: string } };
}

export interface V1PodList {
  kind?: string;
  apiVersion?: string;
  /** The API server's list: where a watch continues from. */
  metadata?: { resourceVersion?: string };
  items?: V1Pod[];
}

/** The workload a pod belongs to, by kind; only the kinds that apply are set. */
export interface PodOwners {
  deployment?: string;
  replicaset?: string;
  statefulset?: string;
  daemonset?: string;
  job?: string;
  cronjob?: string;
}

export interface ContainerInfo {
  readonly name: string;
  /** Without the runtime prefix (`containerd://`). */
  readonly id?: string;
  readonly restartCount: number;
  /** The previous instance's id, whose log file is `<restartCount - 1>.log`. */
  readonly lastId?: string;
  /** status.containerStatuses[].image: cAdvisor's `image` label where no runtime is asked. */
  readonly image?: string;
}

export interface PodInfo {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly owners: Readonly<PodOwners>;
  readonly containers: readonly ContainerInfo[];
}

/** Jobs a CronJob creates are named `<cronjob>-<scheduled time in minutes since the epoch>`. */
const CRONJOB_SUFFIX = /^(.+)-(\d{7,10})$/;
/**
 * A Job's pods are created within this time of its scheduled minute, unless retried much later:
 * then the CronJob goes unnamed rather than guessed.
 */
const CRONJOB_WINDOW_MS = 24 * 3600 * 1000;

function stripRuntime(id: string | undefined): string | undefined {
  if (id === undefined || id === '') return undefined;
  const sep = id.indexOf('://');
  return sep === -1 ? id : id.slice(sep + 3);
}

/**
 * The workload that owns a pod, from its controller reference (no API-server call: the kubelet
 * only knows the pod):
 * - ReplicaSet `<deployment>-<pod-template-hash>`: the Deployment is the name minus the pod's
 *   `pod-template-hash` label value; a ReplicaSet whose name does not end so has no Deployment.
 * - StatefulSet, DaemonSet, Job: their name.
 * - CronJob: a Job named `<cronjob>-<N>` whose N is a minute since the epoch at most a day before
 *   the pod was created (what the CronJob controller names its Jobs). The pod alone cannot prove
 *   it (the Job's own owner reference is not in /pods), so a Job retried more than a day after
 *   its schedule gets no cronjob label rather than a guessed one.
 */
export function ownersOf(pod: V1Pod): PodOwners {
  const meta = pod.metadata ?? {};
  const refs = meta.ownerReferences ?? [];
  const ref = refs.find((r) => r.controller === true) ?? (refs.length === 1 ? refs[0] : undefined);
  if (ref?.name === undefined || ref.kind === undefined) return {};
  const name = ref.name;
  switch (ref.kind) {
    case 'ReplicaSet': {
      const hash = meta.labels?.['pod-template-hash'];
      if (hash !== undefined && hash !== '' && name.endsWith(`-${hash}`) && name.length > hash.length + 1)
        return { replicaset: name, deployment: name.slice(0, -hash.length - 1) };
      return { replicaset: name };
    }
    case 'StatefulSet':
      return { statefulset: name };
    case 'DaemonSet':
      return { daemonset: name };
    case 'Job': {
      const m = CRONJOB_SUFFIX.exec(name);
      const created = Date.parse(meta.creationTimestamp ?? '');
      if (m !== null && Number.isFinite(created)) {
        const scheduled = Number(m[2]) * 60_000;
        if (scheduled <= created && created - scheduled <= CRONJOB_WINDOW_MS)
          return { job: name, cronjob: m[1]! };
      }
      return { job: name };
    }
    default:
      return {};
  }
}

function containersOf(pod: V1Pod): ContainerInfo[] {
  const out: ContainerInfo[] = [];
  const st = pod.status ?? {};
  for (const list of [st.containerStatuses, st.initContainerStatuses, st.ephemeralContainerStatuses]) {
    for (const c of list ?? []) {
      if (c.name === undefined) continue;
      const id = stripRuntime(c.containerID);
      const lastId = stripRuntime(c.lastState?.terminated?.containerID);
      out.push({
        name: c.name,
        restartCount: c.restartCount ?? 0,
        ...(id !== undefined ? { id } : {}),
        ...(lastId !== undefined ? { lastId } : {}),
        ...(c.image ? { image: c.image } : {}),
      });
    }
  }
  return out;
}

/** A v1 Pod as PodInfo; undefined when it lacks its identity. */
export function podInfoOf(pod: V1Pod): PodInfo | undefined {
  const m = pod.metadata;
  if (m?.uid === undefined || m.name === undefined || m.namespace === undefined) return undefined;
  return {
    uid: m.uid,
    namespace: m.namespace,
    name: m.name,
    labels: m.labels ?? {},
    annotations: m.annotations ?? {},
    owners: ownersOf(pod),
    containers: containersOf(pod),
  };
}

/**
 * The id of the container instance whose log is `<restarts>.log`: the current one, or the one
 * before (the kubelet keeps the previous instance's log).
 */
export function containerIdOf(pod: PodInfo, container: string, restarts: number): string | undefined {
  const c = pod.containers.find((x) => x.name === container);
  if (c === undefined) return undefined;
  if (restarts === c.restartCount) return c.id;
  if (restarts === c.restartCount - 1) return c.lastId;
  return undefined;
}
