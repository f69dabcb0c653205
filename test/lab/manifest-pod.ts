import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Containerd } from './containerd.ts';
import { cgroupDirs, removeCgroupSoon } from './cri/cgroups.ts';
import type {
  ContainerConfig,
  ContainerStatus,
  Mount,
  MountPropagation,
  PodSandboxConfig,
} from './cri/client.ts';
import type { KubeletLite } from './kubelet-lite.ts';
import { containerLogSymlink, podCgroupParent, podIdentityLabels, type QosClass } from './kubelet-lite.ts';
import type { K8sObject } from './kustomize.ts';
import { type Lab, messageOf } from './scope.ts';
import { tempDir } from './tmp.ts';

/**
 * The kubelet's part for one pod from a manifest's pod template (a DaemonSet's), over containerd's
 * CRI: what kubelet-lite does for the lab's workloads, for a PodSpec as written — host network and
 * PID namespaces, the security context (privileged or capabilities, read-only root), hostPath
 * volumes as CRI mounts with their propagation (DirectoryOrCreate made), ConfigMap and Secret
 * volumes as files (defaultMode), env with fieldRef and secretKeyRef/configMapKeyRef (optional
 * ones), resources as the CRI's cgroup limits (QoS class, cgroup parent, oom_score_adj), init
 * containers run to completion in order, then the containers; liveness, readiness and startup
 * httpGet probes called as the kubelet calls them (a failed liveness probe or an exited container
 * is restarted with a new attempt, restartPolicy Always); stop with the pod's grace period.
 *
 * Not done (not in deploy/): exec/tcpSocket probes, emptyDir, projected volumes (the service
 * account token), /etc/hosts and /dev/termination-log mounts, image pulls (images are imported).
 */

export interface ManifestPodOptions {
  lab: Lab;
  containerd: Containerd;
  /** The node's kubelet stand-in: its node name and log root (the pod's logs go there too). */
  kubelet: KubeletLite;
  /** The rendered manifests: the workload, and the ConfigMaps and Secrets it references. */
  objects: readonly K8sObject[];
  /** The workload (kind DaemonSet) whose template to run. */
  workload: string;
  /** The node's address as probes and status.hostIP/podIP see it (host network). Default 127.0.0.1. */
  nodeIp?: string;
  /** Delay before restarting an exited container (the kubelet's back-off starts at 10 s). Default 1 s. */
  restartDelayMs?: number;
  /**
   * Stop the pod at lab cleanup (default true). False when the caller orders that itself, e.g. an
   * agent that must outlive the workload pods whose DELs it serves.
   */
  stopAtCleanup?: boolean;
}

export interface ContainerRun {
  readonly name: string;
  /** The current attempt's container id. */
  id: string;
  restarts: number;
  /** Why earlier attempts ended: exit code and the runtime's reason (OOMKilled, Error, …), or "liveness". */
  readonly terminations: { exitCode: number; reason: string }[];
  ready: boolean;
  /** The current attempt's memory high-water mark in bytes (v1 max_usage_in_bytes, v2 memory.peak), if the kernel keeps one. */
  memoryPeak(): number | undefined;
}

export interface ManifestPod {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly sandboxId: string;
  readonly cgroupParent: string;
  readonly qos: QosClass;
  readonly sandboxConfig: PodSandboxConfig;
  readonly containers: ReadonlyMap<string, ContainerRun>;
  /** Every container ready (readiness probe passing, or running without one). */
  ready(): boolean;
  /** The CRI configs sent (for assertions on what the manifest became). */
  readonly configs: ReadonlyMap<string, ContainerConfig>;
  /** The current log of a container (test path). */
  logOf(container: string): string;
  /** Stops with the pod's terminationGracePeriodSeconds (SIGTERM, then SIGKILL), removes it; idempotent. */
  stop(): Promise<void>;
}

interface Probe {
  httpGet?: { path?: string; port: number | string; host?: string; scheme?: string };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
  successThreshold?: number;
}

interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: {
    name: string;
    value?: string;
    valueFrom?: {
      fieldRef?: { fieldPath: string };
      secretKeyRef?: { name: string; key: string; optional?: boolean };
      configMapKeyRef?: { name: string; key: string; optional?: boolean };
    };
  }[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: {
    name: string;
    mountPath: string;
    readOnly?: boolean;
    mountPropagation?: string;
    subPath?: string;
  }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    privileged?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}

interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string; optional?: boolean; defaultMode?: number };
  secret?: { secretName: string; optional?: boolean; defaultMode?: number };
}

interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    hostNetwork?: boolean;
    hostPID?: boolean;
    terminationGracePeriodSeconds?: number;
    priorityClassName?: string;
    initContainers?: ContainerSpec[];
    containers: ContainerSpec[];
    volumes?: Volume[];
  };
}

export async function runManifestPod(opts: ManifestPodOptions): Promise<ManifestPod> {
  const { lab, containerd, kubelet } = opts;
  const cri = containerd.cri;
  const workload = opts.objects.find((o) => o.kind === 'DaemonSet' && o.metadata.name === opts.workload);
  if (!workload) throw new Error(`manifest pod: no DaemonSet ${opts.workload} in the rendered objects`);
  const template = (workload['spec'] as { template: PodTemplate }).template;
  const spec = template.spec;
  const namespace = workload.metadata.namespace ?? 'default';
  const uid = randomUUID();
  const name = `${opts.workload}-${randomBytes(3).toString('hex').slice(0, 5)}`;
  const nodeIp = opts.nodeIp ?? '127.0.0.1';
  const grace = spec.terminationGracePeriodSeconds ?? 30;
  const restartDelayMs = opts.restartDelayMs ?? 1000;
  const qos = qosClass(spec.containers);
  const cgroupParent = podCgroupParent(qos, uid);
  const hostNamespaces = {
    network: spec.hostNetwork ? 'NODE' : 'POD',
    pid: spec.hostPID ? 'NODE' : 'CONTAINER',
    ipc: 'POD',
  } as const;
  const identity = podIdentityLabels(name, namespace, uid);
  const dirName = `${namespace}_${name}_${uid}`;
  const logDir = join(kubelet.podLogRoot, dirName);
  await mkdir(logDir, { recursive: true });
  const sandboxConfig: PodSandboxConfig = {
    metadata: { name, uid, namespace, attempt: 0 },
    // The kubelet names the UTS namespace only of pods with their own (runc refuses a hostname otherwise).
    ...(spec.hostNetwork ? {} : { hostname: name }),
    log_directory: join(kubelet.nodeLogRoot, 'pods', dirName),
    labels: { ...template.metadata?.labels, ...identity },
    annotations: { ...template.metadata?.annotations },
    linux: {
      cgroup_parent: cgroupParent,
      security_context: {
        namespace_options: hostNamespaces,
        // containerd refuses a privileged container in a sandbox that is not.
        privileged: [...spec.containers, ...(spec.initContainers ?? [])].some(
          (c) => c.securityContext?.privileged,
        ),
      },
    },
  };
  const volumesDir = await tempDir('pod-volumes', lab);
  const mountsOf = await volumeMounts(spec.volumes ?? [], opts.objects, namespace, volumesDir, containerd);

  const configs = new Map<string, ContainerConfig>();
  const runs = new Map<string, ContainerRun>();
  const symlinks = new Set<string>();
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const after = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!stopped) fn();
    }, ms);
    timers.add(t);
  };

  containerd.cgroups.track(cgroupParent);
  const sandboxId = (await cri.call('RunPodSandbox', { config: sandboxConfig })).pod_sandbox_id;
  const env = (c: ContainerSpec) =>
    envOf(c, opts.objects, namespace, {
      'spec.nodeName': kubelet.nodeName,
      'metadata.name': name,
      'metadata.namespace': namespace,
      'metadata.uid': uid,
      'status.hostIP': nodeIp,
      'status.podIP': spec.hostNetwork ? nodeIp : '',
    });

  const start = async (c: ContainerSpec, attempt: number): Promise<string> => {
    const limits = c.resources?.limits ?? {};
    const requests = c.resources?.requests ?? {};
    const memoryLimit = limits['memory'] ? quantity(limits['memory']) : 0;
    const cpuLimitMilli = limits['cpu'] ? quantity(limits['cpu']) * 1000 : 0;
    const cpuRequestMilli = requests['cpu'] ? quantity(requests['cpu']) * 1000 : cpuLimitMilli;
    const config: ContainerConfig = {
      metadata: { name: c.name, attempt },
      image: { image: c.image },
      ...(c.command ? { command: c.command } : {}),
      ...(c.args ? { args: c.args } : {}),
      ...(c.workingDir ? { working_dir: c.workingDir } : {}),
      envs: await env(c),
      mounts: (c.volumeMounts ?? []).map((m) => mountsOf(m)),
      labels: { ...identity, 'io.kubernetes.container.name': c.name },
      annotations: { 'io.kubernetes.container.restartCount': String(attempt) },
      log_path: `${c.name}/${attempt}.log`,
      linux: {
        resources: {
          // The kubelet's cgroupfs values: shares from the CPU request (min 2), a CFS quota from
          // the CPU limit over a 100 ms period, the memory limit as is.
          cpu_shares: String(Math.max(2, Math.floor((cpuRequestMilli * 1024) / 1000))),
          ...(cpuLimitMilli
            ? { cpu_period: '100000', cpu_quota: String(Math.floor(cpuLimitMilli * 100)) }
            : {}),
          ...(memoryLimit ? { memory_limit_in_bytes: String(memoryLimit) } : {}),
          oom_score_adj: String(oomScoreAdj(qos, spec.priorityClassName, requests['memory'])),
        },
        security_context: {
          namespace_options: hostNamespaces,
          privileged: c.securityContext?.privileged ?? false,
          readonly_rootfs: c.securityContext?.readOnlyRootFilesystem ?? false,
          ...(c.securityContext?.capabilities
            ? {
                capabilities: {
                  // As written (NET_ADMIN): the kubelet passes them so, the runtime adds CAP_.
                  add_capabilities: c.securityContext.capabilities.add ?? [],
                  drop_capabilities: c.securityContext.capabilities.drop ?? [],
                },
              }
            : {}),
        },
      },
    };
    configs.set(c.name, config);
    const { container_id: id } = await cri.call('CreateContainer', {
      pod_sandbox_id: sandboxId,
      config,
      sandbox_config: sandboxConfig,
    });
    await cri.call('StartContainer', { container_id: id });
    // The kubelet links the log into /var/log/containers once the runtime made it.
    const log = join(logDir, config.log_path!);
    if (existsSync(log)) {
      const link = containerLogSymlink(kubelet.containerLogRoot, name, namespace, c.name, id);
      await symlink(join(sandboxConfig.log_directory!, config.log_path!), link);
      symlinks.add(link);
    }
    return id;
  };

  const status = async (id: string): Promise<ContainerStatus> =>
    (await cri.call('ContainerStatus', { container_id: id })).status;

  try {
    for (const c of spec.initContainers ?? []) await runToCompletion(c, start, status, logDir);
    for (const c of spec.containers) {
      const id = await start(c, 0);
      const run: ContainerRun = {
        name: c.name,
        id,
        restarts: 0,
        terminations: [],
        ready: !c.readinessProbe,
        memoryPeak: () => memoryPeakOf(cgroupParent, run.id),
      };
      runs.set(c.name, run);
    }
  } catch (err) {
    stopped = true;
    await teardown().catch(() => {});
    throw err;
  }

  // Restart policy Always: an exited container (crash, OOM kill, failed liveness) gets a new attempt.
  const restart = async (c: ContainerSpec, run: ContainerRun, why?: string) => {
    const s = await status(run.id);
    if (s.state === 'CONTAINER_RUNNING')
      await cri.call('StopContainer', { container_id: run.id, timeout: grace });
    const ended = await status(run.id);
    run.terminations.push({ exitCode: ended.exit_code, reason: why ?? ended.reason });
    await cri.call('RemoveContainer', { container_id: run.id });
    run.restarts++;
    run.ready = !c.readinessProbe;
    if (stopped) return;
    run.id = await start(c, run.restarts);
  };
  const probeUrl = (c: ContainerSpec, p: Probe) => {
    const g = p.httpGet!;
    const port = typeof g.port === 'number' ? g.port : c.ports?.find((x) => x.name === g.port)?.containerPort;
    if (port === undefined) throw new Error(`container ${c.name}: probe port ${g.port} is not declared`);
    return `${(g.scheme ?? 'HTTP').toLowerCase()}://${g.host ?? nodeIp}:${port}${g.path ?? '/'}`;
  };
  for (const c of spec.containers) {
    const run = runs.get(c.name)!;
    let busy = false;
    // The container's own exit.
    const watch = async () => {
      if (busy) return;
      const s = await status(run.id).catch(() => undefined);
      if (s?.state === 'CONTAINER_EXITED') {
        busy = true;
        await new Promise((r) => setTimeout(r, restartDelayMs));
        await restart(c, run).finally(() => {
          busy = false;
        });
      }
    };
    const loop = (fn: () => Promise<void>, ms: number) => {
      const tick = () => {
        fn()
          .catch(() => {})
          .finally(() => after(ms, tick));
      };
      after(ms, tick);
    };
    loop(watch, 500);
    for (const kind of ['liveness', 'readiness'] as const) {
      const p = kind === 'liveness' ? c.livenessProbe : c.readinessProbe;
      if (!p?.httpGet) continue;
      const url = probeUrl(c, p);
      let failures = 0;
      let successes = 0;
      let attemptSeen = run.id;
      const probe = async () => {
        if (busy) return;
        if (attemptSeen !== run.id) {
          // A new attempt starts its probes from scratch after initialDelaySeconds.
          attemptSeen = run.id;
          failures = successes = 0;
        }
        const ok = await httpOk(url, (p.timeoutSeconds ?? 1) * 1000);
        if (ok) {
          failures = 0;
          successes++;
          if (kind === 'readiness' && successes >= (p.successThreshold ?? 1)) run.ready = true;
          return;
        }
        successes = 0;
        failures++;
        if (failures < (p.failureThreshold ?? 3)) return;
        if (kind === 'readiness') run.ready = false;
        else {
          busy = true;
          failures = 0;
          await restart(c, run, 'liveness').finally(() => {
            busy = false;
          });
        }
      };
      after((p.initialDelaySeconds ?? 0) * 1000, () => loop(probe, (p.periodSeconds ?? 10) * 1000));
      // The first probe right after the delay, not one period later.
      after((p.initialDelaySeconds ?? 0) * 1000 + 50, () => void probe().catch(() => {}));
    }
  }

  async function teardown(): Promise<void> {
    for (const t of timers) clearTimeout(t);
    const errors: string[] = [];
    const { containers } = await cri.call('ListContainers', { filter: { pod_sandbox_id: sandboxId } });
    // All at once, each with the pod's grace period: SIGTERM, then SIGKILL.
    await Promise.all(
      containers.map((c) =>
        cri
          .call('StopContainer', { container_id: c.id, timeout: grace })
          .catch((e) => errors.push(messageOf(e))),
      ),
    );
    for (const c of containers)
      await cri.call('RemoveContainer', { container_id: c.id }).catch((e) => errors.push(messageOf(e)));
    await cri.call('StopPodSandbox', { pod_sandbox_id: sandboxId }).catch((e) => errors.push(messageOf(e)));
    await cri.call('RemovePodSandbox', { pod_sandbox_id: sandboxId }).catch((e) => errors.push(messageOf(e)));
    await Promise.all([...symlinks].map((l) => rm(l, { force: true })));
    const left = await removeCgroupSoon(cgroupParent);
    if (left.length > 0) errors.push(`cgroups still in use: ${left.join(', ')}`);
    if (errors.length > 0) throw new Error(`pod ${namespace}/${name}: ${errors.join('; ')}`);
  }
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopped = true;
    stopping ??= teardown();
    return stopping;
  };
  if (opts.stopAtCleanup ?? true) lab.defer(`pod ${name}`, stop);

  return {
    uid,
    name,
    namespace,
    sandboxId,
    cgroupParent,
    qos,
    sandboxConfig,
    containers: runs,
    ready: () => [...runs.values()].every((r) => r.ready),
    configs,
    logOf: (container) => {
      const run = runs.get(container);
      return join(logDir, container, `${run?.restarts ?? 0}.log`);
    },
    stop,
  };
}

