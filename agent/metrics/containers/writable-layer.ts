import { existsSync, readFileSync } from 'node:fs';
import { statfs as fsStatfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../shared/logger.ts';
import { type Mount, parseMounts } from '../collectors/filesystem.ts';
import { type CriClient, criClient, type WritableLayerStats } from './cri.ts';

/**
 * container_fs_usage_bytes and container_fs_limit_bytes on containerd and CRI-O nodes, as the
 * kubelet gets them there: the writable layer's usage from the runtime's CRI ListContainerStats,
 * the limit being the capacity of the filesystem the layers are on (cAdvisor's "limit" of a
 * container filesystem is its device's size), the device that filesystem's source.
 *
 * Why the CRI rather than a walk of our own: the usage of a writable layer is the size of every
 * file in its upper dir — `du`, which cAdvisor runs per container in the background (a Node walk
 * measured 4.3–11 µs per entry here: 0.4–1.1 s of CPU per refresh for a container with 100k
 * files). statfs of the container's rootfs mount gives the size of the whole filesystem
 * underneath, not the layer's. containerd (its snapshot syncer, every 10 s) and CRI-O already
 * measure every layer for the kubelet's eviction manager: one ListContainerStats reads those
 * numbers for all containers. The call is made at most every `intervalMs`, from a scrape, never
 * while the agent is idle; the runtime also gathers each container's CPU and memory for the
 * answer (a call to each shim), which is why the interval is not one scrape.
 */

export interface WritableLayerUsage {
  /** The filesystem's device (its mount source), cAdvisor's `device` label. */
  readonly device: string;
  readonly usageBytes: number;
  /** Capacity of that filesystem; undefined when statfs failed. */
  readonly limitBytes: number | undefined;
}

export interface WritableLayers {
  /** A container's layer from the runtime's last answer; undefined when it has not reported it. */
  get(containerId: string): WritableLayerUsage | undefined;
  /**
   * Asks the runtime again when its last answer is `intervalMs` old (in the background; the
   * first time the caller waits for the answer, up to `firstWaitMs`).
   */
  refresh(nowMs: number): Promise<void>;
  close(): void;
}

export interface WritableLayerOptions {
  /** Candidate CRI sockets; the first that exists is dialled (checked again at each refresh). */
  readonly sockets: readonly string[];
  readonly procRoot: string;
  /** Where the host's / is: statfs goes to hostRoot + the runtime's (host) path. */
  readonly hostRoot: string;
  readonly intervalMs: number;
  readonly timeoutMs?: number;
  readonly firstWaitMs?: number;
  readonly log: Logger;
  /** Tests. */
  readonly client?: (socket: string) => CriClient;
  readonly statfs?: (path: string) => Promise<{ blocks: number; bsize: number }>;
}

/** The mount whose mount point is the longest prefix of `path` (the filesystem `path` is on). */
export function mountOf(path: string, mounts: readonly Mount[]): Mount | undefined {
  let best: Mount | undefined;
  for (const m of mounts) {
    const p = m.mountPoint;
    const under = p === '/' || path === p || path.startsWith(`${p}/`);
    // The later of two mounts on one point is the one on top.
    if (under && (best === undefined || p.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

export function createWritableLayers(opts: WritableLayerOptions): WritableLayers {
  const hostRoot = opts.hostRoot.replace(/\/+$/, '') || '/';
  const statfs = opts.statfs ?? ((path: string) => fsStatfs(path));
  const makeClient = opts.client ?? criClient;
  let client: { socket: string; cri: CriClient } | undefined;
  let layers = new Map<string, WritableLayerUsage>();
  let askedAt = Number.NEGATIVE_INFINITY;
  let inFlight: Promise<void> | undefined;
  let answered = false;
  let failing = false;

  const mounts = (): Mount[] => {
    let text: string;
    try {
      text = readFileSync(join(opts.procRoot, '1/mounts'), 'latin1');
    } catch {
      text = readFileSync(join(opts.procRoot, 'self/mounts'), 'latin1');
    }
    // Mount points as the host names them (the agent's own table lists the host's under hostRoot).
    return parseMounts(text).map((m) =>
      hostRoot !== '/' && m.mountPoint.startsWith(`${hostRoot}/`)
        ? { ...m, mountPoint: m.mountPoint.slice(hostRoot.length) }
        : m,
    );
  };

  /** Device and capacity per layer directory (one or two per node), found again at each answer. */
  const filesystems = async (stats: readonly WritableLayerStats[]) => {
    const out = new Map<string, { device: string; limit: number | undefined }>();
    if (stats.length === 0) return out;
    const table = mounts();
    for (const dir of new Set(stats.map((s) => s.mountpoint))) {
      // A runtime that does not say where its layers are: usage without a device or a limit.
      if (dir === '') {
        out.set(dir, { device: '', limit: undefined });
        continue;
      }
      const device = mountOf(dir, table)?.device ?? '';
      let limit: number | undefined;
      try {
        const s = await statfs(hostRoot === '/' ? dir : join(hostRoot, dir));
        limit = s.blocks * s.bsize;
      } catch {
        limit = undefined;
      }
      out.set(dir, { device, limit });
    }
    return out;
  };

  const ask = async () => {
    const socket = opts.sockets.find((s) => existsSync(s));
    if (client && client.socket !== socket) {
      client.cri.close();
      client = undefined;
    }
    if (socket === undefined) {
      layers = new Map();
      return;
    }
    client ??= { socket, cri: makeClient(socket) };
    try {
      const stats = await client.cri.listContainerStats(opts.timeoutMs ?? 10_000);
      const fs = await filesystems(stats);
      const next = new Map<string, WritableLayerUsage>();
      for (const s of stats) {
        // Not measured yet (containerd reports 0 bytes until its syncer has passed): no series
        // rather than a false 0.
        if (s.usedBytes === undefined || s.timestampNs === 0) continue;
        const f = fs.get(s.mountpoint);
        next.set(s.containerId, { device: f?.device ?? '', usageBytes: s.usedBytes, limitBytes: f?.limit });
      }
      layers = next;
      if (failing) opts.log.info({ socket }, 'CRI: container stats answered again');
      failing = false;
    } catch (err) {
      // Stale numbers are worse than none: the series go until the runtime answers.
      layers = new Map();
      if (!failing)
        opts.log.warn({ err, socket }, 'CRI: no container stats (container_fs_usage_bytes left out)');
      failing = true;
      client?.cri.close();
      client = undefined;
    } finally {
      answered = true;
    }
  };

  return {
    get: (id) => layers.get(id),
    async refresh(nowMs) {
      if (!inFlight && nowMs - askedAt >= opts.intervalMs) {
        askedAt = nowMs;
        inFlight = ask().finally(() => {
          inFlight = undefined;
        });
      }
      if (answered || !inFlight) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        inFlight,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, opts.firstWaitMs ?? 2000);
        }),
      ]);
      clearTimeout(timer);
    },
    close() {
      client?.cri.close();
      client = undefined;
    },
  };
}
