import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { which } from './bin.ts';
import { CgroupTracker } from './cri/cgroups.ts';
import { type CriClient, criClient } from './cri/client.ts';
import { imageArchive, PAUSE_IMAGE, WORKLOAD_IMAGE } from './cri/images.ts';
import { type RunOptions, runOk } from './exec.ts';
import { onLastResort } from './lastresort.ts';
import { mountsUnder } from './mounts.ts';
import { type Service, startService } from './proc.ts';
import { signal } from './procs.ts';
import { type Lab, messageOf } from './scope.ts';
import { tempDir } from './tmp.ts';
import { waitFor } from './wait.ts';

/** What startContainerd needs on PATH: the runtime, its image tooling, and the pod network's. */
export const CONTAINERD_BINARIES = [
  'containerd',
  'containerd-shim-runc-v2',
  'runc',
  'ctr',
  'busybox',
  'tar',
  'ip',
  'iptables',
] as const;

export interface ContainerdOptions {
  lab: Lab;
  /** CNI plugin binaries (e.g. /usr/lib/cni, or a dir holding the plugin under test). */
  cniBinDir: string;
  /** Where containerd reads the conflist (max_conf_num = 1: the first file by name). */
  cniConfDir: string;
  /**
   * netns_mounts_under_state_dir: pod network namespaces under the state dir (gone with the lab
   * dir whatever happens) instead of /var/run/netns/cni-<uuid> as on a default node. Default true.
   */
  netnsUnderStateDir?: boolean;
  /** containerd's log level (its log is <dir>/containerd.log). Default info. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /**
   * A node of its own: containerd (and so its shims, CNI plugins and containers) runs in a mount
   * namespace where each of these node paths (/etc/cni/net.d, /run/nodeward, /var/log, …) is a
   * bind mount of the given lab dir, then every mount is made shared (as on a systemd host), so
   * hostPath volumes with HostToContainer propagation work. Pods then see production paths while
   * two labs never share a file. A missing mount point is created on the host as an empty dir (a
   * bind mount needs one); nothing else reaches the host. Reach node paths from the test through
   * `nodePath`.
   */
  nodeFs?: Readonly<Record<string, string>>;
}

export interface Containerd {
  /** containerd's gRPC socket (CRI and containerd API). */
  readonly socketPath: string;
  readonly dir: string;
  readonly root: string;
  readonly state: string;
  readonly configPath: string;
  readonly service: Service;
  /** The RuntimeService client the lab uses (closed at stop). */
  readonly cri: CriClient;
  /** The sandbox image (imported at start). */
  readonly pauseImage: string;
  /** The log-writer workload image (imported at start); see cri/images.ts for its env. */
  readonly workloadImage: string;
  /** Runs `ctr -a <socket> -n k8s.io …`; resolves with stdout. */
  ctr(args: readonly string[], opts?: RunOptions): Promise<string>;
  /** `ctr images import` of a docker-archive tarball (see cri/images.ts) into the CRI namespace. */
  importImage(archive: string): Promise<void>;
  /**
   * Pod cgroup parents (`/kubepods/besteffort/pod<uid>`) to remove at cleanup with the ancestors
   * the lab made; call before RunPodSandbox. Kubelet-lite does.
   */
  readonly cgroups: CgroupTracker;
  /** A pod netns path outside the lab dir to unmount and delete at cleanup (kubelet-lite records them). */
  trackNetns(path: string): void;
  /** Where the test reaches a path as containerd and its pods see it (itself without nodeFs). */
  nodePath(path: string): string;
  /** Stops and removes every pod sandbox (CNI DEL twice each); returns how many there were. */
  removeAllSandboxes(): Promise<number>;
  /** Removes the sandboxes, stops containerd and its shims, removes what they left; idempotent. */
  stop(): Promise<void>;
}

const CRI_NAMESPACE = 'k8s.io';

