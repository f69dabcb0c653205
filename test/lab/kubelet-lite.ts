import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { V1ContainerStatus, V1Pod, V1PodList } from '../../shared/pods/pod.ts';
import { v1Pod } from '../support/pods/fake-kubelet.ts';
import type { Containerd } from './containerd.ts';
import { networkCondition, runtimeSpecOf } from './containerd.ts';
import { removeCgroupSoon } from './cri/cgroups.ts';
import type {
  ContainerConfig,
  ContainerStatus,
  CriClient,
  PodSandbox,
  PodSandboxConfig,
  Protocol,
} from './cri/client.ts';
import type { Lab } from './scope.ts';
import { messageOf } from './scope.ts';
import { tempDir } from './tmp.ts';

/**
 * Kubelet-lite: the kubelet's part towards a real CRI runtime, for end-to-end tests on one node.
 * It runs pods through containerd's RuntimeService (sandbox, then containers; no sandbox while the
 * runtime reports NetworkReady false, as the kubelet's pod workers wait then), lays out their logs
 * as the kubelet does (/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log and the
 * /var/log/containers/<pod>_<ns>_<container>-<id>.log symlinks, under a log root of its own),
 * rotates them as the kubelet's container log manager does, removes the pod cgroups containerd
 * leaves, and serves its pods on `GET /pods` (plain HTTP on 127.0.0.1, bearer token) in the shape
 * of the kubelet's /pods, for the agent's pod source.
 */

export type QosClass = 'besteffort' | 'burstable' | 'guaranteed';

export interface LiteContainerSpec {
  name: string;
  /** Default: the lab's workload image (the log writer; configure it with env). */
  image?: string;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
}

export interface LitePodSpec {
  /** Default: from the owner (`<deploy>-<hash>-<5 chars>`, `<sts>-0`) or `pod-<random>`. */
  name?: string;
  namespace?: string;
  uid?: string;
  /** Sandbox attempt number (metadata.attempt). */
  attempt?: number;
  labels?: Record<string, string>;
  /** Passed to the runtime in PodSandboxConfig.annotations (so to CNI as pod annotations). */
  annotations?: Record<string, string>;
  /**
   * The controller. A Deployment becomes ReplicaSet `<name>-<pod-template-hash>` with that label
   * on the pod, as the Deployment controller does.
   */
  owner?: { kind: 'Deployment' | 'ReplicaSet' | 'StatefulSet' | 'DaemonSet' | 'Job'; name: string };
  /** Default besteffort: cgroup parent /kubepods/besteffort/pod<uid>. */
  qos?: QosClass;
  hostname?: string;
  portMappings?: { containerPort: number; hostPort: number; protocol?: Protocol; hostIp?: string }[];
  containers: LiteContainerSpec[];
}

export interface LiteContainer {
  readonly name: string;
  readonly id: string;
  readonly image: string;
  /** <logDir>/<name>/0.log */
  readonly logPath: string;
  /** <logRoot>/containers/<pod>_<ns>_<name>-<id>.log → logPath */
  readonly symlink: string;
}

export type LitePodPhase = 'Pending' | 'Running' | 'Stopped';

export interface LitePod {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly logDir: string;
  readonly cgroupParent: string;
  readonly sandboxConfig: PodSandboxConfig;
  phase: LitePodPhase;
  sandboxId: string;
  /** PodSandboxStatus.network.ip */
  ip: string;
  /** The pod's network namespace (from the verbose sandbox status). */
  netns: string | undefined;
  /** RunPodSandbox calls made, the failed ones included. */
  sandboxAttempts: number;
  /** The errors of the failed RunPodSandbox calls. */
  sandboxErrors: string[];
  /** The errors of the failed StopPodSandbox calls (retried). */
  teardownErrors: string[];
  readonly containers: LiteContainer[];
  /** The v1 Pod /pods serves. */
  readonly v1: V1Pod;
}

export interface LogRotationPolicy {
  /** containerLogMaxSize: a 0.log at or above this many bytes is rotated. */
  maxSize: number;
  /** containerLogMaxFiles: the live log plus rotated ones (at least 2). */
  maxFiles: number;
}

