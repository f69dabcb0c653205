import { basename, dirname } from 'node:path';

/**
 * The enrich stage: the labels every record of a file carries. Milestone 1 takes them from the
 * kubelet's file names; pod metadata (pod labels, owning Deployment) plugs in through
 * PodMetadataSource without changing the stages around it.
 */

export interface Labels {
  node: string;
  namespace?: string;
  pod?: string;
  pod_uid?: string;
  container?: string;
  container_id?: string;
  /** From a PodMetadataSource (milestone 2): the Deployment owning the pod's ReplicaSet. */
  deployment?: string;
}

/** What the file system tells about a file: its watched path and the file it resolved to. */
export interface FileRef {
  readonly path: string;
  readonly realPath: string;
}

export interface PodMetadata {
  readonly deployment?: string;
}

/** A node-local source of pod metadata, such as the kubelet's /pods. */
export interface PodMetadataSource {
  lookup(namespace: string, pod: string, uid: string | undefined): PodMetadata | undefined;
}

export interface Enricher {
  labels(file: FileRef): Labels;
}

const CONTAINER_ID_LENGTH = 64;

function isHex(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/**
 * From /var/log/containers/<pod>_<namespace>_<container>-<64 hex id>.log. Kubernetes names hold no
 * '_', so the split is unambiguous; anything else yields no labels rather than wrong ones.
 */
export function labelsFromContainerLogName(path: string): Omit<Labels, 'node'> {
  const name = basename(path);
  if (!name.endsWith('.log')) return {};
  const stem = name.slice(0, -4);
  const dash = stem.length - CONTAINER_ID_LENGTH - 1;
  if (dash < 5 || stem[dash] !== '-') return {};
  const id = stem.slice(dash + 1);
  if (!isHex(id)) return {};
  const parts = stem.slice(0, dash).split('_');
  if (parts.length !== 3 || parts.some((p) => p === '')) return {};
  const [pod, namespace, container] = parts as [string, string, string];
  return { namespace, pod, container, container_id: id };
}

/** From /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restarts>.log. */
export function labelsFromPodLogPath(realPath: string): Omit<Labels, 'node'> {
  const containerDir = dirname(realPath);
  const podDir = basename(dirname(containerDir));
  const parts = podDir.split('_');
  if (parts.length !== 3 || parts.some((p) => p === '') || !basename(realPath).includes('.log')) return {};
  const [namespace, pod, uid] = parts as [string, string, string];
  return { namespace, pod, pod_uid: uid, container: basename(containerDir) };
}

export function createEnricher(options: { node: string; metadata?: PodMetadataSource }): Enricher {
  return {
    labels(file: FileRef): Labels {
      const byName = labelsFromContainerLogName(file.path);
      const byPath = labelsFromPodLogPath(file.realPath);
      // The pod directory is trusted for the uid only when it names the same pod.
      const samePod =
        byName.pod === undefined || (byName.pod === byPath.pod && byName.namespace === byPath.namespace);
      const labels: Labels = { node: options.node };
      const namespace = byName.namespace ?? byPath.namespace;
      const pod = byName.pod ?? byPath.pod;
      if (namespace !== undefined) labels.namespace = namespace;
      if (pod !== undefined) labels.pod = pod;
      if (samePod && byPath.pod_uid !== undefined) labels.pod_uid = byPath.pod_uid;
      const container = byName.container ?? (samePod ? byPath.container : undefined);
      if (container !== undefined) labels.container = container;
      if (byName.container_id !== undefined) labels.container_id = byName.container_id;
      if (namespace !== undefined && pod !== undefined) {
        const meta = options.metadata?.lookup(namespace, pod, labels.pod_uid);
        if (meta?.deployment !== undefined) labels.deployment = meta.deployment;
      }
      return labels;
    },
  };
}
