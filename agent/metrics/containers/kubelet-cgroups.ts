import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type CgroupLayout, scanRoot } from './cgroup.ts';
import type { ContainerInfo, ContainerSource, PodLookup } from './source.ts';

/**
 * A pod's cgroup, in either kubelet cgroup driver:
 *   cgroupfs: kubepods[/burstable|/besteffort]/pod<uid>
 *   systemd:  kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid with _>.slice
 */
const POD_DIR =
  /^(?:kubepods(?:-[a-z]+)?-)?pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/;
/** A container's cgroup inside its pod's: a bare ID (cgroupfs) or <runtime>-<id>.scope (systemd). */
const CONTAINER_DIR = /^(?:(?:cri-containerd|crio|docker)-)?([0-9a-f]{64})(?:\.scope)?$/;
const QOS_DIR = /^kubepods(?:[-.](?:burstable|besteffort))?(?:\.slice)?$|^(?:burstable|besteffort)$/;

export interface KubeletCgroup {
  readonly cgroupPath: string;
  readonly podUid: string;
  readonly containerId: string;
}

const dirs = (path: string): string[] => {
  try {
    return readdirSync(path, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
};

/** Every container cgroup of the kubelet's layout under `root` (one hierarchy's mount point). */
export function scanKubeletCgroups(root: string): KubeletCgroup[] {
  const found: KubeletCgroup[] = [];
  const walk = (rel: string, depth: number) => {
    for (const name of dirs(join(root, rel))) {
      const path = `${rel}/${name}`;
      const pod = POD_DIR.exec(name);
      if (pod) {
        const podUid = pod[1]!.replaceAll('_', '-');
        for (const child of dirs(join(root, path))) {
          const container = CONTAINER_DIR.exec(child);
          if (container) found.push({ cgroupPath: `${path}/${child}`, podUid, containerId: container[1]! });
        }
      } else if (depth < 2 && QOS_DIR.test(name)) {
        walk(path, depth + 1);
      }
    }
  };
  walk('', 0);
  return found;
}

export interface CgroupSourceOptions {
  readonly layout: CgroupLayout;
  /** Pod names for container IDs (the kubelet's /pods); without it pod/namespace/container stay empty. */
  readonly pods?: PodLookup;
  readonly clock?: () => number;
}

/**
 * Containers found by the kubelet's cgroup layout, for runtimes without a Docker socket
 * (containerd, CRI-O). The cgroup tree is walked at each scrape — a handful of readdirs — so a
 * container appears with its first scrape and its series go with its cgroup.
 */
export function createCgroupSource(opts: CgroupSourceOptions): ContainerSource {
  const root = scanRoot(opts.layout);
  // Identity of a cgroup does not change; pod metadata may arrive later, so unnamed ones are
  // looked up again (a map lookup in the pod cache) until they have a container name.
  const known = new Map<string, ContainerInfo>();
  const infoOf = (cg: KubeletCgroup): ContainerInfo => {
    const cached = known.get(cg.cgroupPath);
    if (cached && (cached.labels.container !== '' || !opts.pods)) return cached;
    const meta = opts.pods?.container(cg.podUid, cg.containerId);
    // Same labels as last time: keep the object, so its rendered label text is reused.
    if (
      cached &&
      meta?.pod === cached.labels.pod &&
      meta?.container === cached.labels.container &&
      meta?.image === cached.labels.image
    )
      return cached;
    let startTime: number | undefined;
    try {
      // cgroupfs may not record a birth time; a cgroup dir's ctime is its creation in practice.
      const st = statSync(join(root, cg.cgroupPath));
      startTime = (st.birthtimeMs || st.ctimeMs) / 1000;
    } catch {
      // Gone meanwhile; the collector skips it.
    }
    const info: ContainerInfo = {
      cgroupPath: cg.cgroupPath,
      containerId: cg.containerId,
      ...(startTime ? { startTime } : {}),
      labels: {
        id: cg.cgroupPath,
        name: cg.containerId,
        image: meta?.image ?? '',
        container: meta?.container ?? '',
        pod: meta?.pod ?? '',
        namespace: meta?.namespace ?? '',
      },
    };
    known.set(cg.cgroupPath, info);
    return info;
  };
  return {
    kind: 'cgroups',
    list() {
      const current = scanKubeletCgroups(root);
      const paths = new Set(current.map((c) => c.cgroupPath));
      for (const path of known.keys()) if (!paths.has(path)) known.delete(path);
      return current.map(infoOf);
    },
    async run(signal) {
      if (signal.aborted) return;
      await new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    },
  };
}

/**
 * The pod cgroups above the containers, as the kubelet's /metrics/cadvisor also exposes them: the
 * pod's own cgroup (id=…/pod<uid>, container="", name="", image="", pod and namespace set — the
 * kubelet names it from its pod list). Its numbers include every container of the pod and the
 * pause container, which is why the kubernetes-mixin filters `container!=""` where it sums
 * containers and reads these where it wants a pod's total. Found for either source: a container
 * cgroup whose parent is a kubelet pod cgroup (containerd and CRI-O, or Docker with the kubepods
 * cgroup parent). No network series: cAdvisor reports none for a pod cgroup (the pause container
 * holds the pod's netns). Info objects are kept while their labels stay, so label text is reused.
 */
export function createPodCgroups(root: string): (list: readonly ContainerInfo[]) => ContainerInfo[] {
  let known = new Map<string, ContainerInfo>();
  return (list) => {
    const found = new Map<string, ContainerInfo>();
    for (const info of list) {
      const slash = info.cgroupPath.lastIndexOf('/');
      if (slash <= 0) continue;
      const parent = info.cgroupPath.slice(0, slash);
      if (!POD_DIR.test(parent.slice(parent.lastIndexOf('/') + 1))) continue;
      const named = found.get(parent);
      if (named && named.labels.pod !== '') continue;
      const { pod, namespace } = info.labels;
      const cached = known.get(parent);
      if (cached && cached.labels.pod === pod && cached.labels.namespace === namespace) {
        found.set(parent, cached);
        continue;
      }
      if (named && pod === '') continue;
      let startTime: number | undefined;
      try {
        const st = statSync(join(root, parent));
        startTime = (st.birthtimeMs || st.ctimeMs) / 1000;
      } catch {
        continue; // gone meanwhile
      }
      found.set(parent, {
        cgroupPath: parent,
        ownNetwork: false,
        startTime,
        labels: { id: parent, name: '', image: '', container: '', pod, namespace },
      });
    }
    known = found;
    return [...list, ...found.values()];
  };
}
