import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { SegmentHealth } from '../../../ipam-cni/net/segment.ts';
import type { ShimCall, ShimRun } from '../../support/ipam-cni/run-plugin.ts';
import type { RunResult } from '../exec.ts';
import { freePort } from '../ports.ts';
import type { Lab } from '../scope.ts';
import { waitFor } from '../wait.ts';
import { type VmBundles, vmBundles } from './bundle.ts';
import { type VmKernel, vmKernel } from './kernel.ts';
import { listening, startVm, type Vm } from './qemu.ts';

/**
 * Two Kubernetes "nodes" on one L2 network, each a qemu VM with a kernel that has 802.1Q: their
 * NICs (eth0) are the two ends of one link over loopback TCP, untagged addresses 192.0.2.1 and
 * 192.0.2.2 on it (TEST-NET-1), one etcd in n1 on its untagged address, and per node the project's
 * CNI agent (guest-agent.ts) with uplink.master eth0, called through the shim as a runtime calls it.
 */

export type VlanNodeName = 'n1' | 'n2';

export interface AgentReady {
  readonly pid: number;
  /** Seconds since the agent process started (module loading included). */
  readonly uptime: number;
  readonly replayed: number;
  /** Segments ensured by the time the socket served (adopted from links that already existed). */
  readonly segments: number;
  readonly ms: number;
}

/** One link of `ip -d -j link show`, the fields the lab reads. */
export interface VmLink {
  readonly ifindex: number;
  readonly ifname: string;
  readonly flags: string[];
  readonly master?: string;
  readonly link?: string;
  readonly address?: string;
  readonly linkinfo?: {
    readonly info_kind?: string;
    readonly info_data?: { readonly id?: number; readonly protocol?: string };
  };
}

export interface BackgroundExit {
  readonly code: number | null;
  readonly signal: string | null;
  /** stdout and stderr, interleaved. */
  readonly output: string;
}

