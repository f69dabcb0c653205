import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { gatewayMac, hostVethName } from '../../ipam-cni/net/names.ts';
import { Lab } from '../lab/scope.ts';
import { vmSkipReason } from '../lab/vm/kernel.ts';
import {
  type BackgroundExit,
  startVlanLab,
  type VlanLab,
  type VlanNode,
  type VmLink,
} from '../lab/vm/vlan-lab.ts';
import { waitFor } from '../lab/wait.ts';
import type { ShimRun } from '../support/ipam-cni/run-plugin.ts';
import type { VlanUplinkOutcome } from './uplink-scenario.ts';

/**
 * VLAN mode on a kernel that has 802.1Q (this machine's has none): two qemu VMs, each a node
 * running the project's CNI agent with uplink.master eth0, the shim called as a runtime calls it,
 * one etcd in n1 on the untagged network. Pools: v100 (VLAN 100), v200 (VLAN 200, the same
 * subnet: allowOverlap), v300 (VLAN 300 with nodeGateway), v400 (VLAN 400, for a wrong link).
 */

const reason = vmSkipReason();
if (reason) {
  // Run on purpose (npm run test:vlan, CI): a skip would prove nothing.
  if (process.env['CI']) throw new Error(`VLAN VM lab cannot run: ${reason}`);
  console.warn(`[vlan] VM lab skipped: ${reason}`);
}

const lab = new Lab();
let vl: VlanLab;
let n1: VlanNode;
let n2: VlanNode;

afterAll(async () => {
  await lab.cleanup();
});

interface Pod {
  readonly name: string;
  readonly node: VlanNode;
  readonly pool: string;
  readonly path: string;
  readonly containerID: string;
  result?: Record<string, unknown>;
  ip?: string;
}

let pods = 0;
const all: Pod[] = [];

async function newPod(node: VlanNode, pool: string): Promise<Pod> {
  const name = `p${++pods}`;
  // In `all` in the order of the calls, whichever VM answers first.
  const pod: Pod = { name, node, pool, path: `/run/netns/${name}`, containerID: `cid-${name}` };
  all.push(pod);
  await node.ok(['ip', '-b', '-'], { input: `netns add ${name}\nnetns exec ${name} ip link set lo up\n` });
  return pod;
}

const conf = (node: VlanNode, pool: string, extra: Record<string, unknown> = {}) => ({
  cniVersion: '1.1.0',
  name: 'vlanlab',
  type: 'nodeward',
  socket: node.socket,
  journalDir: node.journalDir,
  timeoutMs: 60_000,
  ipam: { type: 'nodeward', pool },
  ...extra,
});

