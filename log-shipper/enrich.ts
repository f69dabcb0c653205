import { basename, dirname } from 'node:path';
import { containerIdOf, type PodInfo, type PodMetadataSource, type PodOwners } from '../shared/pods/index.ts';

/**
 * The enrich stage: the labels every record of a file carries. The file name gives namespace,
 * pod, uid, container and container id; pod metadata (owner workload, pod labels, annotations for
 * the pod rules) comes from a PodMetadataSource — the kubelet's /pods — when it knows the pod.
 */

export interface Labels extends PodOwners {
  node: string;
  namespace?: string;
  pod?: string;
  pod_uid?: string;
  container?: string;
  container_id?: string;
  /** Pod labels named by logs.podLabels. */
  pod_labels?: Record<string, string>;
}

/** What the file system tells about a file: its watched path and the file it resolved to. */
export interface FileRef {
  readonly path: string;
  readonly realPath: string;
}

export interface Enrichment {
  readonly labels: Labels;
  /** The pod's metadata, when the source knew it. */
  readonly pod: PodInfo | undefined;
  /** A source is configured but did not know the pod: labels come from the file name only. */
  readonly missing: boolean;
}

export interface Enricher {
  /** From the cache only. */
  labels(file: FileRef): Enrichment;
  /** Asks the source for a pod it does not know yet (one rate-limited refresh) before labelling. */
  resolve(file: FileRef): Promise<Enrichment>;
  /** The source's cache generation (0 without a source): labels(file) may differ once it moved. */
  generation(): number;
  /** The source fails now: a pod it does not know will not come from it soon. */
  sourceFailing(): boolean;
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

/** `<restarts>` of `/var/log/pods/…/<container>/<restarts>.log` (also `.log.<ts>` after rotation). */
function restartsOf(realPath: string): number | undefined {
  const name = basename(realPath);
  const dot = name.indexOf('.log');
  if (dot <= 0) return undefined;
  const n = Number(name.slice(0, dot));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Exact keys, or prefixes written `prefix*`. */
export function labelPicker(
  allow: readonly string[],
): (labels: Readonly<Record<string, string>>) => Record<string, string> | undefined {
  const exact = new Set(allow.filter((a) => !a.endsWith('*')));
  const prefixes = allow.filter((a) => a.endsWith('*')).map((a) => a.slice(0, -1));
  return (labels) => {
    let out: Record<string, string> | undefined;
    for (const key of Object.keys(labels).sort()) {
      if (exact.has(key) || prefixes.some((p) => key.startsWith(p))) {
        out ??= {};
        out[key] = labels[key]!;
      }
    }
    return out;
  };
}

export function createEnricher(options: {
  node: string;
  metadata?: PodMetadataSource;
  podLabels?: readonly string[];
}): Enricher {
  const pick = labelPicker(options.podLabels ?? []);
  const source = options.metadata;

  function fromName(file: FileRef): Labels {
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
    return labels;
  }

  function withPod(file: FileRef, labels: Labels, pod: PodInfo | undefined): Enrichment {
    if (pod === undefined)
      return {
        labels,
        pod,
        missing: source !== undefined && labels.namespace !== undefined && labels.pod !== undefined,
      };
    const out: Labels = { ...labels, ...pod.owners };
    out.pod_uid ??= pod.uid;
    if (out.container_id === undefined && out.container !== undefined) {
      const restarts = restartsOf(file.realPath);
      const id = restarts === undefined ? undefined : containerIdOf(pod, out.container, restarts);
      if (id !== undefined) out.container_id = id;
    }
    const picked = pick(pod.labels);
    if (picked !== undefined) out.pod_labels = picked;
    return { labels: out, pod, missing: false };
  }

  const refOf = (labels: Labels) =>
    labels.namespace !== undefined && labels.pod !== undefined
      ? { namespace: labels.namespace, name: labels.pod, uid: labels.pod_uid }
      : undefined;

  return {
    labels(file) {
      const labels = fromName(file);
      const ref = refOf(labels);
      return withPod(file, labels, ref && source?.get(ref));
    },
    generation: () => source?.generation ?? 0,
    sourceFailing: () => source?.lastError !== undefined,
    async resolve(file) {
      const labels = fromName(file);
      const ref = refOf(labels);
      return withPod(file, labels, ref && (await source?.resolve(ref)));
    },
  };
}
