import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IpError, jsonLines, type LinkInfo, type NetnsRunner, netnsName, netnsRunner } from './exec.ts';
import { hostVethName } from './names.ts';

/**
 * A pod's interface: a veth pair, host end on the segment's bridge, container end created inside
 * the pod's netns under its final name (CNI_IFNAME). In two stages so that ADD can overlap them
 * with other work: `createPair` needs nothing from IPAM (it runs while the address is being
 * allocated), `configurePair` then sets both ends at once — one `ip -b -` per side.
 */

export interface RouteSpec {
  readonly dst: string;
  readonly gw?: string | undefined;
}

export interface PairRequest {
  readonly containerID: string;
  readonly ifName: string;
  readonly netns: string;
}

export interface Pair {
  readonly hostName: string;
  readonly hostMac: string;
  readonly containerMac: string;
}

export interface PairConfig {
  readonly bridge: string;
  readonly mtu: number;
  /** "10.0.0.5/24". */
  readonly address: string;
  readonly family: 4 | 6;
  readonly routes: readonly RouteSpec[];
}

/**
 * Locally administered unicast MACs derived from the attachment: known without reading them back
 * (one command less per ADD), and stable for CHECK.
 */
export function pairMacs(containerID: string, ifName: string): { host: string; container: string } {
  const h = createHash('sha256').update(`${containerID}/${ifName}`).digest();
  const mac = (offset: number) =>
    ['02', ...[...h.subarray(offset, offset + 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
  return { host: mac(11), container: mac(16) };
}

/** Where the host end goes, when known before the address is. */
export interface HostAttach {
  readonly bridge: string;
  readonly mtu: number;
}

const hostAttachCommand = (hostName: string, a: HostAttach) => [
  'link',
  'set',
  hostName,
  'mtu',
  String(a.mtu),
  'master',
  a.bridge,
  'up',
];

/**
 * Makes the pair (container end already in the netns, named CNI_IFNAME, down) and, when `attach`
 * is given, puts the host end on its bridge in the same batch.
 */
export async function createPair(host: NetnsRunner, req: PairRequest, attach?: HostAttach): Promise<Pair> {
  const hostName = hostVethName(req.containerID, req.ifName);
  const macs = pairMacs(req.containerID, req.ifName);
  try {
    await host.ip([
      [
        'link',
        'add',
        hostName,
        'address',
        macs.host,
        'type',
        'veth',
        'peer',
        'name',
        req.ifName,
        'address',
        macs.container,
        'netns',
        req.netns,
      ],
      ...(attach ? [hostAttachCommand(hostName, attach)] : []),
    ]);
  } catch (err) {
    // "File exists": the pair is someone else's (a repeated ADD) — leave it. Otherwise the add
    // or the attach failed: remove what may exist.
    if (!(err instanceof IpError && err.exists)) await removeHostVeth(host, hostName).catch(() => false);
    throw err;
  }
  return { hostName, hostMac: macs.host, containerMac: macs.container };
}

let sysctlPath: string | null | undefined;
function sysctl(): string | undefined {
  if (sysctlPath === undefined) {
    sysctlPath = null;
    for (const dir of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
      if (dir && existsSync(join(dir, 'sysctl'))) {
        sysctlPath = join(dir, 'sysctl');
        break;
      }
    }
  }
  return sysctlPath ?? undefined;
}

/**
 * Why configurePair cannot announce an IPv4 address (gratuitous ARP), or undefined when it can:
 * it needs the netns by name (runtimes put theirs in /run/netns) and the sysctl binary.
 */
export function garpProblem(netns: string): string | undefined {
  if (!netnsName(netns)) return `the netns ${netns} is not under /run/netns`;
  if (!sysctl()) return 'sysctl (procps) is not installed';
  return undefined;
}

/**
 * Container end: MTU, up, address, routes; host end onto its bridge unless createPair did that
 * already (`hostAttached`), in parallel.
 */
export async function configurePair(
  host: NetnsRunner,
  req: PairRequest,
  pair: Pair,
  c: PairConfig,
  hostAttached = false,
): Promise<void> {
  const mtu = String(c.mtu);
  const v6 = c.family === 6 ? ['nodad'] : [];
  const inside = () =>
    netnsRunner(req.netns).ip([
      ['link', 'set', req.ifName, 'mtu', mtu, 'up'],
      ['addr', 'add', c.address, 'dev', req.ifName, ...v6],
      ...c.routes.map((r) => ['route', 'add', r.dst, ...(r.gw ? ['via', r.gw] : []), 'dev', req.ifName]),
    ]);
  if (hostAttached) {
    await inside();
    return;
  }
  const results = await Promise.allSettled([host.ip([hostAttachCommand(pair.hostName, c)]), inside()]);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

/**
 * Gratuitous ARP for the pod's IPv4 address, after the ADD answered (it must not delay it: it
 * costs a process, `sysctl`, in the pod's netns). The kernel sends one itself for every address
 * of an interface with `arp_notify` set, when it goes up or changes its MAC. Going up was too early
 * anyway: the host end's bridge port forwards only once the kernel's link watcher has seen the
 * carrier, and drops the frame until then. So `arp_notify` is set inside the netns (by the same
 * `ip` process: `netns exec … sysctl`), then the MAC is set again to its own value:
 * NETDEV_CHANGEADDR, announced through a forwarding port. No arping.
 */
export async function announceAddress(req: PairRequest, pair: Pair): Promise<void> {
  const named = netnsName(req.netns);
  const bin = sysctl();
  if (named === undefined || bin === undefined) return;
  await netnsRunner(req.netns).ip([
    ['netns', 'exec', named, bin, '-qw', `net/ipv4/conf/${req.ifName}/arp_notify=1`],
    ['link', 'set', req.ifName, 'address', pair.containerMac],
  ]);
}

/** Deletes the host end (the kernel removes its peer); a missing link is success. */
export async function removeHostVeth(host: NetnsRunner, hostName: string): Promise<boolean> {
  try {
    await host.ip([['link', 'del', hostName]]);
    return true;
  } catch (err) {
    if (err instanceof IpError && err.notFound) return false;
    throw err;
  }
}

export interface ContainerState {
  readonly link: LinkInfo | undefined;
  readonly routes: { dst: string; gateway?: string; dev?: string }[];
}

/** The container end as the kernel sees it (for CHECK); undefined link when it is missing. */
export async function readContainerSide(
  netns: string,
  ifName: string,
  family: 4 | 6,
): Promise<ContainerState> {
  const inside = netnsRunner(netns);
  try {
    const show = ['route', 'show', 'dev', ifName];
    // `ip route` lists IPv4 only; IPv6 routes need the `-6` global option (not allowed per batch line).
    const [out, out6] = await Promise.all([
      inside.ip([['addr', 'show', 'dev', ifName], ...(family === 4 ? [show] : [])], { json: true }),
      family === 6 ? inside.ip([show], { json: true, family: 6 }) : undefined,
    ]);
    const [links, routes4] = jsonLines<unknown[]>(out);
    const routes = family === 4 ? routes4 : out6 === undefined ? undefined : jsonLines<unknown[]>(out6)[0];
    return {
      link: (links as LinkInfo[] | undefined)?.[0],
      routes: (routes as ContainerState['routes'] | undefined) ?? [],
    };
  } catch (err) {
    if (err instanceof IpError && err.notFound) return { link: undefined, routes: [] };
    throw err;
  }
}

/**
 * The link group the agent moves host veth ends into just before deleting them together. A veth
 * delete holds the kernel's RTNL lock through an RCU grace period (10–20 ms here), stalling every
 * other link, address and route change on the node — the ADDs running meanwhile. `ip link del
 * group G` unregisters all of a group's links at once, paying that wait once per batch.
 */
export const REAP_GROUP = 0x6e77_6472;

/**
 * Deletes host veth ends in batches: requests that arrive while a batch runs go into the next
 * one. A missing link is success. When the batch fails (other than for missing links), each of
 * its links is deleted alone, so each caller learns its own outcome.
 */
export class VethReaper {
  readonly #host: NetnsRunner;
  #next: { names: string[]; done: Promise<void>; resolve: () => void } | undefined;
  #running: Promise<void> | undefined;
  readonly #failed = new Map<string, unknown>();

  constructor(host: NetnsRunner) {
    this.#host = host;
  }

  async remove(name: string): Promise<void> {
    let batch = this.#next;
    if (!batch) {
      let resolve!: () => void;
      const done = new Promise<void>((r) => {
        resolve = r;
      });
      batch = { names: [], done, resolve };
      this.#next = batch;
      // After this turn: the removals asked for meanwhile join the batch.
      setImmediate(() => void this.#schedule());
    }
    batch.names.push(name);
    await batch.done;
    const failed = this.#failed.get(name);
    if (failed) {
      this.#failed.delete(name);
      throw failed;
    }
  }

  async #schedule(): Promise<void> {
    while (this.#running) await this.#running;
    const batch = this.#next;
    if (!batch) return;
    this.#next = undefined;
    this.#running = this.#run(batch.names).finally(() => {
      this.#running = undefined;
      batch.resolve();
    });
  }

  async #run(names: readonly string[]): Promise<void> {
    const group = String(REAP_GROUP);
    try {
      await this.#host.ip(
        [...names.map((n) => ['link', 'set', 'dev', n, 'group', group]), ['link', 'del', 'group', group]],
        { force: true },
      );
      return;
    } catch {
      // Some line failed: a link already gone (fine), or the delete. Each one alone tells which.
    }
    await Promise.all(
      names.map((n) =>
        removeHostVeth(this.#host, n).then(
          () => undefined,
          (err: unknown) => {
            this.#failed.set(n, err);
          },
        ),
      ),
    );
  }
}
