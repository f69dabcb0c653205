import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type RunOptions, type RunResult, run, runOk } from './exec.ts';
import { onLastResort } from './lastresort.ts';
import type { Lab } from './scope.ts';

export type Probe = { ok: true } | { ok: false; reason: string };
export type HostName = 'h1' | 'h2';

export interface NetHost {
  readonly name: HostName;
  readonly netns: string;
  /** The host's link to the switch (what a real node calls eth0). */
  readonly uplink: string;
  readonly address: string;
  readonly peerAddress: string;
}

export interface NetLab {
  /** Random per lab: in every netns name and in every link name that is not fixed by the spec. */
  readonly suffix: string;
  readonly switchNetns: string;
  readonly hosts: readonly [NetHost, NetHost];
  host(name: HostName): NetHost;
  /** In each host: bridge br<id> and VXLAN vx<id> (VNI id) flooding to the other host. */
  addSegment(id: number): Promise<void>;
  /** A container netns with eth0 (address cidr) on br<segment> of host; returns the netns name. */
  addContainer(host: HostName, segment: number, cidr: string): Promise<string>;
  /** Runs argv inside a netns; resolves with the exit status whatever it is. */
  exec(netns: string, argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Every netns this lab created and has not deleted yet. */
  namespaces(): string[];
  destroy(): Promise<void>;
}

export interface NetLabOptions {
  lab: Lab;
}

// TEST-NET-1 (RFC 5737): documentation addresses, used only inside the lab's own namespaces.
const HOST_ADDRESSES = { h1: '192.0.2.1', h2: '192.0.2.2' } as const;

/**
 * Two "hosts" (netns h1, h2) whose uplinks meet on a plain bridge in a "switch" netns: the shape
 * of two nodes on one L2 network. Every link is created directly inside a lab netns, so nothing
 * ever appears in the root netns and two labs cannot collide.
 */
export async function startNetLab(opts: NetLabOptions): Promise<NetLab> {
  const suffix = randomBytes(3).toString('hex');
  const switchNetns = `nw-sw-${suffix}`;
  const uplink = `up${suffix}`;
  const bridge = `sw${suffix}`;
  const made: string[] = [];
  const segments = new Set<number>();
  let containers = 0;

  const mkHost = (name: HostName, peer: HostName): NetHost => ({
    name,
    netns: `nw-${name}-${suffix}`,
    uplink,
    address: HOST_ADDRESSES[name],
    peerAddress: HOST_ADDRESSES[peer],
  });
  const hosts = [mkHost('h1', 'h2'), mkHost('h2', 'h1')] as const;
  const host = (name: HostName): NetHost => {
    const h = hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  };

  // -force: go on past a netns that a failed setup never created.
  const deleteAll = (names: readonly string[]) => lines(names.map((n) => `netns del ${n}`));
  const forget = onLastResort(() => {
    spawnSync('ip', ['-force', '-batch', '-'], { input: deleteAll(made) });
  }, 'cleanup');
  const destroy = async () => {
    const names = made.splice(0);
    forget();
    if (names.length === 0) return;
    await run('ip', ['-force', '-batch', '-'], { input: deleteAll(names) });
    const left = (await listNetns()).filter((n) => names.includes(n));
    if (left.length > 0) throw new Error(`netns left behind: ${left.join(', ')}`);
  };
  opts.lab.defer(`netlab ${suffix}`, destroy);

  // Recorded before creation, so a failure half-way still deletes whatever exists.
  made.push(switchNetns, ...hosts.map((h) => h.netns));
  await ip([
    ...made.map((n) => `netns add ${n}`),
    ...hosts.map(
      (h, i) =>
        `link add ${uplink} netns ${h.netns} type veth peer name s${i + 1}${suffix} netns ${switchNetns}`,
    ),
  ]);
  await ip(
    [
      'link set lo up',
      `link add ${bridge} type bridge`,
      `link set ${bridge} up`,
      ...hosts.flatMap((_, i) => [
        `link set s${i + 1}${suffix} master ${bridge}`,
        `link set s${i + 1}${suffix} up`,
      ]),
    ],
    switchNetns,
  );
  await Promise.all(
    hosts.map((h) =>
      ip(['link set lo up', `addr add ${h.address}/24 dev ${uplink}`, `link set ${uplink} up`], h.netns),
    ),
  );

  return {
    suffix,
    switchNetns,
    hosts,
    host,
    addSegment: async (id) => {
      if (!Number.isInteger(id) || id < 1 || id > 0xffffff) throw new Error(`bad segment id ${id}`);
      if (segments.has(id)) throw new Error(`segment ${id} exists`);
      segments.add(id);
      await Promise.all(
        hosts.map(async (h) => {
          await ip(
            [
              `link add br${id} type bridge`,
              `link add vx${id} type vxlan id ${id} local ${h.address} dstport 4789 dev ${uplink} nolearning`,
              `link set vx${id} master br${id}`,
              `link set vx${id} up`,
              `link set br${id} up`,
            ],
            h.netns,
          );
          // With learning off, the all-zero entry is what carries broadcast and unknown unicast
          // (ARP included) to the peer host.
          await runOk('bridge', [
            '-netns',
            h.netns,
            'fdb',
            'append',
            '00:00:00:00:00:00',
            'dev',
            `vx${id}`,
            'dst',
            h.peerAddress,
          ]);
        }),
      );
    },
    addContainer: async (hostName, segment, cidr) => {
      const h = host(hostName);
      if (!segments.has(segment)) throw new Error(`segment ${segment} not added`);
      if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr)) throw new Error(`bad address ${cidr}`);
      const n = ++containers;
      const netns = `nw-c${n}-${suffix}`;
      const veth = `c${n}${suffix}`;
      made.push(netns);
      await ip([
        `netns add ${netns}`,
        `link add ${veth} netns ${h.netns} type veth peer name eth0 netns ${netns}`,
      ]);
      await Promise.all([
        ip([`link set ${veth} master br${segment}`, `link set ${veth} up`], h.netns),
        ip(['link set lo up', `addr add ${cidr} dev eth0`, 'link set eth0 up'], netns),
      ]);
      return netns;
    },
    exec: (netns, argv, runOpts) => run('nsenter', [`--net=/run/netns/${netns}`, '--', ...argv], runOpts),
    namespaces: () => [...made],
    destroy,
  };
}

