import { describe, expect, it } from 'vitest';
import {
  canonicalIp,
  cidrsOverlap,
  formatCidr,
  formatIp,
  lastOf,
  networkOf,
  parseCidr,
  parseIp,
  sizeOf,
} from './addr.ts';

describe('IP addresses', () => {
  it('parses IPv4 and refuses what tools disagree on', () => {
    expect(parseIp('10.0.0.1')).toEqual({ family: 4, value: 0x0a000001n });
    expect(parseIp('255.255.255.255')?.value).toBe(0xffffffffn);
    for (const bad of ['10.0.0', '10.0.0.256', '010.0.0.1', '1.2.3.4.5', ' 1.2.3.4', '', '1.2.3.-1']) {
      expect(parseIp(bad), bad).toBeUndefined();
    }
  });

  it('parses IPv6 in every spelling to one value', () => {
    const v = parseIp('fd00::1')?.value;
    expect(v).toBe((0xfd00n << 112n) | 1n);
    for (const same of ['fd00:0:0:0:0:0:0:1', 'FD00::0001', 'fd00:0::0:1'])
      expect(parseIp(same)?.value, same).toBe(v);
    expect(parseIp('::')?.value).toBe(0n);
    expect(parseIp('::ffff:10.0.0.1')?.value).toBe((0xffffn << 32n) | 0x0a000001n);
    for (const bad of [
      'fd00:::1',
      'fd00::1::2',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      'g::1',
      'fd00::1%eth0',
      '12345::',
    ]) {
      expect(parseIp(bad), bad).toBeUndefined();
    }
  });

  it('formats IPv6 canonically (RFC 5952)', () => {
    const canon = (s: string) => canonicalIp(s);
    expect(canon('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(canon('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1'); // first of two equal runs
    expect(canon('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1'); // one zero group stays
    expect(canon('0:0:0:0:0:0:0:0')).toBe('::');
    expect(canon('1:0:0:0:0:0:0:0')).toBe('1::');
    expect(canon('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(formatIp(4, 0x0a0000ffn)).toBe('10.0.0.255');
  });

  it('parses CIDRs, naming the network when host bits are set', () => {
    const c = parseCidr('10.1.2.0/24');
    expect(c).toEqual({ ok: true, cidr: { family: 4, base: 0x0a010200n, prefix: 24 } });
    expect(parseCidr('10.1.2.3/24')).toEqual({
      ok: false,
      reason: 'host bits are set; the network is 10.1.2.0/24',
    });
    expect(parseCidr('10.0.0.0/33')).toMatchObject({
      ok: false,
      reason: 'prefix length /33 is longer than 32 bits',
    });
    expect(parseCidr('fd00::/64')).toMatchObject({ ok: true, cidr: { family: 6, prefix: 64 } });
    expect(parseCidr('10.0.0.0')).toMatchObject({ ok: false });
  });

  it('does CIDR arithmetic on both families', () => {
    const v4 = parseCidr('10.0.0.0/30');
    const v6 = parseCidr('fd00::/126');
    if (!v4.ok || !v6.ok) throw new Error('parse');
    expect(sizeOf(v4.cidr)).toBe(4n);
    expect(formatIp(4, lastOf(v4.cidr))).toBe('10.0.0.3');
    expect(formatIp(6, lastOf(v6.cidr))).toBe('fd00::3');
    expect(formatCidr(networkOf(4, 0x0a000047n, 26))).toBe('10.0.0.64/26');
    const slash0 = parseCidr('::/0');
    if (!slash0.ok) throw new Error('parse');
    expect(sizeOf(slash0.cidr)).toBe(1n << 128n);
    expect(cidrsOverlap(v4.cidr, v6.cidr)).toBe(false);
  });
});