/** Runs an init container until it exits 0 (retried as the kubelet does, here up to 3 times). */
async function runToCompletion(
  c: ContainerSpec,
  start: (c: ContainerSpec, attempt: number) => Promise<string>,
  status: (id: string) => Promise<ContainerStatus>,
  logDir: string,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const id = await start(c, attempt);
    const deadline = Date.now() + 120_000;
    let s = await status(id);
    while (s.state !== 'CONTAINER_EXITED') {
      if (Date.now() > deadline) throw new Error(`init container ${c.name} still running after 120 s`);
      await new Promise((r) => setTimeout(r, 200));
      s = await status(id);
    }
    if (s.exit_code === 0) return;
    if (attempt >= 2) {
      let log = '';
      try {
        log = readFileSync(join(logDir, c.name, `${attempt}.log`), 'utf8');
      } catch {}
      throw new Error(
        `init container ${c.name} exited ${s.exit_code} (${s.reason}) ${attempt + 1} times:\n${log}`,
      );
    }
  }
}

/** How each volumeMount becomes a CRI mount (volumes made or written first). */
async function volumeMounts(
  volumes: readonly Volume[],
  objects: readonly K8sObject[],
  namespace: string,
  dir: string,
  containerd: Containerd,
): Promise<(m: NonNullable<ContainerSpec['volumeMounts']>[number]) => Mount> {
  const sources = new Map<string, string>();
  for (const v of volumes) {
    if (v.hostPath) {
      if (v.hostPath.type === 'DirectoryOrCreate')
        await mkdir(containerd.nodePath(v.hostPath.path), { recursive: true, mode: 0o755 });
      else if (v.hostPath.type === 'Directory' && !existsSync(containerd.nodePath(v.hostPath.path)))
        throw new Error(`volume ${v.name}: hostPath ${v.hostPath.path} is not a directory`);
      sources.set(v.name, v.hostPath.path);
      continue;
    }
    const ref = v.configMap
      ? {
          kind: 'ConfigMap',
          name: v.configMap.name,
          optional: v.configMap.optional,
          mode: v.configMap.defaultMode ?? 0o644,
        }
      : v.secret
        ? {
            kind: 'Secret',
            name: v.secret.secretName,
            optional: v.secret.optional,
            mode: v.secret.defaultMode ?? 0o644,
          }
        : undefined;
    if (!ref)
      throw new Error(
        `volume ${v.name}: only hostPath, configMap and secret volumes are supported by the lab`,
      );
    const o = objects.find(
      (x) =>
        x.kind === ref.kind &&
        x.metadata.name === ref.name &&
        (x.metadata.namespace ?? namespace) === namespace,
    );
    if (!o && !ref.optional)
      throw new Error(`volume ${v.name}: ${ref.kind} ${namespace}/${ref.name} not found`);
    const target = join(dir, v.name);
    await mkdir(target, { recursive: true });
    for (const [key, value] of Object.entries((o?.['data'] as Record<string, string> | undefined) ?? {})) {
      const file = join(target, key);
      await writeFile(file, ref.kind === 'Secret' ? Buffer.from(value, 'base64') : value);
      await chmod(file, ref.mode);
    }
    sources.set(v.name, target);
  }
  const propagation: Record<string, MountPropagation> = {
    HostToContainer: 'PROPAGATION_HOST_TO_CONTAINER',
    Bidirectional: 'PROPAGATION_BIDIRECTIONAL',
  };
  return (m) => {
    const source = sources.get(m.name);
    if (source === undefined) throw new Error(`volumeMount ${m.name}: no such volume`);
    return {
      container_path: m.mountPath,
      host_path: m.subPath ? join(source, m.subPath) : source,
      readonly: m.readOnly ?? false,
      propagation: propagation[m.mountPropagation ?? ''] ?? 'PROPAGATION_PRIVATE',
    };
  };
}

