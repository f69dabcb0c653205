import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../../shared/logger.ts';
import { type CgroupLayout, scanRoot } from './cgroup.ts';
import { type DockerContainerSummary, dockerApi, filtersQuery } from './docker-api.ts';
import { type ContainerInfo, type ContainerSource, KUBE_LABELS } from './source.ts';

export type SourceKind = 'docker' | 'cgroups';

export interface SourceChoice {
  readonly kind: SourceKind;
  /** Why, for the log. */
  readonly reason: string;
}

export interface DetectOptions {
  readonly dockerSocket: string;
  readonly layout: CgroupLayout;
  readonly timeoutMs?: number;
}

/** Whether the kubelet runs pods here: its kubepods cgroup (cgroupfs or systemd driver). */
export function hasKubeletCgroups(layout: CgroupLayout): boolean {
  const root = scanRoot(layout);
  return existsSync(join(root, 'kubepods')) || existsSync(join(root, 'kubepods.slice'));
}

/**
 * `source: auto`: Docker only when Docker is the runtime that runs this node's pods, not because
 * its socket exists — a containerd or CRI-O node often has a dockerd for image builds, or a stale
 * socket file. The pod source strips the runtime from the pods' container IDs (`docker://…`), so
 * the same fact is asked of Docker itself: it runs pod containers (the kubelet's
 * io.kubernetes.pod.* labels, which dockershim and cri-dockerd put on every one — the agent's own
 * pod among them) exactly when it is the node's runtime. A Docker that answers but runs no pods
 * is the runtime only where there is no kubelet (no kubepods cgroup): a plain Docker host. One
 * GET over node:http, no Docker client library loaded to decide.
 */
export async function chooseSource(opts: DetectOptions): Promise<SourceChoice> {
  if (!existsSync(opts.dockerSocket)) return { kind: 'cgroups', reason: 'no Docker socket' };
  let pods: DockerContainerSummary[];
  try {
    pods = await dockerApi(opts.dockerSocket).json<DockerContainerSummary[]>(
      `/containers/json?${filtersQuery({ label: [KUBE_LABELS.namespace] })}`,
      { timeoutMs: opts.timeoutMs ?? 5000 },
    );
  } catch (err) {
    // A stale socket, or Docker down: the kubelet's cgroups find the containers whatever the runtime.
    return { kind: 'cgroups', reason: `Docker does not answer (${(err as Error).message})` };
  }
  if (pods.length > 0)
    return { kind: 'docker', reason: `Docker runs the pods (${pods.length} pod containers)` };
  if (!hasKubeletCgroups(opts.layout))
    return {
      kind: 'docker',
      reason: 'Docker answers and there is no kubelet (no kubepods cgroup): a Docker host',
    };
  return { kind: 'cgroups', reason: 'Docker runs no pod containers: another runtime runs the pods' };
}

export interface AutoSourceOptions extends DetectOptions {
  readonly create: (kind: SourceKind) => ContainerSource;
  readonly log: Logger;
  /** Tests. */
  readonly choose?: (opts: DetectOptions) => Promise<SourceChoice>;
}

export interface AutoSource extends ContainerSource {
  /** Resolves with the kind chosen once `run` has chosen it. */
  decided(): Promise<SourceKind>;
}

/** A source that chooses Docker or the kubelet's cgroups when it starts running, then is that one. */
export function createAutoSource(opts: AutoSourceOptions): AutoSource {
  let chosen: ContainerSource | undefined;
  let resolveDecided: (kind: SourceKind) => void = () => {};
  const decided = new Promise<SourceKind>((resolve) => {
    resolveDecided = resolve;
  });
  const none: readonly ContainerInfo[] = [];
  return {
    get kind() {
      return chosen?.kind ?? 'auto';
    },
    list: () => chosen?.list() ?? none,
    decided: () => decided,
    async run(signal) {
      if (!chosen) {
        const choice = await (opts.choose ?? chooseSource)(opts);
        opts.log.info({ source: choice.kind, reason: choice.reason }, 'containers: source chosen');
        chosen = opts.create(choice.kind);
        resolveDecided(choice.kind);
      }
      await chosen.run(signal);
    },
  };
}
