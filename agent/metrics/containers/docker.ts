import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../../shared/logger.ts';
import { readKernelFileSync } from '../procfs.ts';
import { cgroupPathOf } from './cgroup.ts';
import {
  type DockerApi,
  type DockerApiError,
  type DockerContainerSummary,
  type DockerInspect,
  dockerApi,
  filtersQuery,
} from './docker-api.ts';
import { type ContainerInfo, type ContainerSource, KUBE_LABELS } from './source.ts';

export interface DockerSourceOptions {
  readonly socketPath: string;
  readonly procRoot: string;
  readonly cgroupVersion: 1 | 2;
  /** Cap of the doubling delay between reconnects to the events stream. */
  readonly reconnectMax: number;
  readonly reconnectInitial?: number;
  readonly log: Logger;
}

/** Events that change what runs; the rest (exec_*, attach, health…) do not change identity or cgroup. */
const EVENTS = ['start', 'die', 'destroy', 'rename', 'restart'];

/** The container's labels and cgroup from one inspect; undefined if it is not running. */
export function containerInfoOf(
  inspect: DockerInspect,
  opts: { procRoot: string; cgroupVersion: 1 | 2 },
): ContainerInfo | undefined {
  if (!inspect.State.Running || inspect.State.Pid <= 0) return undefined;
  const pid = inspect.State.Pid;
  let cgroupPath: string | undefined;
  try {
    cgroupPath = cgroupPathOf(readKernelFileSync(opts.procRoot, String(pid), 'cgroup'), opts.cgroupVersion);
  } catch {
    // The process is gone already (the die event follows) or procfs is not the host's.
  }
  // dockerd's cgroupfs driver default; the systemd driver's path is only known from procfs.
  cgroupPath ??= `${inspect.HostConfig.CgroupParent || '/docker'}/${inspect.Id}`;
  const labels = inspect.Config.Labels ?? {};
  const started = Date.parse(inspect.State.StartedAt);
  const mode = inspect.HostConfig.NetworkMode ?? '';
  return {
    cgroupPath,
    pid,
    ownNetwork: !(mode === 'host' || mode.startsWith('container:')),
    ...(Number.isFinite(started) ? { startTime: started / 1000 } : {}),
    labels: {
      id: cgroupPath,
      name: inspect.Name.replace(/^\//, ''),
      image: inspect.Config.Image,
      container: labels[KUBE_LABELS.container] ?? '',
      pod: labels[KUBE_LABELS.pod] ?? '',
      namespace: labels[KUBE_LABELS.namespace] ?? '',
    },
  };
}

/**
 * Container identity from the Docker Engine API: one list + inspect per container at connect, then
 * the events stream keeps it current (an inspect per start or rename). Never the stats API — 1–2 s
 * per container here. When dockerd restarts the stream ends; we reconnect with backoff and list
 * again, since events missed meanwhile are lost.
 */
export function createDockerSource(opts: DockerSourceOptions): ContainerSource & {
  readonly connected: boolean;
  /** Resolves after the next successful full listing (tests, readiness). */
  synced(): Promise<void>;
} {
  const containers = new Map<string, ContainerInfo>();
  let view: readonly ContainerInfo[] = [];
  let connected = false;
  let waiters: (() => void)[] = [];
  let syncs = 0;
  const changed = () => {
    view = [...containers.values()];
  };

  const refresh = async (docker: DockerApi, id: string) => {
    let inspect: DockerInspect;
    try {
      inspect = await docker.json<DockerInspect>(`/containers/${encodeURIComponent(id)}/json`);
    } catch (err) {
      if ((err as Partial<DockerApiError>).statusCode === 404) {
        containers.delete(id);
        changed();
        return;
      }
      throw err;
    }
    const info = containerInfoOf(inspect, opts);
    if (info) containers.set(id, info);
    else containers.delete(id);
    changed();
  };

  const relist = async (docker: DockerApi) => {
    const running = await docker.json<DockerContainerSummary[]>('/containers/json');
    const ids = new Set(running.map((c) => c.Id));
    for (const id of containers.keys()) if (!ids.has(id)) containers.delete(id);
    // A few at a time: a node with hundreds of containers should not open hundreds of requests.
    const queue = [...ids];
    await Promise.all(
      Array.from({ length: Math.min(8, queue.length) }, async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) await refresh(docker, id);
      }),
    );
    changed();
  };

  const follow = async (docker: DockerApi, signal: AbortSignal) => {
    const stream = await docker.stream(
      `/events?${filtersQuery({ type: ['container'], event: EVENTS })}`,
      signal,
    );
    const onAbort = () => stream.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    // Events are applied one after another, behind the listing: an event that arrives while we
    // list waits, so a container removed meanwhile cannot be put back by a stale listing.
    let chain: Promise<void> = relist(docker).then(() => {
      connected = true;
      syncs++;
      for (const w of waiters) w();
      waiters = [];
      opts.log.info({ containers: containers.size }, 'docker: container list synced');
    });
    let failed: unknown;
    const apply = (task: () => Promise<void>) => {
      chain = chain.then(task).catch((err: unknown) => {
        failed ??= err;
        stream.destroy();
      });
    };
    apply(async () => {});
    let pending = '';
    try {
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (chunk: Buffer) => {
          pending += chunk.toString('utf8');
          let nl = pending.indexOf('\n');
          while (nl >= 0) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            nl = pending.indexOf('\n');
            if (line === '') continue;
            const event = JSON.parse(line) as { Action?: string; id?: string; Actor?: { ID?: string } };
            const id = event.Actor?.ID ?? event.id;
            if (!id) continue;
            if (event.Action === 'die' || event.Action === 'destroy') {
              apply(async () => {
                containers.delete(id);
                changed();
              });
            } else {
              apply(() => refresh(docker, id));
            }
          }
        });
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', reject);
      });
    } finally {
      signal.removeEventListener('abort', onAbort);
      connected = false;
    }
    await chain;
    if (failed) throw failed;
  };

  return {
    kind: 'docker',
    get connected() {
      return connected;
    },
    list: () => view,
    synced: () =>
      connected
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            waiters.push(resolve);
          }),
    async run(signal) {
      const docker = dockerApi(opts.socketPath);
      const initial = opts.reconnectInitial ?? 500;
      let delay = initial;
      while (!signal.aborted) {
        const before = syncs;
        try {
          await follow(docker, signal);
          if (!signal.aborted)
            opts.log.warn({ socket: opts.socketPath }, 'docker: events stream ended; reconnecting');
        } catch (err) {
          if (signal.aborted) break;
          opts.log.warn({ err, socket: opts.socketPath }, 'docker: cannot follow events; retrying');
        }
        // A stream that got as far as a listing was up: a restart, not a daemon that stays down.
        if (syncs > before) delay = initial;
        await sleep(delay, undefined, { signal }).catch(() => {});
        delay = Math.min(delay * 2, opts.reconnectMax);
      }
    },
  };
}
