import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { run, runOk, skipReason } from '../../test/lab/index.ts';
import { MemoryStore } from '../store/memory.ts';
import { netnsRunner } from './exec.ts';
import { gatewayMac } from './names.ts';
import { Segments } from './segment.ts';

/**
 * Ensure-or-reuse against the real kernel, in a network namespace of its own: a link that has the
 * expected name but is not what the segment needs is reported, never enslaved or used; the uplink
 * master is brought up first.
 */

const reason =
  skipReason({ binaries: ['ip', 'bridge'] }) ??
  (process.getuid?.() === 0 ? undefined : 'needs root (network namespaces)');
if (reason) console.warn(`[lab] segment reuse tests skipped: ${reason}`);

let ns: string | undefined;
afterEach(async () => {
  if (ns) await run('ip', ['netns', 'del', ns]);
  ns = undefined;
});

async function host(): Promise<{ segs: Segments; ip: (...args: string[]) => Promise<string> }> {
  ns = `nw-seg-${randomBytes(3).toString('hex')}`;
  await runOk('ip', ['netns', 'add', ns]);
  const name = ns;
  // The master is down, as a NIC may be when the agent starts first (a veth: this kernel has no dummy).
  await runOk('ip', ['-n', name, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0p']);
  await runOk('ip', ['-n', name, 'addr', 'add', '192.0.2.10/24', 'dev', 'up0']);
  return { segs: segmentsIn(name), ip: (...args) => runOk('ip', ['-n', name, ...args]) };
}

/** A fresh Segments (as an agent at start) for the links of netns `name`, master up0. */
const segmentsIn = (name: string) =>
  new Segments({
    host: netnsRunner(`/run/netns/${name}`),
    store: new MemoryStore(),
    node: 'n1',
    master: 'up0',
    localAddress: '192.0.2.10',
    vxlanPort: 4789,
    mtu: undefined,
  });

const link = async (ip: (...args: string[]) => Promise<string>, name: string) =>
  JSON.parse(await ip('-j', '-d', 'link', 'show', name))[0];

describe.skipIf(reason)('segments on a real kernel', () => {
  it('VXLAN 100 and a bridge-only pool get bridges of their own; the master is brought up', async () => {
    const { segs, ip } = await host();
    await segs.ensure({ mode: 'vxlan', id: 100 }, 'pods');
    await segs.ensure({ mode: 'none' }, 'a-pool-with-a-long-name');
    expect((await link(ip, 'up0')).flags).toContain('UP');
    expect((await link(ip, 'vx100')).master).toBe('vxbr100');
    const bridges = JSON.parse(await ip('-j', 'link', 'show', 'type', 'bridge')).map(
      (l: { ifname: string }) => l.ifname,
    );
    expect(bridges.sort()).toEqual(['nw_d128446bcb14', 'vxbr100'].sort());
  });

  it('a link with the bridge name that is not a bridge is reported, not used', async () => {
    const { segs, ip } = await host();
    await ip('link', 'add', 'vxbr77', 'type', 'veth', 'peer', 'name', 'vxbr77p');
    await expect(segs.ensure({ mode: 'vxlan', id: 77 }, 'pods')).rejects.toThrow(
      'segment vxlan/77: vxbr77 exists but is veth, not bridge; nodeward does not reuse it',
    );
    // Nothing was enslaved to the impostor.
    expect((await link(ip, 'vxbr77')).linkinfo.info_slave_kind).toBeUndefined();
  });

  it('a VXLAN device with the expected name but another VNI is reported, not used', async () => {
    const { segs, ip } = await host();
    await ip('link', 'add', 'vx78', 'type', 'vxlan', 'id', '79', 'dstport', '4789', 'dev', 'up0');
    await expect(segs.ensure({ mode: 'vxlan', id: 78 }, 'pods')).rejects.toThrow(
      'segment vxlan/78: vx78 exists but has VNI 79, not 78',
    );
    expect((await link(ip, 'vx78')).master).toBeUndefined();
  });

  it('links made by an earlier agent are reused as they are', async () => {
    const { segs, ip } = await host();
    await segs.ensure({ mode: 'vxlan', id: 90 }, 'pods');
    const before = await link(ip, 'vxbr90');
    const again = segmentsIn(ns!);
    await again.ensure({ mode: 'vxlan', id: 90 }, 'pods');
    expect((await link(ip, 'vxbr90')).ifindex).toBe(before.ifindex);
  });

  it('a pool gateway held by the node: the bridge gets the address and the anycast MAC, once', async () => {
    const { segs, ip } = await host();
    const gateway = { address: '10.120.0.1', prefixLength: 24, family: 4 as const };
    await segs.ensure({ mode: 'vxlan', id: 120 }, 'pods', gateway);
    await segs.ensure({ mode: 'vxlan', id: 120 }, 'pods', gateway);
    const br = JSON.parse(await ip('-j', 'addr', 'show', 'dev', 'vxbr120'))[0];
    expect(br.address).toBe(gatewayMac('vxlan/120'));
    expect(br.addr_info.filter((a: { family: string }) => a.family === 'inet')).toEqual([
      expect.objectContaining({ local: '10.120.0.1', prefixlen: 24 }),
    ]);
    // The node now has a path to the pool: a connected route through the bridge.
    expect(await ip('route', 'get', '10.120.0.77')).toContain('dev vxbr120');
  });
});