/**
 * A private containerd with the CRI plugin: own config, root, state, socket and runc root in a
 * temp dir, cgroupfs, its own CNI bin/conf dirs; the pause and workload images imported. Shim
 * sockets (/run/containerd/s) and libcni's cache (/var/lib/cni/results) are not movable: the shim
 * sockets of this instance are removed at stop, the CNI cache entries go with CNI DEL.
 */
export async function startContainerd(opts: ContainerdOptions): Promise<Containerd> {
  const { lab } = opts;
  const dir = await tempDir('containerd', lab);
  const root = join(dir, 'root');
  const state = join(dir, 'state');
  const runcRoot = join(dir, 'runc');
  const socketPath = join(dir, 'containerd.sock');
  const configPath = join(dir, 'config.toml');
  await Promise.all([root, state, runcRoot].map((d) => mkdir(d, { recursive: true })));
  await writeFile(configPath, containerdConfig({ ...opts, root, runcRoot, pauseImage: PAUSE_IMAGE.tag }));

  const cgroups = new CgroupTracker();
  const netns = new Set<string>();
  const removeTrackedNow = (shimSockets: readonly string[]) => {
    removeShimSockets(shimSockets);
    for (const path of netns) removeNetnsNow(path);
  };
  // At process exit when the lab was not cleaned up: containers die with their init (the
  // service's own step kills containerd and the shims), then their netns and cgroups go.
  let orphaned: Leftovers = { pids: [], shimSockets: [] };
  const forgetKill = onLastResort(() => {
    orphaned = leftoversOf(state, socketPath);
    killTasks(orphaned.pids);
  });
  const forgetCleanup = onLastResort(() => {
    removeTrackedNow(orphaned.shimSockets);
    // SIGKILLed tasks leave their cgroups a moment later; the exit handler cannot await.
    const deadline = Date.now() + 1000;
    while (cgroups.removeAllNow().length > 0 && Date.now() < deadline) sleepSync(20);
  }, 'cleanup');
  // After the service has stopped (the lab runs its steps newest first): what a crash or a
  // failed removal left.
  let seen: Leftovers = { pids: [], shimSockets: [] };
  lab.defer('containerd leftovers', async () => {
    removeTrackedNow(seen.shimSockets);
    const stuck = await cgroups.removeAll();
    forgetKill();
    forgetCleanup();
    if (stuck.length > 0) throw new Error(`cgroups still in use: ${stuck.join(', ')}`);
  });

  // tini -s adopts the double-forked shims and reaps them at once (see docker.ts); -g forwards
  // our SIGTERM to containerd's group.
  const tini = which('tini-static') ?? which('tini');
  // biome-ignore format: one flag and its value per line
  const args = [
    '--config', configPath,
    '--root', root,
    '--state', state,
    '--address', socketPath,
    '--log-level', opts.logLevel ?? 'info',
  ];
  const argv = tini ? [tini, '-s', '-g', '--', 'containerd', ...args] : ['containerd', ...args];
  const nodeFs = opts.nodeFs ? Object.entries(opts.nodeFs) : undefined;
  const service = startService({
    lab,
    name: 'containerd',
    dir,
    ...(nodeFs
      ? {
          // unshare(1) execs: the service's pid is in the node's mount namespace.
          command: 'unshare',
          args: [
            '--mount',
            '--propagation',
            'private',
            '--',
            'sh',
            '-ec',
            nodeFsScript(nodeFs),
            'sh',
            ...argv,
          ],
        }
      : { command: argv[0]!, args: argv.slice(1) }),
    stopGraceMs: 10_000,
  });
  // Through the node's root as /proc shows it. An absolute symlink on the way would resolve in
  // this process's root instead: /var/run (→ /run on Debian), where the runtime puts netns files.
  const nodePath = (path: string) =>
    nodeFs ? `/proc/${service.pid}/root${path.replace(/^\/var\/run\//, '/run/')}` : path;
  const cri = criClient(socketPath);
  const ctr = (ctrArgs: readonly string[], runOpts?: RunOptions) =>
    runOk('ctr', ['--address', socketPath, '--namespace', CRI_NAMESPACE, ...ctrArgs], runOpts);

  const removeAllSandboxes = async (): Promise<number> => {
    const { items } = await cri.call('ListPodSandbox', {});
    const errors: string[] = [];
    for (const sandbox of items) {
      try {
        // Learn its netns and cgroup before it goes, in case the removal fails half-way.
        const status = await cri.call('PodSandboxStatus', { pod_sandbox_id: sandbox.id, verbose: true });
        const spec = runtimeSpecOf(status.info);
        if (spec.netns && !nodeFs && !spec.netns.startsWith(`${dir}/`)) netns.add(spec.netns);
        if (spec.cgroupParent) cgroups.track(spec.cgroupParent);
        await cri.call('StopPodSandbox', { pod_sandbox_id: sandbox.id });
        await cri.call('RemovePodSandbox', { pod_sandbox_id: sandbox.id });
      } catch (err) {
        errors.push(messageOf(err));
      }
    }
    if (errors.length > 0) throw new Error(`sandboxes not removed: ${errors.join('; ')}`);
    return items.length;
  };

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      try {
        if (service.running) await removeAllSandboxes();
      } finally {
        cri.close();
        seen = leftoversOf(state, socketPath);
        killTasks(seen.pids);
        await service.stop();
      }
    })();
    return stopping;
  };
  lab.defer('containerd sandboxes', stop);

  // The socket first: a gRPC call that finds no socket puts the channel into a 1 s reconnect backoff.
  await waitFor(() => accepts(socketPath), {
    what: `containerd to listen on ${socketPath}`,
    timeoutMs: 20_000,
    services: [service],
  });
  await waitFor(async () => (await cri.call('Version', { version: 'v1' }, 2000)).runtime_name, {
    what: `containerd's CRI to answer on ${socketPath}`,
    timeoutMs: 20_000,
    services: [service],
  });
  const importImage = async (archive: string) => {
    await ctr(['images', 'import', archive]);
  };
  await importImage(await imageArchive([PAUSE_IMAGE, WORKLOAD_IMAGE], join(dir, 'images')));

  return {
    socketPath,
    dir,
    root,
    state,
    configPath,
    service,
    cri,
    pauseImage: PAUSE_IMAGE.tag,
    workloadImage: WORKLOAD_IMAGE.tag,
    ctr,
    importImage,
    cgroups,
    trackNetns: (path) => {
      // A node of its own unmounts its netns files when its last process goes.
      if (!nodeFs && !path.startsWith(`${dir}/`)) netns.add(path);
    },
    nodePath,
    removeAllSandboxes,
    stop,
  };
}

