import { describe, expect, it } from 'vitest';
import type { Allocation } from '../../ipam/ipam.ts';
import { buildResult } from './result.ts';

const a: Allocation = {
  pool: 'p',
  ip: '10.0.0.5',
  family: 4,
  cidr: '10.0.0.0/24',
  prefixLength: 24,
  gateway: '10.0.0.1',
  routes: [{ dst: '192.168.0.0/16', gw: '10.0.0.254' }],
  dns: { nameservers: ['10.0.0.53'], search: ['svc.local'], options: [] },
  segment: { mode: 'none' },
  nodeGateway: true,
  containerID: 'c',
  ifName: 'eth0',
  existing: false,
};
const ifaces = [
  { name: 'nwabc', mac: '02:00:00:00:00:01' },
  { name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/run/netns/x' },
];

describe('buildResult per cniVersion', () => {
  for (const v of ['1.1.0', '1.0.0'] as const) {
    it(`${v}: ips without version, interface index of the sandbox end`, () => {
      expect(buildResult(v, a, ifaces)).toEqual({
        cniVersion: v,
        interfaces: ifaces,
        ips: [{ address: '10.0.0.5/24', gateway: '10.0.0.1', interface: 1 }],
        routes: [
          { dst: '0.0.0.0/0', gw: '10.0.0.1' },
          { dst: '192.168.0.0/16', gw: '10.0.0.254' },
        ],
        dns: { nameservers: ['10.0.0.53'], search: ['svc.local'] },
      });
    });
  }
  it('0.4.0: every ip carries its version', () => {
    expect(buildResult('0.4.0', a, ifaces).ips).toEqual([
      { version: '4', address: '10.0.0.5/24', gateway: '10.0.0.1', interface: 1 },
    ]);
  });
  it('IPAM-only: no interfaces, no interface index', () => {
    const r = buildResult('1.0.0', { ...a, gateway: undefined, routes: [], dns: undefined }, undefined);
    expect(r).toEqual({ cniVersion: '1.0.0', ips: [{ address: '10.0.0.5/24' }], routes: [], dns: {} });
  });
  it('IPv6: default route ::/0, version 6 on 0.4.0', () => {
    const v6 = { ...a, ip: 'fd00::5', family: 6 as const, prefixLength: 64, gateway: 'fd00::1', routes: [] };
    const r = buildResult('0.4.0', v6, undefined);
    expect(r.ips).toEqual([{ version: '6', address: 'fd00::5/64', gateway: 'fd00::1' }]);
    expect(r.routes).toEqual([{ dst: '::/0', gw: 'fd00::1' }]);
  });
});