export interface KubeletLiteOptions {
  lab: Lab;
  containerd: Containerd;
  nodeName?: string;
  /** Default: 10 MiB, 5 files (the kubelet's defaults). */
  rotation?: Partial<LogRotationPolicy>;
  /**
   * The node's /var/log: where the runtime writes the pods' logs and the symlinks point, as the
   * runtime and pods see it (`nodeLogRoot`, e.g. /var/log on a node with a mount namespace of its
   * own, see ContainerdOptions.nodeFs) and as this process reaches it (`logRoot`). Default: a
   * temp dir seen the same by both.
   */
  logRoot?: { test: string; node: string };
  /**
   * A failed RunPodSandbox is retried as the kubelet's pod workers do on their next sync (a CNI
   * "try again later", code 11, reaches the kubelet only as the runtime's error text).
   * Default: 5 attempts, 300 ms apart.
   */
  sandboxRetry?: { attempts?: number; delayMs?: number; retryIf?: (err: Error) => boolean };
}

export interface RotatedLog {
  containerId: string;
  /** The 0.log that was renamed, and its new name. */
  log: string;
  rotated: string;
}

export interface KubeletLite {
  /** http://127.0.0.1:<port>/pods */
  readonly url: string;
  readonly tokenFile: string;
  readonly nodeName: string;
  /** Holds pods/ and containers/, the /var/log of this node (as this process reaches it). */
  readonly logRoot: string;
  /** The same as the runtime and pods see it. */
  readonly nodeLogRoot: string;
  readonly podLogRoot: string;
  readonly containerLogRoot: string;
  readonly pods: ReadonlyMap<string, LitePod>;
  /** The `pods` config section for the agent (source kubelet, url, token file), plus `extra`. */
  podsConfig(extra?: Record<string, unknown>): {
    source: 'kubelet';
    kubelet: { url: string; tokenFile: string } & Record<string, unknown>;
  };
  runPod(spec: LitePodSpec): Promise<LitePod>;
  /** StopContainer (grace seconds) for each container, then StopPodSandbox (CNI DEL). */
  stopPod(pod: LitePod, graceSeconds?: number): Promise<void>;
  /**
   * stopPod, RemoveContainer, RemovePodSandbox (CNI DEL again, empty netns), then the pod cgroup
   * in every hierarchy, its log symlinks and (unless keepLogs) its log directory; /pods drops it.
   */
  removePod(pod: LitePod, opts?: { keepLogs?: boolean }): Promise<void>;
  /** One pass of the kubelet's container log manager over the running containers. */
  rotateLogs(): Promise<RotatedLog[]>;
  /** Runs rotateLogs every intervalMs (the kubelet: 10 s) until stopRotation or close. */
  startRotation(intervalMs: number): void;
  stopRotation(): void;
  /** Errors of timer-driven rotation passes. */
  readonly rotationErrors: readonly Error[];
  /** The PodList /pods serves now. */
  podList(): V1PodList;
  /** Removes the pods still running, stops the server; idempotent (the lab calls it). */
  close(): Promise<void>;
}

/** runPod failed (after its retries); the pod, already removed, tells how far it got. */
export class RunPodError extends Error {
  readonly pod: LitePod;
  constructor(pod: LitePod, cause: unknown) {
    super(`pod ${pod.namespace}/${pod.name}: ${messageOf(cause)}`, { cause });
    this.name = 'RunPodError';
    this.pod = pod;
  }
}

/** What `/var/log/containers` holds for a container: the kubelet's name, cut to 255 bytes. */
export function containerLogSymlink(
  containerLogRoot: string,
  pod: string,
  namespace: string,
  container: string,
  containerId: string,
): string {
  const suffix = '.log';
  let name = Buffer.from(`${pod}_${namespace}_${container}-${containerId}`);
  // ext4 allows 255 bytes per file name.
  if (name.length > 255 - suffix.length) name = name.subarray(0, 255 - suffix.length);
  return join(containerLogRoot, `${name.toString()}${suffix}`);
}

/** The cgroupfs parent the kubelet gives a pod of a QoS class. */
export function podCgroupParent(qos: QosClass, uid: string): string {
  return qos === 'guaranteed' ? `/kubepods/pod${uid}` : `/kubepods/${qos}/pod${uid}`;
}

/** The kubelet's rotated-log suffix: local time, 20060102-150405. */
export function rotationTimestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

const HASH_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const randomName = (n: number) =>
  Array.from(randomBytes(n), (b) => HASH_ALPHABET[b % HASH_ALPHABET.length]).join('');