/** The shell lines that make the node's mount namespace, then exec containerd ("$@"). */
function nodeFsScript(mounts: readonly [string, string][]): string {
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  return [
    ...mounts.map(([node, lab]) => `mkdir -p ${q(node)} && mount --bind ${q(lab)} ${q(node)}`),
    // Shared within this namespace only (it was made private from the host's first).
    'mount --make-rshared /',
    'exec "$@"',
  ].join('\n');
}

function containerdConfig(
  c: ContainerdOptions & { root: string; runcRoot: string; pauseImage: string },
): string {
  const cri = '[plugins."io.containerd.grpc.v1.cri"]';
  const q = JSON.stringify;
  return [
    'version = 2',
    '',
    cri,
    `  sandbox_image = ${q(c.pauseImage)}`,
    // Root lacks CAP_SYS_RESOURCE here: runc fails setting the sandbox's oom_score_adj of -998
    // ("can't get final child's PID from pipe") unless containerd clamps it to our own.
    '  restrict_oom_score_adj = true',
    '  max_container_log_line_size = 16384',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    `  netns_mounts_under_state_dir = ${c.netnsUnderStateDir ?? true}`,
    `${cri.slice(0, -1)}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `${cri.slice(0, -1)}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `${cri.slice(0, -1)}.containerd.runtimes.runc.options]`,
    '  SystemdCgroup = false',
    `  Root = ${q(c.runcRoot)}`,
    `${cri.slice(0, -1)}.cni]`,
    `  bin_dir = ${q(c.cniBinDir)}`,
    `  conf_dir = ${q(c.cniConfDir)}`,
    '  max_conf_num = 1',
    '',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(join(c.root, 'opt'))}`,
    '',
  ].join('\n');
}

/** The runtime's NetworkReady condition (CRI Status): false while no CNI config is loaded. */
export async function networkCondition(
  cri: CriClient,
): Promise<{ ready: boolean; reason: string; message: string }> {
  const { status } = await cri.call('Status', {});
  const c = status.conditions.find((x) => x.type === 'NetworkReady');
  // No such condition: the runtime does not gate pods on it.
  return { ready: c?.status ?? true, reason: c?.reason ?? '', message: c?.message ?? '' };
}

interface RuntimeSpecInfo {
  netns?: string;
  cgroupParent?: string;
}

/** The netns path and cgroup parent from a verbose PodSandboxStatus's `info` (containerd's JSON). */
export function runtimeSpecOf(info: Record<string, string>): RuntimeSpecInfo {
  try {
    const parsed = JSON.parse(info['info'] ?? '{}') as {
      runtimeSpec?: { linux?: { cgroupsPath?: string; namespaces?: { type?: string; path?: string }[] } };
    };
    const linux = parsed.runtimeSpec?.linux;
    const netns = linux?.namespaces?.find((n) => n.type === 'network')?.path;
    const cgroupsPath = linux?.cgroupsPath;
    // cgroupfs: `<cgroup_parent>/<sandbox id>`.
    const cgroupParent = cgroupsPath?.includes('/')
      ? cgroupsPath.slice(0, cgroupsPath.lastIndexOf('/'))
      : undefined;
    return { ...(netns ? { netns } : {}), ...(cgroupParent ? { cgroupParent } : {}) };
  } catch {
    return {};
  }
}

interface Leftovers {
  /** Init processes of the tasks containerd's state dir knows. */
  pids: number[];
  /** Their shims' sockets in /run/containerd/s. */
  shimSockets: string[];
}

/**
 * What the tasks of this containerd would leave if it and its shims died: their init processes
 * (a PID namespace dies with its init) and the shims' sockets, which containerd 1.6 names
 * sha256(<address>/<namespace>/<id>) under /run/containerd/s.
 */
function leftoversOf(state: string, socketPath: string): Leftovers {
  const tasks = join(state, 'io.containerd.runtime.v2.task', CRI_NAMESPACE);
  let ids: string[];
  try {
    ids = readdirSync(tasks);
  } catch {
    return { pids: [], shimSockets: [] };
  }
  const pids: number[] = [];
  for (const id of ids) {
    try {
      const pid = Number(readFileSync(join(tasks, id, 'init.pid'), 'utf8'));
      if (pid > 0) pids.push(pid);
    } catch {
      // Not started, or gone meanwhile.
    }
  }
  const shimSockets = ids.map(
    (id) =>
      `/run/containerd/s/${createHash('sha256').update(`${socketPath}/${CRI_NAMESPACE}/${id}`).digest('hex')}`,
  );
  return { pids, shimSockets };
}

function accepts(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function killTasks(pids: readonly number[]): void {
  for (const pid of pids) signal(pid, 'SIGKILL');
}

function removeShimSockets(sockets: readonly string[]): void {
  for (const s of sockets) rmSync(s, { force: true });
}

/** Unmounts (lazily: this may run in the exit handler) and deletes a bind-mounted netns file. */
function removeNetnsNow(path: string): void {
  try {
    // The mount table names /run/netns/…, the runtime /var/run/netns/….
    const real = realpathSync(path);
    // Synchronous: the exit handler cannot wait for a child process.
    if (mountsUnder(real).length > 0) spawnSync('umount', ['-l', real]);
    rmSync(real, { force: true });
  } catch {
    // Gone already, or still busy: nothing more to do here.
  }
}
