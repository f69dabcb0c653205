import { describe, expect, it } from 'vitest';
import { gatewayMac, hostVethName, segmentLinks } from './names.ts';
import { type ExpectedLink, linkMismatch, planSegment } from './plan.ts';

const opts = { master: 'eth0', vxlanPort: 4789, mtu: 1500, localAddress: '192.0.2.1' };

describe('planSegment', () => {
  it('vlan: <master>.<vid> 802.1Q subinterface enslaved to br<vid>', () => {
    const p = planSegment({ mode: 'vlan', id: 100 }, 'pods', opts);
    expect(p.links).toEqual({ key: 'vlan/100', bridge: 'br100', uplink: 'eth0.100' });
    expect(p.create.map((c) => c.command.join(' '))).toEqual([
      'link add link eth0 name eth0.100 type vlan id 100',
      'link add br100 mtu 1500 type bridge',
    ]);
    expect(p.converge.map((c) => c.join(' '))).toEqual([
      // The kernel refuses a VLAN device up over a master that is down.
      'link set eth0 up',
      'link set eth0.100 mtu 1500',
      'link set eth0.100 master br100',
      'link set eth0.100 up',
      'link set br100 up',
    ]);
  });

  it('vlan: a long master name falls back to vlan<vid> (IFNAMSIZ)', () => {
    const p = planSegment({ mode: 'vlan', id: 4094 }, 'pods', { ...opts, master: 'enp0s31f6long' });
    expect(p.links.uplink).toBe('vlan4094');
    expect(p.create[0]?.command).toEqual([
      'link',
      'add',
      'link',
      'enp0s31f6long',
      'name',
      'vlan4094',
      'type',
      'vlan',
      'id',
      '4094',
    ]);
  });

  it('vxlan: VNI = segment id, nolearning, on vxbr<vni> (VLAN 200 and VNI 200 are two networks)', () => {
    const p = planSegment({ mode: 'vxlan', id: 200 }, 'pods', { ...opts, mtu: 1450 });
    expect(p.create.map((c) => c.command.join(' '))).toEqual([
      'link add vx200 type vxlan id 200 local 192.0.2.1 dstport 4789 dev eth0 nolearning',
      'link add vxbr200 mtu 1450 type bridge',
    ]);
    expect(p.links.bridge).not.toBe(planSegment({ mode: 'vlan', id: 200 }, 'pods', opts).links.bridge);
    expect(() => planSegment({ mode: 'vxlan', id: 1 }, 'p', { ...opts, localAddress: undefined })).toThrow(
      /local address/,
    );
  });

  it('none: a bridge alone, named for the pool; a name too long for IFNAMSIZ is hashed, never cut', () => {
    expect(planSegment({ mode: 'none' }, 'pods-rack-12', opts).links.bridge).toBe('nw-pods-rack-12');
    const p = planSegment({ mode: 'none' }, 'a-very-long-pool-name', opts);
    expect(p.links).toEqual({
      key: 'none/a-very-long-pool-name',
      bridge: 'nw_5fd36f28ed0a',
      uplink: undefined,
    });
    expect(p.converge).toEqual([['link', 'set', 'nw_5fd36f28ed0a', 'up']]);
    // Cut to 15 characters, these two would have shared one bridge.
    expect(planSegment({ mode: 'none' }, 'a-very-long-pool-name-2', opts).links.bridge).not.toBe(
      p.links.bridge,
    );
  });

  it('a link found under an expected name is reused only when it is of the expected kind, id and parent', () => {
    const p = planSegment({ mode: 'vlan', id: 100 }, 'pods', opts);
    const [uplink, bridge] = p.expect as [ExpectedLink, ExpectedLink];
    expect(uplink).toEqual({ link: 'eth0.100', kind: 'vlan', id: 100, parent: 'eth0' });
    const vlan = (id: number, link = 'eth0') => ({
      ifname: 'eth0.100',
      link,
      linkinfo: { info_kind: 'vlan', info_data: { id } },
    });
    expect(linkMismatch(uplink, vlan(100))).toBeUndefined();
    expect(linkMismatch(uplink, vlan(101))).toBe('eth0.100 exists but has VLAN id 101, not 100');
    expect(linkMismatch(uplink, vlan(100, 'eth1'))).toBe('eth0.100 exists but hangs off eth1, not eth0');
    expect(linkMismatch(bridge, { ifname: 'br100', linkinfo: { info_kind: 'bridge' } })).toBeUndefined();
    expect(linkMismatch(bridge, { ifname: 'br100' })).toBe(
      'br100 exists but is a device of no kind (physical), not bridge',
    );
  });

  it('host veth names are stable and fit IFNAMSIZ', () => {
    expect(hostVethName('abc', 'eth0')).toBe(hostVethName('abc', 'eth0'));
    expect(hostVethName('abc', 'eth0')).not.toBe(hostVethName('abc', 'eth1'));
    expect(hostVethName('abc', 'eth0')).toMatch(/^nw[0-9a-f]{11}$/);
    expect(segmentLinks({ mode: 'vxlan', id: 16_777_215 }, 'p', 'eth0').bridge.length).toBeLessThanOrEqual(
      15,
    );
  });

  it('the anycast gateway MAC is the same on every node for a segment, locally administered, unicast', () => {
    expect(gatewayMac('vxlan/100')).toBe(gatewayMac('vxlan/100'));
    expect(gatewayMac('vxlan/100')).not.toBe(gatewayMac('vxlan/200'));
    expect(gatewayMac('none/pods')).toMatch(/^0a:58(:[0-9a-f]{2}){4}$/);
  });
});