async function envOf(
  c: ContainerSpec,
  objects: readonly K8sObject[],
  namespace: string,
  fields: Record<string, string>,
): Promise<{ key: string; value: string }[]> {
  const out: { key: string; value: string }[] = [];
  for (const e of c.env ?? []) {
    if (e.value !== undefined || !e.valueFrom) {
      out.push({ key: e.name, value: e.value ?? '' });
      continue;
    }
    const f = e.valueFrom;
    if (f.fieldRef) {
      const v = fields[f.fieldRef.fieldPath];
      if (v === undefined)
        throw new Error(`env ${e.name}: fieldRef ${f.fieldRef.fieldPath} is not supported by the lab`);
      out.push({ key: e.name, value: v });
      continue;
    }
    const ref = f.secretKeyRef ?? f.configMapKeyRef!;
    const kind = f.secretKeyRef ? 'Secret' : 'ConfigMap';
    const o = objects.find(
      (x) =>
        x.kind === kind && x.metadata.name === ref.name && (x.metadata.namespace ?? namespace) === namespace,
    );
    const raw = (o?.['data'] as Record<string, string> | undefined)?.[ref.key];
    if (raw === undefined) {
      if (ref.optional) continue;
      throw new Error(`env ${e.name}: ${kind} ${namespace}/${ref.name} key ${ref.key} not found`);
    }
    out.push({ key: e.name, value: kind === 'Secret' ? Buffer.from(raw, 'base64').toString() : raw });
  }
  return out;
}

