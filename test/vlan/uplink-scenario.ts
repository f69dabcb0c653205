import { randomBytes } from 'node:crypto';
import { netnsRunner } from '../../ipam-cni/net/exec.ts';
import { Segments } from '../../ipam-cni/net/segment.ts';
import { MemoryStore } from '../../ipam-cni/store/memory.ts';
import { run, runOk } from '../lab/exec.ts';

/**
 * The in-process VLAN uplink scenario ("VLAN uplink on a kernel with 802.1Q" in
 * ipam-cni/cni/netlab.test.ts): in a throwaway netns, two concurrent ensures of VLAN 10 over a
 * dummy master make `up0.10` on `br10`, once. That test runs it where the kernel has 802.1Q; the
 * VLAN lab (vlan.vmtest.ts) runs it in a VM with Debian's kernel (uplink-main.ts), since this
 * machine's kernel has none. It only reports what it found: the callers assert.
 */

export interface UplinkLink {
  readonly ifname: string;
  readonly master?: string;
  readonly link?: string;
  readonly flags?: string[];
  readonly linkinfo?: { readonly info_kind?: string; readonly info_data?: { readonly id?: number } };
}

export interface VlanUplinkOutcome {
  readonly kernel: string;
  /** `ip -d -j link show up0.10` in the netns. */
  readonly uplink: UplinkLink;
  /** Every link of the netns, by name (one up0.10, one br10: no duplicate made by the race). */
  readonly links: string[];
}

export async function vlanUplinkScenario(): Promise<VlanUplinkOutcome> {
  const ns = `nw-vlan-${randomBytes(3).toString('hex')}`;
  await runOk('ip', ['netns', 'add', ns]);
  try {
    await runOk('ip', ['-n', ns, 'link', 'add', 'up0', 'type', 'dummy']);
    const segs = new Segments({
      host: netnsRunner(`/run/netns/${ns}`),
      store: new MemoryStore(),
      node: 'n1',
      master: 'up0',
      localAddress: undefined,
      vxlanPort: 4789,
      mtu: undefined,
    });
    await Promise.all([
      segs.ensure({ mode: 'vlan', id: 10 }, 'p'),
      segs.ensure({ mode: 'vlan', id: 10 }, 'p'),
    ]);
    const [uplink] = JSON.parse(await runOk('ip', ['-n', ns, '-j', '-d', 'link', 'show', 'up0.10'])) as [
      UplinkLink,
    ];
    const links = (JSON.parse(await runOk('ip', ['-n', ns, '-j', 'link', 'show'])) as UplinkLink[]).map(
      (l) => l.ifname,
    );
    return { kernel: (await runOk('uname', ['-r'])).trim(), uplink, links };
  } finally {
    await run('ip', ['netns', 'del', ns]);
  }
}