export async function startKubeletLite(opts: KubeletLiteOptions): Promise<KubeletLite> {
  const { lab, containerd } = opts;
  const cri = containerd.cri;
  const nodeName = opts.nodeName ?? 'lab-node';
  const dir = await tempDir('kubelet', lab);
  const logRoot = opts.logRoot?.test ?? join(dir, 'log');
  const nodeLogRoot = opts.logRoot?.node ?? logRoot;
  // A path as the runtime reports it (its log_path), as this process reaches it.
  const testPath = (path: string) =>
    path.startsWith(`${nodeLogRoot}/`) ? logRoot + path.slice(nodeLogRoot.length) : path;
  const podLogRoot = join(logRoot, 'pods');
  const containerLogRoot = join(logRoot, 'containers');
  await mkdir(podLogRoot, { recursive: true });
  await mkdir(containerLogRoot, { recursive: true });
  const token = randomBytes(16).toString('hex');
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${token}\n`);
  const policy: LogRotationPolicy = { maxSize: 10 * 1024 * 1024, maxFiles: 5, ...opts.rotation };
  const retry = { attempts: 5, delayMs: 300, retryIf: () => true, ...opts.sandboxRetry };
  const pods = new Map<string, LitePod>();
  const rotationErrors: Error[] = [];

  const podList = (): V1PodList & { metadata: object } => ({
    kind: 'PodList',
    apiVersion: 'v1',
    metadata: {},
    items: [...pods.values()].map((p) => p.v1),
  });

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' || req.url !== '/pods') {
      res.writeHead(404).end();
      return;
    }
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('Unauthorized');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(podList()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/pods`;

  const runPod = async (spec: LitePodSpec): Promise<LitePod> => {
    const pod = newPod(spec, { nodeName, podLogRoot, nodeLogRoot });
    pods.set(pod.uid, pod);
    try {
      await mkdir(pod.logDir, { recursive: true });
      containerd.cgroups.track(pod.cgroupParent);
      pod.sandboxId = await runSandbox(cri, pod, retry);
      const status = await cri.call('PodSandboxStatus', { pod_sandbox_id: pod.sandboxId, verbose: true });
      pod.ip = status.status.network?.ip ?? '';
      pod.netns = runtimeSpecOf(status.info).netns;
      if (pod.netns) containerd.trackNetns(pod.netns);
      const image = (c: LiteContainerSpec) => c.image ?? containerd.workloadImage;
      for (const c of spec.containers) {
        const config = containerConfig(pod, c, image(c));
        const { container_id: id } = await cri.call('CreateContainer', {
          pod_sandbox_id: pod.sandboxId,
          config,
          sandbox_config: pod.sandboxConfig,
        });
        await cri.call('StartContainer', { container_id: id });
        const logPath = join(pod.logDir, config.log_path!);
        const link = containerLogSymlink(containerLogRoot, pod.name, pod.namespace, c.name, id);
        // As the kubelet: only when the runtime made the log file. The link names the node's path.
        if (existsSync(logPath))
          await symlink(join(pod.sandboxConfig.log_directory!, config.log_path!), link);
        pod.containers.push({ name: c.name, id, image: image(c), logPath, symlink: link });
      }
      pod.phase = 'Running';
      await refreshStatus(cri, pod);
      return pod;
    } catch (err) {
      // Leave nothing half-made behind: the caller has no pod to remove.
      await removePod(pod).catch(() => {});
      throw new RunPodError(pod, err);
    }
  };

  // The kubelet retries a failed teardown on its next syncs (the pod stays Terminating): while no
  // conflist is loaded, containerd cannot run the CNI DEL ("cni plugin not initialized").
  const teardown = async (pod: LitePod, step: () => Promise<unknown>): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await step();
        return;
      } catch (err) {
        // Gone already (an earlier, half-done removal): nothing to do.
        if ((err as { code?: number }).code === 5) return;
        pod.teardownErrors.push(messageOf(err));
        if (attempt >= retry.attempts || !retry.retryIf(err as Error)) throw err;
        await new Promise((r) => setTimeout(r, retry.delayMs));
      }
    }
  };

  const stopPod = async (pod: LitePod, graceSeconds = 2): Promise<void> => {
    await Promise.all(
      pod.containers.map((c) =>
        teardown(pod, () => cri.call('StopContainer', { container_id: c.id, timeout: graceSeconds })),
      ),
    );
    if (pod.sandboxId)
      await teardown(pod, () => cri.call('StopPodSandbox', { pod_sandbox_id: pod.sandboxId }));
    if (pod.phase === 'Running') pod.phase = 'Stopped';
  };

  const removePod = async (pod: LitePod, removeOpts: { keepLogs?: boolean } = {}): Promise<void> => {
    await stopPod(pod, 0);
    for (const c of pod.containers)
      await teardown(pod, () => cri.call('RemoveContainer', { container_id: c.id }));
    if (pod.sandboxId)
      await teardown(pod, () => cri.call('RemovePodSandbox', { pod_sandbox_id: pod.sandboxId }));
    // Sandboxes of failed attempts the runtime could not clean up then (see runSandbox).
    for (const o of await podSandboxes(cri, pod.uid)) await teardown(pod, () => removeSandbox(cri, o.id));
    const left = await removeCgroupSoon(pod.cgroupParent);
    await Promise.all(pod.containers.map((c) => rm(c.symlink, { force: true })));
    if (!removeOpts.keepLogs) await rm(pod.logDir, { recursive: true, force: true });
    pods.delete(pod.uid);
    if (left.length > 0) throw new Error(`pod ${pod.name}: cgroups still in use: ${left.join(', ')}`);
  };

  let rotating: Promise<RotatedLog[]> | undefined;
  const rotateLogs = () => {
    // One pass at a time, as the kubelet's mutex does.
    rotating ??= rotationPass(cri, policy, testPath).finally(() => {
      rotating = undefined;
    });
    return rotating;
  };
  let timer: NodeJS.Timeout | undefined;
  const stopRotation = () => {
    clearInterval(timer);
    timer = undefined;
  };

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      stopRotation();
      await rotating?.catch(() => {});
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      const errors: string[] = [];
      for (const pod of [...pods.values()]) {
        await removePod(pod).catch((err: unknown) => errors.push(messageOf(err)));
      }
      if (errors.length > 0) throw new Error(`kubelet-lite: pods not removed: ${errors.join('; ')}`);
    })();
    return closing;
  };
  lab.defer('kubelet-lite', close);

  return {
    url,
    tokenFile,
    nodeName,
    logRoot,
    nodeLogRoot,
    podLogRoot,
    containerLogRoot,
    pods,
    podsConfig: (extra = {}) => ({ source: 'kubelet', kubelet: { url, tokenFile, ...extra } }),
    runPod,
    stopPod,
    removePod,
    rotateLogs,
    startRotation: (intervalMs) => {
      stopRotation();
      timer = setInterval(() => {
        rotateLogs().catch((err: unknown) => rotationErrors.push(err as Error));
      }, intervalMs);
      timer.unref();
    },
    stopRotation,
    rotationErrors,
    podList,
    close,
  };
}

