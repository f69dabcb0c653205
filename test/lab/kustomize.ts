import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * `kubectl kustomize <dir>` for what deploy/kustomization.yaml uses — resources, namespace,
 * configMapGenerator and secretGenerator (files=, literals; a content-hash name suffix that every
 * reference in a pod template follows) and images — so the node lab renders the manifests on a
 * machine without kubectl (Debian has no kubectl package). Anything else in a kustomization is
 * refused by name, so a new feature of deploy/ cannot be silently ignored. An overlay is given as
 * data: generator files replaced by content (a ConfigMap's `behavior: replace`), images set.
 */

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

export interface Overlay {
  /** Generator sources replaced by this content: `<generator name>` → { key: content }. */
  generatorFiles?: Record<string, Record<string, string>>;
  /** Secrets besides the kustomization's, as `kubectl create secret generic` makes them (no hash). */
  secrets?: Record<string, Record<string, string>>;
  /** `images:` entries applied after the kustomization's own. */
  images?: { name: string; newName?: string; newTag?: string }[];
}

interface Generator {
  name: string;
  files?: string[];
  literals?: string[];
  behavior?: string;
  options?: { disableNameSuffixHash?: boolean };
}

interface Kustomization {
  resources?: string[];
  namespace?: string;
  configMapGenerator?: Generator[];
  secretGenerator?: (Generator & { type?: string })[];
  images?: { name: string; newName?: string; newTag?: string }[];
}

const KNOWN = new Set([
  'apiVersion',
  'kind',
  'resources',
  'namespace',
  'configMapGenerator',
  'secretGenerator',
  'images',
]);
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PriorityClass']);

export async function renderKustomization(dir: string, overlay: Overlay = {}): Promise<K8sObject[]> {
  const k = parseOne(await readFile(join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  const unknown = Object.keys(k).filter((key) => !KNOWN.has(key));
  if (unknown.length > 0)
    throw new Error(`kustomize (lab): ${dir}/kustomization.yaml uses ${unknown.join(', ')}`);

  const objects: K8sObject[] = [];
  for (const r of k.resources ?? []) {
    // YAML 1.1 as kubectl reads it (sigs.k8s.io/yaml): `defaultMode: 0400` is octal there, 400 in 1.2.
    for (const doc of parseAllDocuments(await readFile(join(dir, r), 'utf8'), { version: '1.1' })) {
      if (doc.errors.length > 0) throw new Error(`${r}: ${doc.errors[0]!.message}`);
      const o = doc.toJS() as K8sObject | null;
      if (o) objects.push(o);
    }
  }
  const renamed = new Map<string, string>(); // `<kind>/<name>` → hashed name
  const generate = async (kind: 'ConfigMap' | 'Secret', g: Generator, extra?: Record<string, string>) => {
    const data: Record<string, string> = {};
    const replaced = overlay.generatorFiles?.[g.name];
    for (const f of g.files ?? []) {
      const [key, path] = f.includes('=') ? (f.split('=', 2) as [string, string]) : [basename(f), f];
      data[key] = replaced?.[key] ?? (await readFile(join(dir, path), 'utf8'));
    }
    for (const l of g.literals ?? []) {
      const i = l.indexOf('=');
      data[l.slice(0, i)] = l.slice(i + 1);
    }
    Object.assign(data, extra);
    const o: K8sObject = { apiVersion: 'v1', kind, metadata: { name: g.name } };
    if (kind === 'ConfigMap') o['data'] = data;
    else {
      o['type'] = 'Opaque';
      o['data'] = Object.fromEntries(
        Object.entries(data).map(([key, v]) => [key, Buffer.from(v).toString('base64')]),
      );
    }
    if (!g.options?.disableNameSuffixHash) {
      // kustomize hashes the object's content; any stable content hash renames it the same way:
      // new content, new name, so the pod template changes and the DaemonSet rolls.
      const hash = createHash('sha256').update(JSON.stringify(o)).digest('hex').slice(0, 10);
      o.metadata.name = `${g.name}-${hash}`;
      renamed.set(`${kind}/${g.name}`, o.metadata.name);
    }
    objects.push(o);
  };
  for (const g of k.configMapGenerator ?? []) await generate('ConfigMap', g);
  for (const g of k.secretGenerator ?? []) await generate('Secret', g);
  for (const [name, data] of Object.entries(overlay.secrets ?? {}))
    await generate('Secret', { name, options: { disableNameSuffixHash: true } }, data);

  for (const o of objects) {
    if (k.namespace && !CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
    if (k.namespace && o.kind === 'ClusterRoleBinding')
      for (const s of (o['subjects'] as { kind: string; namespace?: string }[] | undefined) ?? [])
        if (s.kind === 'ServiceAccount') s.namespace = k.namespace;
    const spec = podSpecOf(o);
    if (spec) {
      renameReferences(spec, renamed);
      setImages(spec, [...(k.images ?? []), ...(overlay.images ?? [])]);
    }
  }
  return objects;
}

/** The pod template's spec of a workload object. */
export function podSpecOf(o: K8sObject): PodSpecLike | undefined {
  const spec = o['spec'] as { template?: { spec?: PodSpecLike } } | undefined;
  return spec?.template?.spec;
}

interface ContainerLike {
  image?: string;
  env?: { valueFrom?: { configMapKeyRef?: { name: string }; secretKeyRef?: { name: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
}

interface PodSpecLike {
  containers?: ContainerLike[];
  initContainers?: ContainerLike[];
  volumes?: { configMap?: { name: string }; secret?: { secretName: string } }[];
}

function renameReferences(spec: PodSpecLike, renamed: Map<string, string>): void {
  const cm = (ref?: { name: string }) => {
    if (ref) ref.name = renamed.get(`ConfigMap/${ref.name}`) ?? ref.name;
  };
  const secret = (ref?: { name: string }) => {
    if (ref) ref.name = renamed.get(`Secret/${ref.name}`) ?? ref.name;
  };
  for (const v of spec.volumes ?? []) {
    cm(v.configMap);
    if (v.secret) v.secret.secretName = renamed.get(`Secret/${v.secret.secretName}`) ?? v.secret.secretName;
  }
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    for (const e of c.env ?? []) {
      cm(e.valueFrom?.configMapKeyRef);
      secret(e.valueFrom?.secretKeyRef);
    }
    for (const e of c.envFrom ?? []) {
      cm(e.configMapRef);
      secret(e.secretRef);
    }
  }
}

function setImages(spec: PodSpecLike, images: { name: string; newName?: string; newTag?: string }[]): void {
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    for (const i of images) {
      const image = c.image ?? '';
      const at = image.lastIndexOf(':');
      const name = at > image.lastIndexOf('/') ? image.slice(0, at) : image;
      const tag = at > image.lastIndexOf('/') ? image.slice(at + 1) : 'latest';
      if (name !== i.name) continue;
      c.image = `${i.newName ?? name}:${i.newTag ?? tag}`;
    }
  }
}

function parseOne(text: string): unknown {
  const docs = parseAllDocuments(text);
  if (docs.length !== 1 || docs[0]!.errors.length > 0)
    throw new Error('kustomization.yaml: one YAML document expected');
  return docs[0]!.toJS();
}
