import { createHash } from 'node:crypto';
import { IpError, jsonLines, type LinkInfo, type NetnsRunner, netnsRunner } from './exec.ts';
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

/**
 * Container end: MTU, address, routes, up; host end onto its bridge unless createPair did that
 * already (`hostAttached`). Both sides at once.
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
  const results = await Promise.allSettled([
    hostAttached ? Promise.resolve('') : host.ip([hostAttachCommand(pair.hostName, c)]),
    netnsRunner(req.netns).ip([
      ['link', 'set', req.ifName, 'mtu', mtu, 'up'],
      ['addr', 'add', c.address, 'dev', req.ifName, ...v6],
      ...c.routes.map((r) => ['route', 'add', r.dst, ...(r.gw ? ['via', r.gw] : []), 'dev', req.ifName]),
    ]),
  ]);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
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