function newPod(
  spec: LitePodSpec,
  ctx: { nodeName: string; podLogRoot: string; nodeLogRoot: string },
): LitePod {
  const uid = spec.uid ?? randomUUID();
  const namespace = spec.namespace ?? 'default';
  const labels = { ...spec.labels };
  let owner: { kind: string; name: string } | undefined;
  let name = spec.name;
  if (spec.owner?.kind === 'Deployment') {
    const hash = randomName(10);
    labels['pod-template-hash'] = hash;
    owner = { kind: 'ReplicaSet', name: `${spec.owner.name}-${hash}` };
    name ??= `${owner.name}-${randomName(5)}`;
  } else if (spec.owner) {
    owner = spec.owner;
    name ??=
      spec.owner.kind === 'StatefulSet' ? `${spec.owner.name}-0` : `${spec.owner.name}-${randomName(5)}`;
  }
  name ??= `pod-${randomName(8)}`;
  const v1 = v1Pod({
    namespace,
    name,
    uid,
    labels,
    ...(spec.annotations ? { annotations: spec.annotations } : {}),
    ...(owner ? { owner } : {}),
    containers: spec.containers.map((c) => ({ name: c.name, ...(c.image ? { image: c.image } : {}) })),
    node: ctx.nodeName,
  });
  v1.status = { phase: 'Pending', qosClass: qosName(spec.qos ?? 'besteffort') } as V1Pod['status'];
  const annotations = v1.metadata?.annotations ?? {};
  const logDir = join(ctx.podLogRoot, `${namespace}_${name}_${uid}`);
  const nodeLogDir = join(ctx.nodeLogRoot, 'pods', `${namespace}_${name}_${uid}`);
  const cgroupParent = podCgroupParent(spec.qos ?? 'besteffort', uid);
  const sandboxConfig: PodSandboxConfig = {
    metadata: { name, uid, namespace, attempt: spec.attempt ?? 0 },
    hostname: spec.hostname ?? name,
    log_directory: nodeLogDir,
    port_mappings: (spec.portMappings ?? []).map((m) => ({
      protocol: m.protocol ?? 'TCP',
      container_port: m.containerPort,
      host_port: m.hostPort,
      ...(m.hostIp ? { host_ip: m.hostIp } : {}),
    })),
    labels: { ...labels, ...podIdentityLabels(name, namespace, uid) },
    annotations,
    linux: {
      cgroup_parent: cgroupParent,
      security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } },
    },
  };
  return {
    uid,
    name,
    namespace,
    labels,
    annotations,
    logDir,
    cgroupParent,
    sandboxConfig,
    phase: 'Pending',
    sandboxId: '',
    ip: '',
    netns: undefined,
    sandboxAttempts: 0,
    sandboxErrors: [],
    teardownErrors: [],
    containers: [],
    v1,
  };
}