/** The pod's QoS class from its containers' requests and limits (as the API server computes it). */
function qosClass(containers: readonly ContainerSpec[]): QosClass {
  let any = false;
  let guaranteed = true;
  for (const c of containers) {
    const { requests = {}, limits = {} } = c.resources ?? {};
    if (Object.keys(requests).length || Object.keys(limits).length) any = true;
    for (const r of ['cpu', 'memory']) {
      const limit = limits[r];
      const request = requests[r] ?? limit;
      if (!limit || quantity(limit) !== quantity(request!)) guaranteed = false;
    }
  }
  return !any ? 'besteffort' : guaranteed ? 'guaranteed' : 'burstable';
}

/** The kubelet's oom_score_adj: -997 for node-critical pods, else by QoS and memory request. */
function oomScoreAdj(
  qos: QosClass,
  priorityClass: string | undefined,
  memoryRequest: string | undefined,
): number {
  if (priorityClass === 'system-node-critical') return -997;
  if (qos === 'guaranteed') return -997;
  if (qos === 'besteffort') return 1000;
  const capacity = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
  const request = memoryRequest ? quantity(memoryRequest) : 0;
  const adj = 1000 - Math.floor((1000 * request) / (capacity || 1));
  return Math.min(999, Math.max(2, adj));
}

/** A Kubernetes quantity (Mi, Gi, k, M, m, plain) as a number: bytes, cores. */
export function quantity(q: string): number {
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(q.trim());
  if (!m) throw new Error(`bad quantity ${q}`);
  const units: Record<string, number> = {
    '': 1,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
  };
  const u = units[m[2]!];
  if (u === undefined) throw new Error(`bad quantity unit in ${q}`);
  return Number(m[1]) * u;
}

async function httpOk(url: string, timeoutMs: number): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    // The kubelet: 200 ≤ status < 400 is success.
    return res.status >= 200 && res.status < 400;
  } catch {
    return false;
  }
}

/** A container's memory high-water mark (cgroupfs driver: its cgroup is <parent>/<id>). */
function memoryPeakOf(parent: string, id: string): number | undefined {
  for (const dir of cgroupDirs(`${parent}/${id}`))
    for (const file of ['memory.max_usage_in_bytes', 'memory.peak'])
      if (existsSync(join(dir, file))) return Number(readFileSync(join(dir, file), 'utf8'));
  return undefined;
}
