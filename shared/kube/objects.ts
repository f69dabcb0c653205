/**
 * Kubernetes objects as lists and watches carry them, reduced to their metadata: enough for
 * Namespaces (labels, annotations) and Nodes (labels), and for the resourceVersion a watch resumes
 * from. Every field optional, as in the API's JSON.
 */

export interface KubeObject {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
}

/** A core/v1 list (PodList, NamespaceList, NodeList). */
export interface KubeList<T> {
  kind?: string;
  apiVersion?: string;
  /** Where a watch of the same collection continues from. */
  metadata?: { resourceVersion?: string };
  items?: T[];
}

export type Labels = Readonly<Record<string, string>>;

/**
 * A static pod (etcd, kube-apiserver, kube-proxy as manifests) runs under the kubelet's own uid —
 * the one in /var/log/pods/<ns>_<name>_<uid>, in its cgroup and in the runtime's K8S_POD_UID —
 * while the API server shows a mirror pod with another uid and the kubelet's in this annotation.
 */
export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

/** What the caches keep of a cluster-scoped object. */
export interface ObjectMeta {
  readonly name: string;
  readonly uid: string;
  readonly labels: Labels;
  readonly annotations: Labels;
}

export function objectMetaOf(object: KubeObject): ObjectMeta | undefined {
  const m = object.metadata;
  if (!m?.name) return undefined;
  return { name: m.name, uid: m.uid ?? '', labels: m.labels ?? {}, annotations: m.annotations ?? {} };
}

/**
 * Cluster-scoped objects of one kind by name, as a list fills it and watch events change it. A
 * deleted object is forgotten at once: nothing reads a Namespace or Node after it is gone.
 */
export class ObjectCache {
  private readonly byName = new Map<string, ObjectMeta>();
  /** Bumped on every change. */
  generation = 0;

  get size(): number {
    return this.byName.size;
  }

  get(name: string): ObjectMeta | undefined {
    return this.byName.get(name);
  }

  /** A complete list: these exist, nothing else. */
  replace(objects: readonly KubeObject[]): void {
    this.byName.clear();
    for (const o of objects) this.upsert(o);
    this.generation++;
  }

  upsert(object: KubeObject): void {
    const meta = objectMetaOf(object);
    if (meta === undefined) return;
    this.byName.set(meta.name, meta);
    this.generation++;
  }

  remove(object: KubeObject): void {
    const name = object.metadata?.name;
    if (name !== undefined && this.byName.delete(name)) this.generation++;
  }
}
