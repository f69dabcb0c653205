import { describe, expect, it } from 'vitest';
import { missingRoutes, routeDst } from './check.ts';

// What `ip -6 -j route show dev eth0` prints for a pod of an IPv6 pool (gateway fd00:1::1, one
// extra route): the prefix route, a host route without /128, the link-local route, the default.
const kernel6 = [
  { dst: 'fd00:1::/64' },
  { dst: 'fd00:9::7', gateway: 'fd00:1::1' },
  { dst: 'fd00:20::/48', gateway: 'fd00:1::fe' },
  { dst: 'fe80::/64' },
  { dst: 'default', gateway: 'fd00:1::1' },
];
const kernel4 = [
  { dst: 'default', gateway: '10.0.0.1' },
  { dst: '10.0.0.0/24' },
  { dst: '192.168.0.0/16', gateway: '10.0.0.254' },
];

describe('CHECK route comparison', () => {
  it('spells destinations as iproute2 does', () => {
    expect(routeDst('0.0.0.0/0')).toBe('default');
    expect(routeDst('::/0')).toBe('default');
    expect(routeDst('10.1.2.3/32')).toBe('10.1.2.3');
    expect(routeDst('fd00:9:0::7/128')).toBe('fd00:9::7');
    expect(routeDst('FD00:0020::/48')).toBe('fd00:20::/48');
    expect(routeDst('default')).toBe('default');
  });

  it('IPv6: the default route, a host route and a prefix route present → nothing missing', () => {
    const want = [
      { dst: '::/0', gw: 'fd00:1::1' },
      { dst: 'fd00:9::7/128', gw: 'fd00:1:0::1' },
      { dst: 'fd00:20::/48', gw: 'fd00:1::fe' },
      { dst: 'fd00:1::/64' },
    ];
    expect(missingRoutes(want, kernel6, 6)).toEqual([]);
  });

  it('IPv6: a missing default route, a wrong gateway, a missing prefix are each reported', () => {
    const noDefault = kernel6.filter((k) => k.dst !== 'default');
    expect(missingRoutes([{ dst: '::/0', gw: 'fd00:1::1' }], noDefault, 6)).toEqual([
      { dst: '::/0', gw: 'fd00:1::1' },
    ]);
    expect(missingRoutes([{ dst: 'fd00:20::/48', gw: 'fd00:1::2' }], kernel6, 6)).toEqual([
      { dst: 'fd00:20::/48', gw: 'fd00:1::2' },
    ]);
    expect(missingRoutes([{ dst: 'fd00:30::/48' }], kernel6, 6)).toEqual([{ dst: 'fd00:30::/48' }]);
  });

  it('IPv4 as before: default and /32 spelled the kernel way; a gateway mismatch is missing', () => {
    expect(
      missingRoutes(
        [
          { dst: '0.0.0.0/0', gw: '10.0.0.1' },
          { dst: '192.168.0.0/16', gw: '10.0.0.254' },
        ],
        kernel4,
        4,
      ),
    ).toEqual([]);
    expect(missingRoutes([{ dst: '0.0.0.0/0', gw: '10.0.0.2' }], kernel4, 4)).toHaveLength(1);
    expect(missingRoutes([{ dst: '10.9.9.9/32' }], kernel4, 4)).toEqual([{ dst: '10.9.9.9/32' }]);
  });

  it("routes of the other family are left to that family's check", () => {
    expect(missingRoutes([{ dst: '0.0.0.0/0', gw: '10.0.0.1' }], kernel6, 6)).toEqual([]);
    expect(missingRoutes([{ dst: '::/0', gw: 'fd00:1::1' }], kernel4, 4)).toEqual([]);
  });
});