const call = (pod: Pod, command: string, extra: Record<string, unknown> = {}): Promise<ShimRun> =>
  pod.node.cni({
    command,
    containerID: pod.containerID,
    netns: pod.path,
    ifName: 'eth0',
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=lab;K8S_POD_NAME=${pod.name}`,
    conf: conf(pod.node, pod.pool, extra),
  });

async function add(pod: Pod): Promise<Pod> {
  const r = await call(pod, 'ADD');
  expect(r.code, `${pod.name} on ${pod.node.name}: ${r.stdout}${r.stderr}`).toBe(0);
  pod.result = r.json;
  pod.ip = (r.json!['ips'] as { address: string }[])[0]!.address.split('/')[0]!;
  return pod;
}

const inPod = (pod: Pod, argv: readonly string[], timeoutMs?: number) =>
  pod.node.exec(['nsenter', `--net=${pod.path}`, '--', ...argv], { timeoutMs: timeoutMs ?? 30_000 });

/** One echo answered within 3 s (ARP included); a false answer tries twice. */
const ping = async (from: Pod, to: string) =>
  Number(
    / (\d+) received/.exec((await inPod(from, ['ping', '-c', '2', '-W', '3', '-w', '6', to])).stdout)?.[1] ??
      0,
  ) > 0;

/** A TCP server in the pod answering "ok <pod>" to each connection, in the background. */
async function listen(pod: Pod): Promise<void> {
  await pod.node.spawn(`listen-${pod.name}`, [
    'nsenter',
    `--net=${pod.path}`,
    '--',
    'busybox',
    'nc',
    '-ll',
    '-p',
    '8080',
    '-e',
    'echo',
    `ok ${pod.name}`,
  ]);
  await waitFor(async () => (await inPod(pod, ['busybox', 'netstat', '-ltn'])).stdout.includes(':8080 '), {
    what: `listener in ${pod.name}`,
    timeoutMs: 30_000,
    intervalMs: 200,
  });
}

/** A TCP connection from the node itself (as the kubelet's probes): what the pod said, or why not. */
async function tcpFromNode(node: VlanNode, ip: string): Promise<string> {
  const r = await node.exec(['busybox', 'nc', '-w', '5', ip, '8080']);
  return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : `failed (${r.code}): ${r.stderr.trim()}`;
}

/** tcpdump on the node's NIC (link-level headers) while `during` runs; its output lines. */
async function capture(node: VlanNode, during: () => Promise<unknown>): Promise<string[]> {
  // etcd's untagged traffic left out; everything else on the wire is kept.
  await node.spawn('tcpdump', ['tcpdump', '-i', node.nic, '-nn', '-e', '-l', 'not', 'port', '2379']);
  await waitFor(
    async () => (await node.exec(['cat', '/tmp/bg-tcpdump.log'])).stdout.includes('listening on'),
    {
      what: `tcpdump on ${node.name}`,
      timeoutMs: 30_000,
      intervalMs: 200,
    },
  );
  let out: BackgroundExit;
  try {
    await during();
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    out = await node.stop('tcpdump', 'SIGINT');
  }
  return out.output.split('\n').filter((l) => /\d\d:\d\d:\d\d/.test(l));
}

async function handles(): Promise<string[]> {
  const out = await vl.etcdctl(['get', '--prefix', '--keys-only', `${vl.prefix}handles/`]);
  return out.split('\n').filter(Boolean);
}

const linkNamed = (links: Map<string, VmLink>, name: string): VmLink => {
  const l = links.get(name);
  if (!l) throw new Error(`no link ${name}: ${[...links.keys()].join(', ')}`);
  return l;
};

const inet = async (node: VlanNode, dev: string): Promise<string[]> =>
  (
    JSON.parse(await node.ok(['ip', '-j', '-4', 'addr', 'show', 'dev', dev])) as {
      addr_info: { local: string; prefixlen: number }[];
    }[]
  ).flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`));

/** On failure: the tails of both VMs' consoles, guest daemons and agents. */
function dumpOnFailure(): void {
  onTestFailed(() => {
    for (const n of [n1, n2].filter(Boolean)) {
      console.error(n.vm.logs());
      for (const f of readdirSync(n.vm.share).filter((x) => x.startsWith('agent-'))) {
        console.error(`--- ${n.name} ${f} ---\n${readFileSync(join(n.vm.share, f), 'utf8').slice(-3000)}`);
      }
    }
  });
}