/** Runs iproute2 commands as one `ip -batch -` (one process instead of one per command). */
async function ip(commands: readonly string[], netns?: string): Promise<void> {
  await runOk('ip', [...(netns ? ['-netns', netns] : []), '-batch', '-'], { input: lines(commands) });
}

function lines(commands: readonly string[]): string {
  return `${commands.join('\n')}\n`;
}

export async function listNetns(): Promise<string[]> {
  const out = await runOk('ip', ['netns', 'list']);
  // Lines look like "name" or "name (id: 3)".
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

/** Whether this kernel can make VXLAN devices (what netlab's segments are built from). */
export function kernelHasVxlan(): Promise<Probe> {
  return probe('VXLAN', ['link add vx42 type vxlan id 42 local 192.0.2.1 dstport 4789', 'link set vx42 up']);
}

/** Whether this kernel has 802.1Q VLAN devices (the production uplink). */
export function kernelHasVlan(): Promise<Probe> {
  return probe('802.1Q VLAN devices', [
    'link add a0 type veth peer name b0',
    'link add link a0 name a0.10 type vlan id 10',
  ]);
}

/** Whether bridges here can filter by VLAN (`vlan_filtering 1`). */
export function kernelHasBridgeVlanFiltering(): Promise<Probe> {
  return probe('bridge VLAN filtering', ['link add br0 type bridge vlan_filtering 1']);
}

// Probes run in a throwaway netns so a half-made device never lands in the root netns.
async function probe(what: string, commands: readonly string[]): Promise<Probe> {
  const netns = `nw-probe-${randomBytes(3).toString('hex')}`;
  const added = await run('ip', ['netns', 'add', netns]);
  if (added.code !== 0)
    return { ok: false, reason: `${what}: cannot create a netns: ${added.stderr.trim()}` };
  try {
    const res = await run('ip', ['-netns', netns, '-batch', '-'], { input: lines(commands) });
    if (res.code === 0) return { ok: true };
    return {
      ok: false,
      reason: `${what} unsupported by kernel ${await kernelRelease()}: ${res.stderr.trim()}`,
    };
  } finally {
    await run('ip', ['netns', 'del', netns]);
  }
}

async function kernelRelease(): Promise<string> {
  return (await run('uname', ['-r'])).stdout.trim();
}