export interface VlanNode {
  readonly name: VlanNodeName;
  /** The agent's node name (IPAM handles and logs). */
  readonly node: string;
  readonly vm: Vm;
  readonly nic: 'eth0';
  readonly address: string;
  readonly socket: string;
  readonly journalDir: string;
  exec(argv: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  ok(argv: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** The shim, spawned in the VM with the CNI_* env and the conf on stdin (run-plugin.ts). */
  cni(call: Omit<ShimCall, 'argv'>): Promise<ShimRun>;
  startAgent(): Promise<AgentReady>;
  /** SIGTERM: a clean stop (an upgrade); SIGKILL: a crash. */
  stopAgent(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** agent.health() as of the agent's last tick. */
  health(): Promise<SegmentHealth[]>;
  /** One tick now, then agent.health(). */
  tick(): Promise<SegmentHealth[]>;
  /** Until the DELs answered so far are torn down. */
  idle(): Promise<void>;
  /** A process in the background, in its own process group. */
  spawn(name: string, argv: readonly string[]): Promise<void>;
  /** Stops a background process (its group); resolves with its status and output. */
  stop(name: string, signal?: NodeJS.Signals): Promise<BackgroundExit>;
  links(): Promise<Map<string, VmLink>>;
}

export interface VlanLab {
  readonly kernel: VmKernel;
  readonly bundles: VmBundles;
  readonly nodes: readonly [VlanNode, VlanNode];
  /** etcd's client URL, inside the VMs. */
  readonly etcd: string;
  /** The IPAM store's key prefix. */
  readonly prefix: string;
  /** Adds IPAM pools through n1's agent (it must be running). */
  addPools(pools: readonly Record<string, unknown>[]): Promise<void>;
  etcdctl(args: readonly string[]): Promise<string>;
  /** Wall time of the start, in seconds: kernel, boot, etcd. */
  readonly startSeconds: { kernel: number; boot: number; etcd: number };
}

export interface VlanLabOptions {
  readonly lab: Lab;
  readonly log?: (line: string) => void;
  /** Tick period of the agents (their own timer; tests also tick explicitly). */
  readonly peerSyncIntervalMs?: number;
  /** More programs for the VMs, bundled with the lab's (name → source): `bundles.extra[name]`. */
  readonly bundle?: Readonly<Record<string, string>>;
}

const ADDRESSES = { n1: '192.0.2.1', n2: '192.0.2.2' } as const;
const MACS = { n1: '52:54:00:12:00:01', n2: '52:54:00:12:00:02' } as const;

export async function startVlanLab(o: VlanLabOptions): Promise<VlanLab> {
  const log = o.log ?? (() => {});
  let t = performance.now();
  const lap = () => {
    const s = (performance.now() - t) / 1000;
    t = performance.now();
    return Math.round(s * 10) / 10;
  };
  const [kernel, bundles] = await Promise.all([vmKernel(log), vmBundles(o.bundle)]);
  const kernelSeconds = lap();
  const port = await freePort();
  const vm1 = startVm({
    lab: o.lab,
    kernel,
    bundles,
    compileCache: join(bundles.cache, 'v8-n1'),
    name: 'n1',
    link: { role: 'listen', port, mac: MACS.n1 },
  });
  // The second VM connects to the first one's end of the link, which must be listening first.
  await waitFor(() => listening(port), { what: `qemu n1 listening on 127.0.0.1:${port}`, timeoutMs: 30_000 });
  const vm2 = startVm({
    lab: o.lab,
    kernel,
    bundles,
    compileCache: join(bundles.cache, 'v8-n2'),
    name: 'n2',
    link: { role: 'connect', port, mac: MACS.n2 },
  });
  const vms = await Promise.all([vm1, vm2]);
  const bootSeconds = lap();
  const etcd = `http://${ADDRESSES.n1}:2379`;
  const prefix = `/nodeward-vlan-${randomBytes(4).toString('hex')}/ipam/v1/`;

  const nodes = vms.map((vm) => {
    const name = vm.name as VlanNodeName;
    const address = ADDRESSES[name];
    const socket = '/run/nodeward/cni.sock';
    const journalDir = '/var/lib/nodeward/cni-journal';
    const agentCall = <T>(op: string, args?: unknown, timeoutMs = 60_000) =>
      vm.call<T>('agent.call', { op, args, timeoutMs }, timeoutMs + 5000);
    const node: VlanNode = {
      name,
      node: `vm-${name}`,
      vm,
      nic: 'eth0',
      address,
      socket,
      journalDir,
      exec: (argv, opts) => vm.exec(argv, opts),
      ok: (argv, opts) => vm.ok(argv, opts),
      cni: (call) => vm.call<ShimRun>('cni', call, 120_000),
      startAgent: () =>
        vm
          .call<{ ready: AgentReady }>(
            'agent.start',
            {
              etcd,
              prefix,
              node: `vm-${name}`,
              cni: {
                socket,
                journalDir,
                uplink: { master: 'eth0' },
                peerSyncInterval: o.peerSyncIntervalMs ?? 5000,
                // The shim's wait for one answer: TCG is ≈ 10× slower.
                timeout: 60_000,
              },
            },
            // Loading etcd3, zod and the agent is the slowest start in a VM: 20–60 s on a busy host.
            300_000,
          )
          .then((r) => r.ready),
      stopAgent: async (signal = 'SIGTERM') => {
        await vm.call('agent.stop', { signal }, 60_000);
      },
      health: () => agentCall<SegmentHealth[]>('health'),
      tick: () => agentCall<SegmentHealth[]>('tick'),
      idle: async () => {
        await agentCall('idle');
      },
      spawn: async (n, argv) => {
        await vm.call('spawn', { name: n, argv });
      },
      stop: (n, signal) => vm.call<BackgroundExit>('stop', { name: n, signal }, 45_000),
      links: async () => {
        const all = JSON.parse(await vm.ok(['ip', '-d', '-j', 'link', 'show'])) as VmLink[];
        return new Map(all.map((l) => [l.ifname, l]));
      },
    };
    return node;
  }) as [VlanNode, VlanNode];

  await Promise.all(
    nodes.map((n) =>
      n.ok(['ip', '-b', '-'], {
        input: `link set lo up\naddr add ${n.address}/24 dev eth0\nlink set eth0 up\n`,
      }),
    ),
  );
  const [n1, n2] = nodes;
  // biome-ignore format: one flag and its value per line
  await n1.spawn('etcd', [
    'etcd', '--name', 'n1', '--data-dir', '/tmp/etcd',
    '--listen-client-urls', `${etcd},http://127.0.0.1:2379`,
    '--advertise-client-urls', etcd,
    '--listen-peer-urls', 'http://127.0.0.1:2380',
    '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
    '--initial-cluster', 'n1=http://127.0.0.1:2380',
    '--logger', 'zap',
  ]);
  const etcdctl = (args: readonly string[]) =>
    n1.ok(['etcdctl', `--endpoints=${etcd}`, '--dial-timeout=5s', '--command-timeout=20s', ...args]);
  // Asked from n2: the untagged link between the VMs carries it.
  await waitFor(
    async () =>
      (
        await n2.exec(['etcdctl', `--endpoints=${etcd}`, '--dial-timeout=2s', 'endpoint', 'health'], {
          timeoutMs: 10_000,
        })
      ).code === 0,
    { what: `etcd at ${etcd} healthy from n2`, timeoutMs: 90_000, intervalMs: 500 },
  );
  const etcdSeconds = lap();
  return {
    kernel,
    bundles,
    nodes,
    etcd,
    prefix,
    addPools: async (pools) => {
      // Through n1's agent: its store is open, and a process of its own would load etcd3 again.
      await n1.vm.call('agent.call', { op: 'pools.add', args: { pools }, timeoutMs: 120_000 }, 125_000);
    },
    etcdctl,
    startSeconds: { kernel: kernelSeconds, boot: bootSeconds, etcd: etcdSeconds },
  };
}