describe.skipIf(reason)('VLAN mode on two qemu nodes with 802.1Q', () => {
  /** ifindex of each segment link per node, as first seen. */
  const firstSeen = new Map<string, number>();
  const remember = async (node: VlanNode, names: readonly string[]) => {
    const links = await node.links();
    for (const n of names) firstSeen.set(`${node.name}/${n}`, linkNamed(links, n).ifindex);
  };

  beforeAll(async () => {
    const started = performance.now();
    vl = await startVlanLab({
      lab,
      log: (l) => console.log(l),
      bundle: { 'vlan-uplink': join(import.meta.dirname, 'uplink-main.ts') },
    });
    [n1, n2] = vl.nodes;
    const agentsAt = performance.now();
    const ready = await Promise.all([n1.startAgent(), n2.startAgent()]);
    const agentsSeconds = (performance.now() - agentsAt) / 1000;
    await vl.addPools([
      {
        name: 'v100',
        cidr: '10.100.0.0/24',
        gateway: '10.100.0.1',
        segment: { mode: 'vlan', id: 100 },
        ranges: [{ start: '10.100.0.10', end: '10.100.0.99' }],
      },
      {
        name: 'v200',
        cidr: '10.100.0.0/24',
        gateway: '10.100.0.254',
        segment: { mode: 'vlan', id: 200 },
        ranges: [{ start: '10.100.0.200', end: '10.100.0.250' }],
        allowOverlap: true,
      },
      {
        name: 'v300',
        cidr: '10.30.0.0/24',
        gateway: '10.30.0.1',
        segment: { mode: 'vlan', id: 300 },
        nodeGateway: true,
      },
      { name: 'v400', cidr: '10.40.0.0/24', gateway: '10.40.0.1', segment: { mode: 'vlan', id: 400 } },
    ]);
    console.log(
      `[vlan] kernel ${vl.kernel.deb} (${vl.kernel.release}); start: ${JSON.stringify(vl.startSeconds)} s; agents up in ${agentsSeconds.toFixed(1)} s (after their imports: ${ready.map((r) => (r.ms / 1000).toFixed(1)).join(' / ')} s); total ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  });

  it('ADD on VLAN 100 on both nodes: VLAN-100 addresses, eth0.100 on br100, pods reach each other across', async () => {
    dumpOnFailure();
    const [a1, b1] = await Promise.all([newPod(n1, 'v100'), newPod(n2, 'v100')]);
    await Promise.all([add(a1), add(b1)]);
    for (const p of [a1, b1]) {
      expect(Number(p.ip!.split('.')[3])).toBeGreaterThanOrEqual(10);
      expect(Number(p.ip!.split('.')[3])).toBeLessThanOrEqual(99);
      expect(p.result).toMatchObject({
        cniVersion: '1.1.0',
        interfaces: [{ name: hostVethName(p.containerID, 'eth0') }, { name: 'eth0', sandbox: p.path }],
        ips: [{ address: `${p.ip}/24`, gateway: '10.100.0.1', interface: 1 }],
      });
    }
    expect(a1.ip).not.toBe(b1.ip);
    for (const [node, pod] of [
      [n1, a1],
      [n2, b1],
    ] as const) {
      const links = await node.links();
      expect(linkNamed(links, 'eth0.100')).toMatchObject({
        link: 'eth0',
        master: 'br100',
        flags: expect.arrayContaining(['UP', 'LOWER_UP']),
        linkinfo: { info_kind: 'vlan', info_data: { protocol: '802.1Q', id: 100 } },
      });
      expect(linkNamed(links, 'br100')).toMatchObject({ linkinfo: { info_kind: 'bridge' } });
      expect(linkNamed(links, hostVethName(pod.containerID, 'eth0'))).toMatchObject({ master: 'br100' });
      await remember(node, ['eth0.100', 'br100']);
    }
    expect(await ping(a1, b1.ip!)).toBe(true);
    expect(await ping(b1, a1.ip!)).toBe(true);
  });

  it('frames between the nodes carry the 802.1Q tag 100 (tcpdump on the NIC)', async () => {
    dumpOnFailure();
    const [a1, b1] = all as [Pod, Pod];
    const lines = await capture(n2, () => inPod(a1, ['ping', '-c', '3', '-W', '3', b1.ip!]));
    const ours = lines.filter((l) => l.includes(`${a1.ip} > ${b1.ip}`) || l.includes(`${b1.ip} > ${a1.ip}`));
    console.log(`[vlan] tcpdump -e on n2 eth0:\n  ${ours.slice(0, 2).join('\n  ')}`);
    expect(ours.filter((l) => l.includes('ICMP echo request')).length).toBeGreaterThanOrEqual(3);
    expect(ours.filter((l) => l.includes('ICMP echo reply')).length).toBeGreaterThanOrEqual(3);
    for (const l of ours) expect(l).toMatch(/ethertype 802\.1Q \(0x8100\).*vlan 100, .*ethertype IPv4/);
    // ARP of the pods went tagged too (or was cached): never untagged on the NIC.
    for (const l of lines.filter((x) => x.includes(a1.ip!) || x.includes(b1.ip!)))
      expect(l).toContain('vlan 100');
  });

  it('VLAN 200 with the same subnet (allowOverlap) is isolated from VLAN 100', async () => {
    dumpOnFailure();
    const [a1, b1] = all as [Pod, Pod];
    const [c1, c2] = await Promise.all([newPod(n1, 'v200'), newPod(n2, 'v200')]);
    await Promise.all([add(c1), add(c2)]);
    for (const p of [c1, c2]) {
      expect(p.ip).toMatch(/^10\.100\.0\.2\d\d$/);
      expect(p.result).toMatchObject({ ips: [{ address: `${p.ip}/24`, gateway: '10.100.0.254' }] });
    }
    const links = await n2.links();
    expect(linkNamed(links, 'eth0.200')).toMatchObject({
      master: 'br200',
      linkinfo: { info_kind: 'vlan', info_data: { id: 200 } },
    });
    await remember(n1, ['eth0.200', 'br200']);
    await remember(n2, ['eth0.200', 'br200']);
    // VLAN 200 itself carries traffic across the nodes, tagged 200...
    const lines = await capture(n2, () => inPod(c1, ['ping', '-c', '2', '-W', '3', c2.ip!]));
    const ours = lines.filter((l) => l.includes(`${c1.ip} > ${c2.ip}`));
    expect(ours.length).toBeGreaterThanOrEqual(2);
    for (const l of ours) expect(l).toMatch(/ethertype 802\.1Q \(0x8100\).*vlan 200, /);
    // ...and nothing between 200 and 100, on one node or across: same subnet, no L2 path.
    const across = await Promise.all([
      ping(c1, a1.ip!),
      ping(c1, b1.ip!),
      ping(c2, b1.ip!),
      ping(a1, c2.ip!),
      ping(b1, c1.ip!),
    ]);
    expect(across).toEqual([false, false, false, false, false]);
  });

  it('the node reaches its pods only with nodeGateway: not on VLAN 100 (default off), over TCP on VLAN 300', async () => {
    dumpOnFailure();
    const a1 = all[0]!;
    for (const node of [n1, n2]) expect(await inet(node, 'br100')).toEqual([]);
    await listen(a1);
    expect(await tcpFromNode(n1, a1.ip!)).toMatch(/^failed/);
    const [d1, d2] = await Promise.all([newPod(n1, 'v300'), newPod(n2, 'v300')]);
    await Promise.all([add(d1), add(d2)]);
    for (const node of [n1, n2]) {
      expect(await inet(node, 'br300')).toEqual(['10.30.0.1/24']);
      expect(linkNamed(await node.links(), 'br300').address).toBe(gatewayMac('vlan/300'));
      await remember(node, ['eth0.300', 'br300']);
    }
    await Promise.all([listen(d1), listen(d2)]);
    expect(await tcpFromNode(n1, d1.ip!)).toBe(`ok ${d1.name}`);
    expect(await tcpFromNode(n2, d2.ip!)).toBe(`ok ${d2.name}`);
    // The same gateway MAC on both bridges of one VLAN does not come between the pods.
    expect(await ping(d1, d2.ip!)).toBe(true);
  });

  it('agent restarted: uplink and bridge reused (same ifindex), running pods keep connectivity', async () => {
    dumpOnFailure();
    const [a1, b1] = all as [Pod, Pod];
    const d1 = all.find((p) => p.pool === 'v300' && p.node === n1)!;
    await n1.spawn('ping-a1', ['nsenter', `--net=${a1.path}`, '--', 'ping', '-i', '0.2', '-W', '2', b1.ip!]);
    await n1.stopAgent('SIGTERM');
    const ready = await n1.startAgent();
    // Adopted at start: v100, v200 and v300 had links on n1.
    expect(ready.segments).toBe(3);
    const a3 = await add(await newPod(n1, 'v100'));
    const links = await n1.links();
    for (const name of ['eth0.100', 'br100', 'eth0.200', 'br200', 'eth0.300', 'br300'])
      expect(linkNamed(links, name).ifindex, name).toBe(firstSeen.get(`n1/${name}`));
    expect(linkNamed(links, hostVethName(a3.containerID, 'eth0')).master).toBe('br100');
    expect(await ping(a3, b1.ip!)).toBe(true);
    expect(await tcpFromNode(n1, d1.ip!)).toBe(`ok ${d1.name}`);
    const pinged = await n1.stop('ping-a1', 'SIGINT');
    const [, sent, got] = /(\d+) packets transmitted, (\d+) received/.exec(pinged.output) ?? [];
    console.log(`[vlan] ping a1 → b1 across the agent restart: ${sent} sent, ${got} received`);
    expect(sent, `ping exited ${pinged.signal ?? pinged.code}: ${pinged.output.slice(-2000)}`).toBeDefined();
    expect(Number(sent)).toBeGreaterThan(5);
    // The last echo may still be in flight when ping is stopped.
    expect(Number(sent) - Number(got)).toBeLessThanOrEqual(1);
  });

  it('a link with the expected name but the wrong VLAN id is reported, not used', async () => {
    dumpOnFailure();
    await n2.ok(['ip', 'link', 'add', 'link', 'eth0', 'name', 'eth0.400', 'type', 'vlan', 'id', '401']);
    const e1 = await newPod(n2, 'v400');
    const r = await call(e1, 'ADD');
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({
      code: 104,
      msg: expect.stringContaining('eth0.400 exists but has VLAN id 401, not 400'),
    });
    console.log(`[vlan] ADD over a wrong eth0.400: ${String(r.json?.['msg'])}`);
    const links = await n2.links();
    const wrong = linkNamed(links, 'eth0.400');
    expect(wrong.linkinfo?.info_data?.id).toBe(401);
    expect(wrong.master).toBeUndefined();
    expect(links.has('br400')).toBe(false);
    expect(links.has(hostVethName(e1.containerID, 'eth0'))).toBe(false);
    expect(await handles()).not.toContain(`${vl.prefix}handles/${e1.containerID}/eth0`);
    // Once the operator removes it, the next ADD makes the right one.
    await n2.ok(['ip', 'link', 'del', 'eth0.400']);
    await add(e1);
    expect(linkNamed(await n2.links(), 'eth0.400')).toMatchObject({
      master: 'br400',
      linkinfo: { info_data: { id: 400 } },
    });
    await remember(n2, ['eth0.400', 'br400']);
  });

  it('segment health (agent.health()) and CNI STATUS say what they see', async () => {
    dumpOnFailure();
    const status = () => n2.cni({ command: 'STATUS', conf: conf(n2, 'v100') });
    const seg = (h: Awaited<ReturnType<VlanNode['tick']>>, key: string) => h.find((x) => x.segment === key);
    const healthy = await n2.tick();
    expect(healthy.map((h) => h.segment).sort()).toEqual(['vlan/100', 'vlan/200', 'vlan/300', 'vlan/400']);
    expect(seg(healthy, 'vlan/100')).toEqual({
      segment: 'vlan/100',
      bridge: 'br100',
      bridgeUp: true,
      uplink: 'eth0.100',
      uplinkUp: true,
      uplinkCarrier: true,
      peers: 0,
    });
    expect((await status()).code).toBe(0);

    // The uplink set down by hand.
    await n2.ok(['ip', 'link', 'set', 'eth0.100', 'down']);
    const down = await n2.tick();
    expect(seg(down, 'vlan/100')).toMatchObject({ bridgeUp: true, uplinkUp: false, uplinkCarrier: false });
    expect(seg(down, 'vlan/200')).toMatchObject({ uplinkUp: true, uplinkCarrier: true });
    const st = await status();
    expect(st.json).toMatchObject({
      code: 50,
      msg: expect.stringContaining('segment links are down: vlan/100 (br100, eth0.100)'),
    });
    await n2.ok(['ip', 'link', 'set', 'eth0.100', 'up']);

    // The cable pulled: the NIC loses carrier (qemu's set_link), every uplink above it too.
    await n2.vm.monitor('set_link n0 off');
    try {
      await waitFor(async () => !(await n2.links()).get('eth0')?.flags.includes('LOWER_UP'), {
        what: 'n2 eth0 without carrier',
        timeoutMs: 20_000,
        intervalMs: 200,
      });
      // The VLAN devices follow their master's carrier through the kernel's linkwatch, a moment
      // later: what the agent sees at its next ticks.
      const cut = await waitFor(
        async () => {
          const h = await n2.tick();
          return h.every((x) => !x.uplinkCarrier) && h;
        },
        { what: "n2's segments without carrier in agent.health()", timeoutMs: 30_000, intervalMs: 500 },
      );
      for (const key of ['vlan/100', 'vlan/200', 'vlan/300', 'vlan/400'])
        expect(seg(cut, key), key).toMatchObject({ bridgeUp: true, uplinkUp: true, uplinkCarrier: false });
      const st2 = await status();
      console.log(`[vlan] STATUS with n2's NIC without carrier: code ${st2.code} ${st2.stdout.trim()}`);
      // etcd is in n1, behind the cut: STATUS cannot reach the IPAM store.
      expect(st2.json).toMatchObject({ code: 50 });
    } finally {
      await n2.vm.monitor('set_link n0 on');
    }
    await waitFor(async () => (await n2.links()).get('eth0')?.flags.includes('LOWER_UP'), {
      what: 'n2 eth0 carrier back',
      timeoutMs: 20_000,
      intervalMs: 200,
    });
    const back = await waitFor(
      async () => {
        const h = await n2.tick();
        return h.every((x) => x.uplinkCarrier) && h;
      },
      { what: "n2's segments with carrier again", timeoutMs: 30_000, intervalMs: 500 },
    );
    for (const h of back)
      expect(h, h.segment).toMatchObject({ bridgeUp: true, uplinkUp: true, uplinkCarrier: true });
    await waitFor(async () => (await status()).code === 0, {
      what: 'STATUS 0 again',
      timeoutMs: 60_000,
      intervalMs: 1000,
    });
    const [a1, b1] = all as [Pod, Pod];
    expect(await ping(a1, b1.ip!)).toBe(true);
  });

  it('DEL of every pod leaves uplinks and bridges in place and no veth behind', async () => {
    dumpOnFailure();
    // Concurrently, as a runtime tears pods down.
    const dels = await Promise.all(
      all
        .filter((p) => p.result)
        .map(async (pod) => ({ pod, r: await call(pod, 'DEL', { prevResult: pod.result }) })),
    );
    for (const { pod, r } of dels) expect(r.code, `${pod.name} DEL: ${r.stdout}${r.stderr}`).toBe(0);
    await Promise.all([n1.idle(), n2.idle()]);
    for (const node of [n1, n2]) {
      const links = await node.links();
      for (const [key, ifindex] of firstSeen) {
        const [owner, name] = key.split('/') as [string, string];
        if (owner === node.name) expect(linkNamed(links, name).ifindex, key).toBe(ifindex);
      }
      expect([...links.keys()].filter((n) => n.startsWith('nw'))).toEqual([]);
    }
    expect(await handles()).toEqual([]);
  });

  it('the in-process "VLAN uplink" scenario of ipam-cni/cni/netlab.test.ts passes on this kernel', async () => {
    dumpOnFailure();
    // uplink-scenario.ts, bundled and run as a process in n2 (vitest itself would take minutes
    // to start under TCG); netlab.test.ts runs the same function where the host has 802.1Q.
    const r = await n2.exec(['node', vl.bundles.extra['vlan-uplink']!], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const { kernel, uplink, links } = JSON.parse(r.stdout) as VlanUplinkOutcome;
    console.log(
      `[vlan] uplink scenario on ${kernel}: up0.10 master ${uplink.master}; links ${links.join(', ')}`,
    );
    expect(kernel).toBe(vl.kernel.release);
    expect(uplink.master).toBe('br10');
    expect(uplink.linkinfo).toMatchObject({ info_kind: 'vlan', info_data: { id: 10 } });
    expect(links.filter((l) => l === 'up0.10' || l === 'br10')).toEqual(['up0.10', 'br10']);
  });
});