function qosName(qos: QosClass): string {
  return { besteffort: 'BestEffort', burstable: 'Burstable', guaranteed: 'Guaranteed' }[qos];
}

/** The labels the kubelet puts on sandboxes and containers to find its pods again. */
export function podIdentityLabels(name: string, namespace: string, uid: string): Record<string, string> {
  return {
    'io.kubernetes.pod.name': name,
    'io.kubernetes.pod.namespace': namespace,
    'io.kubernetes.pod.uid': uid,
  };
}

function containerConfig(pod: LitePod, c: LiteContainerSpec, image: string): ContainerConfig {
  return {
    metadata: { name: c.name, attempt: 0 },
    image: { image },
    ...(c.command ? { command: c.command } : {}),
    ...(c.args ? { args: c.args } : {}),
    envs: Object.entries(c.env ?? {}).map(([key, value]) => ({ key, value })),
    labels: {
      ...podIdentityLabels(pod.name, pod.namespace, pod.uid),
      'io.kubernetes.container.name': c.name,
    },
    annotations: { 'io.kubernetes.container.restartCount': '0' },
    log_path: `${c.name}/0.log`,
    linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
}

async function runSandbox(
  cri: CriClient,
  pod: LitePod,
  retry: { attempts: number; delayMs: number; retryIf: (err: Error) => boolean },
): Promise<string> {
  for (;;) {
    pod.sandboxAttempts++;
    try {
      // The kubelet's pod workers skip a pod while the runtime reports the network not ready (no
      // CNI config loaded): "network is not ready", retried on the next sync, no RunPodSandbox.
      await networkReadyOrThrow(cri);
      return (await cri.call('RunPodSandbox', { config: pod.sandboxConfig })).pod_sandbox_id;
    } catch (err) {
      pod.sandboxErrors.push(messageOf(err));
      if (pod.sandboxAttempts >= retry.attempts || !retry.retryIf(err as Error)) {
        throw new Error(`RunPodSandbox failed ${pod.sandboxAttempts} time(s): ${messageOf(err)}`, {
          cause: err,
        });
      }
      // A failed RunPodSandbox whose own cleanup failed too (its CNI DEL ran while the conflist was
      // gone) leaves a sandbox that keeps its name reserved. As the kubelet: the next attempt
      // number follows the pod's newest sandbox, and its old ones are killed (retried next time).
      const old = await podSandboxes(cri, pod.uid);
      if (old.length > 0) {
        pod.sandboxConfig.metadata.attempt = Math.max(...old.map((o) => o.metadata.attempt)) + 1;
        for (const o of old) await removeSandbox(cri, o.id).catch(() => {});
      }
      await new Promise((r) => setTimeout(r, retry.delayMs));
    }
  }
}

/** The sandboxes the runtime holds for a pod (by the kubelet's uid label). */
async function podSandboxes(cri: CriClient, uid: string): Promise<PodSandbox[]> {
  const { items } = await cri.call('ListPodSandbox', {
    filter: { label_selector: { 'io.kubernetes.pod.uid': uid } },
  });
  return items;
}

async function removeSandbox(cri: CriClient, id: string): Promise<void> {
  await cri.call('StopPodSandbox', { pod_sandbox_id: id });
  await cri.call('RemovePodSandbox', { pod_sandbox_id: id });
}

async function networkReadyOrThrow(cri: CriClient): Promise<void> {
  const network = await networkCondition(cri);
  if (!network.ready)
    throw new Error(
      `network is not ready: container runtime network not ready: NetworkReady=false reason:${network.reason} message:${network.message}`,
    );
}

/** Fills the pod's v1 status from the runtime, as the kubelet's status manager would. */
async function refreshStatus(cri: CriClient, pod: LitePod): Promise<void> {
  const containerStatuses: (V1ContainerStatus & Record<string, unknown>)[] = [];
  for (const c of pod.containers) {
    const { status } = await cri.call('ContainerStatus', { container_id: c.id });
    containerStatuses.push({
      name: c.name,
      containerID: `containerd://${c.id}`,
      image: status.image?.image || c.image,
      imageID: status.image_ref,
      restartCount: 0,
      ready: status.state === 'CONTAINER_RUNNING',
      started: status.state === 'CONTAINER_RUNNING',
      state:
        status.state === 'CONTAINER_RUNNING'
          ? { running: { startedAt: nanosToIso(status.started_at) } }
          : { waiting: { reason: status.reason || 'ContainerCreating' } },
    });
  }
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  Object.assign(pod.v1.status ?? {}, {
    phase: pod.phase === 'Running' ? 'Running' : 'Pending',
    podIP: pod.ip,
    podIPs: pod.ip ? [{ ip: pod.ip }] : [],
    hostIP: '127.0.0.1',
    startTime: now,
    containerStatuses,
  });
}

function nanosToIso(nanos: string): string {
  return new Date(Number(BigInt(nanos) / 1_000_000n)).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The kubelet's containerLogManager.rotateLogs + processContainer, once over every running container. */
async function rotationPass(
  cri: CriClient,
  policy: LogRotationPolicy,
  testPath: (nodePath: string) => string,
): Promise<RotatedLog[]> {
  const { containers } = await cri.call('ListContainers', {
    filter: { state: { state: 'CONTAINER_RUNNING' } },
  });
  const rotated: RotatedLog[] = [];
  for (const c of containers) {
    let status: ContainerStatus;
    try {
      ({ status } = await cri.call('ContainerStatus', { container_id: c.id }));
    } catch (err) {
      // Removed since the listing (gRPC NOT_FOUND): nothing to rotate.
      if ((err as { code?: number }).code === 5) continue;
      throw err;
    }
    if (!status.log_path) continue;
    const log = testPath(status.log_path);
    let size: number;
    try {
      size = (await stat(log)).size;
    } catch {
      // Gone (someone rotated it without a reopen): the runtime makes a new one.
      await cri.call('ReopenContainerLog', { container_id: c.id });
      size = (await stat(log)).size;
    }
    if (size < policy.maxSize) continue;
    rotated.push({ containerId: c.id, log, rotated: await rotateLog(cri, c.id, log, policy) });
  }
  return rotated;
}

async function rotateLog(
  cri: CriClient,
  id: string,
  log: string,
  policy: LogRotationPolicy,
): Promise<string> {
  const prefix = `${basename(log)}.`;
  let logs = (await readdir(dirname(log)))
    .filter((f) => f.startsWith(prefix))
    .map((f) => join(dirname(log), f))
    .sort();
  // cleanupUnusedLogs: temporaries of an interrupted compression, and logs already compressed.
  const unused = logs.filter((l) => l.endsWith('.tmp') || (!l.endsWith('.gz') && logs.includes(`${l}.gz`)));
  await Promise.all(unused.map((l) => unlink(l)));
  logs = logs.filter((l) => !unused.includes(l));
  // removeExcessLogs: besides the live log and the one about to be rotated, MaxFiles-2 rotated.
  const excess = logs.length - Math.max(policy.maxFiles - 2, 0);
  for (const l of logs.slice(0, Math.max(excess, 0))) await unlink(l);
  logs = logs.slice(Math.max(excess, 0));
  for (const l of logs) if (!l.endsWith('.gz')) await compress(l);
  // rotateLatestLog. The kubelet's timestamp has whole seconds: a second rotation within the same
  // second would overwrite the first, so wait for the next one.
  let rotated = `${log}.${rotationTimestamp(new Date())}`;
  while (existsSync(rotated) || existsSync(`${rotated}.gz`)) {
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
    rotated = `${log}.${rotationTimestamp(new Date())}`;
  }
  await rename(log, rotated);
  try {
    await cri.call('ReopenContainerLog', { container_id: id });
  } catch (err) {
    // As the kubelet: put it back to try again next pass.
    await rename(rotated, log);
    throw err;
  }
  return rotated;
}

async function compress(log: string): Promise<void> {
  const tmp = `${log}.tmp`;
  try {
    await pipeline(createReadStream(log), createGzip(), createWriteStream(tmp));
    await rename(tmp, `${log}.gz`);
    await unlink(log);
  } finally {
    await rm(tmp, { force: true });
  }
}
