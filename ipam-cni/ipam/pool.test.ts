import { describe, expect, it } from 'vitest';
import { NodewardError } from '../../shared/errors.ts';
import { formatIp } from './addr.ts';
import { compilePool, holdsGateway, overlapProblem, type Pool, unusableReason } from './pool.ts';

function problems(input: unknown): string[] {
  try {
    compilePool(input);
  } catch (err) {
    if (err instanceof NodewardError && err.code === 'POOL_INVALID') return err.details.problems as string[];
    throw err;
  }
  throw new Error('expected POOL_INVALID');
}

const usableList = (p: Pool) => {
  const out: string[] = [];
  for (const i of p.usable) for (let v = i.lo; v <= i.hi; v++) out.push(formatIp(p.family, v));
  return out;
};

describe('pool spec validation: every problem with its field path', () => {
  it.each([
    [
      { name: 'Bad_Name', cidr: '10.0.0.0/24' },
      'name: expected a lowercase DNS label (a-z, 0-9, "-", at most 63 characters), got "Bad_Name"',
    ],
    [
      { name: 'p', cidr: '10.0.0.1/24' },
      'cidr: host bits are set; the network is 10.0.0.0/24, got "10.0.0.1/24"',
    ],
    [{ name: 'p', cidr: 'ten/8' }, 'cidr: expected a CIDR like 10.0.0.0/24 or fd00::/64, got "ten/8"'],
    [{ name: 'p', cidr: '10.0.0.0/24', gateway: '10.0.1.1' }, 'gateway: 10.0.1.1 is outside 10.0.0.0/24'],
    [{ name: 'p', cidr: '10.0.0.0/24', gateway: '10.0.0.0' }, 'gateway: 10.0.0.0 is the network address'],
    [
      { name: 'p', cidr: '10.0.0.0/24', gateway: '10.0.0.255' },
      'gateway: 10.0.0.255 is the broadcast address',
    ],
    [{ name: 'p', cidr: '10.0.0.0/24', gateway: 'fd00::1' }, 'gateway: fd00::1 is IPv6, the pool is IPv4'],
    [
      { name: 'p', cidr: '10.0.0.0/24', ranges: [{ start: '10.0.0.9', end: '10.0.0.5' }] },
      'ranges[0]: start 10.0.0.9 is after end 10.0.0.5',
    ],
    [
      { name: 'p', cidr: '10.0.0.0/24', ranges: [{ start: '10.0.0.9', end: '10.0.1.5' }] },
      'ranges[0].end: 10.0.1.5 is outside 10.0.0.0/24',
    ],
    [
      { name: 'p', cidr: '10.0.0.0/24', ranges: [] },
      'ranges: an empty list hands out nothing; omit it for the whole CIDR',
    ],
    [
      { name: 'p', cidr: '10.0.0.0/24', exclude: ['10.9.0.0/16'] },
      'exclude[0]: 10.9.0.0/16 does not overlap 10.0.0.0/24',
    ],
    [
      { name: 'p', cidr: '10.0.0.0/24', exclude: ['x'] },
      'exclude[0]: expected an address or a CIDR: expected a CIDR like 10.0.0.0/24 or fd00::/64, got "x"',
    ],
    [
      { name: 'p', cidr: '10.0.0.0/24', segment: { mode: 'vlan' } },
      'segment.id: mode vlan needs an id in 1..4094, got none',
    ],
    [
      { name: 'p', cidr: '10.0.0.0/24', segment: { mode: 'vlan', id: 4095 } },
      'segment.id: mode vlan needs an id in 1..4094, got 4095',
    ],
    [
      { name: 'p', cidr: '10.0.0.0/24', segment: { mode: 'none', id: 3 } },
      'segment.id: mode none takes no id; remove it',
    ],
    [
      { name: 'p', cidr: '10.0.0.0/24', segment: { mode: 'vxlan', id: 16_777_216 } },
      'segment.id: mode vxlan needs an id in 1..16777215, got 16777216',
    ],
    [
      { name: 'p', cidr: '10.0.0.0/24', blockSize: 20 },
      'blockSize: expected a prefix length in 24..32, got 20 (a block cannot be larger than the pool (/24))',
    ],
    [
      { name: 'p', cidr: '10.0.0.0/16', blockSize: 18 },
      'blockSize: expected a prefix length in 20..32, got 18 (blocks hold at most 4096 addresses)',
    ],
    [
      { name: 'p', cidr: 'fd00::/64', blockSize: 129 },
      'blockSize: expected a prefix length in 116..128, got 129 (IPv6 has 128 bits)',
    ],
    [
      { name: 'p', cidr: '10.0.0.0/24', routes: [{ dst: 'fd00::/8' }] },
      'routes[0].dst: fd00::/8 is IPv6, the pool is IPv4',
    ],
    [
      {
        name: 'p',
        cidr: '10.0.0.0/24',
        nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'In' }] },
      },
      'nodeSelector.matchExpressions[0].values: operator In needs values',
    ],
    [{ name: 'p', cidr: '10.0.0.0/24', colour: 'blue' }, 'colour: unknown key'],
    [
      { name: 'p', cidr: '10.0.0.0/30', gateway: '10.0.0.1', exclude: ['10.0.0.2'] },
      '(root): no address is left to hand out after the gateway, exclusions and ranges',
    ],
  ])('%j', (input, problem) => {
    expect(problems(input)).toContain(problem);
  });

  it('names the pool and every problem in the message', () => {
    expect(() => compilePool({ name: 'vlan-100', cidr: '10.0.0.1/24', gateway: 'x' })).toThrow(
      'invalid pool "vlan-100" (spec):\n  cidr: host bits are set; the network is 10.0.0.0/24, got "10.0.0.1/24"\n  gateway: expected an IPv4 or IPv6 address, got "x"',
    );
  });
});

describe('usable addresses', () => {
  it('IPv4 /29 with a gateway: 5 addresses, never network, broadcast or gateway', () => {
    const p = compilePool({ name: 'p', cidr: '10.0.0.0/29', gateway: '10.0.0.1' });
    expect(usableList(p)).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
    expect(p.size).toBe(5n);
    expect(p.blockPrefix).toBe(29);
    expect(unusableReason(p, 0x0a000000n)).toBe('10.0.0.0 is the network address of pool p');
    expect(unusableReason(p, 0x0a000007n)).toBe('10.0.0.7 is the broadcast address of pool p');
    expect(unusableReason(p, 0x0a000001n)).toBe('10.0.0.1 is the gateway of pool p');
    expect(unusableReason(p, 0x0a000008n)).toBe('10.0.0.8 is outside pool p (10.0.0.0/29)');
    expect(unusableReason(p, 0x0a000002n)).toBeUndefined();
  });

  it('IPv4 /30, /31 and /32: network and broadcast reserved only up to /30 (RFC 3021)', () => {
    expect(usableList(compilePool({ name: 'p', cidr: '10.0.0.0/30' }))).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(usableList(compilePool({ name: 'p', cidr: '10.0.0.0/31' }))).toEqual(['10.0.0.0', '10.0.0.1']);
    expect(usableList(compilePool({ name: 'p', cidr: '10.0.0.0/31', gateway: '10.0.0.0' }))).toEqual([
      '10.0.0.1',
    ]);
    expect(usableList(compilePool({ name: 'p', cidr: '10.0.0.7/32' }))).toEqual(['10.0.0.7']);
    expect(compilePool({ name: 'p', cidr: '10.0.0.7/32' }).blockPrefix).toBe(32);
  });

  it('IPv6: the subnet-router anycast address is reserved up to /126; /127 and /128 use all', () => {
    expect(usableList(compilePool({ name: 'p', cidr: 'fd00::/126' }))).toEqual([
      'fd00::1',
      'fd00::2',
      'fd00::3',
    ]);
    expect(usableList(compilePool({ name: 'p', cidr: 'fd00::/127' }))).toEqual(['fd00::', 'fd00::1']);
    expect(usableList(compilePool({ name: 'p', cidr: 'fd00::5/128' }))).toEqual(['fd00::5']);
    const big = compilePool({ name: 'p', cidr: 'fd00::/64', gateway: 'fd00::1' });
    expect(big.size).toBe((1n << 64n) - 2n);
    expect(big.blockPrefix).toBe(122);
  });

  it('ranges and exclusions (addresses and CIDRs) combine', () => {
    const p = compilePool({
      name: 'p',
      cidr: '10.0.0.0/24',
      gateway: '10.0.0.10',
      ranges: [
        { start: '10.0.0.8', end: '10.0.0.20' },
        { start: '10.0.0.250', end: '10.0.0.255' },
      ],
      exclude: ['10.0.0.12/30', '10.0.0.19'],
    });
    expect(usableList(p)).toEqual([
      ...['8', '9', '11', '16', '17', '18', '20'].map((x) => `10.0.0.${x}`),
      ...['250', '251', '252', '253', '254'].map((x) => `10.0.0.${x}`),
    ]);
    expect(unusableReason(p, 0x0a000005n)).toBe('10.0.0.5 is outside the ranges of pool p');
    expect(unusableReason(p, 0x0a00000dn)).toBe('10.0.0.13 is excluded from pool p');
  });

  it('stores one spelling of every address', () => {
    const p = compilePool({
      name: 'p',
      cidr: 'FD00:0::/64',
      gateway: 'fd00:0:0::1',
      exclude: ['FD00::0/120'],
    });
    expect(p.spec).toMatchObject({ cidr: 'fd00::/64', gateway: 'fd00::1', exclude: ['fd00::/120'] });
  });
});

describe('overlap', () => {
  const a = compilePool({ name: 'a', cidr: '10.0.0.0/16', segment: { mode: 'vlan', id: 100 } });
  it('is refused unless allowed', () => {
    const b = compilePool({ name: 'b', cidr: '10.0.4.0/24', segment: { mode: 'vlan', id: 200 } });
    expect(overlapProblem(b, [a])).toBe(
      'b (10.0.4.0/24) overlaps a (10.0.0.0/16); set allowOverlap: true if they are on different segments',
    );
    expect(overlapProblem(compilePool({ name: 'c', cidr: '10.1.0.0/24' }), [a])).toBeUndefined();
    expect(overlapProblem(compilePool({ name: 'v6', cidr: 'fd00::/64' }), [a])).toBeUndefined();
  });
  it('is allowed across segments, never on the same one', () => {
    const other = compilePool({
      name: 'b',
      cidr: '10.0.0.0/24',
      segment: { mode: 'vlan', id: 200 },
      allowOverlap: true,
    });
    expect(overlapProblem(other, [a])).toBeUndefined();
    const same = compilePool({
      name: 'b',
      cidr: '10.0.0.0/24',
      segment: { mode: 'vlan', id: 100 },
      allowOverlap: true,
    });
    expect(overlapProblem(same, [a])).toContain(
      'on the same segment (vlan 100): addresses would be duplicated',
    );
  });
});

describe('nodeGateway', () => {
  const spec = (extra: Record<string, unknown>) =>
    compilePool({ name: 'p', cidr: '10.0.0.0/24', gateway: '10.0.0.1', ...extra }).spec;
  it('defaults on for vxlan and none segments, off for vlan and for overlapping pools', () => {
    expect(holdsGateway(spec({ segment: { mode: 'vxlan', id: 5 } }))).toBe(true);
    expect(holdsGateway(spec({}))).toBe(true);
    expect(holdsGateway(spec({ segment: { mode: 'vlan', id: 5 } }))).toBe(false);
    expect(holdsGateway(spec({ segment: { mode: 'vxlan', id: 5 }, allowOverlap: true }))).toBe(false);
    expect(holdsGateway(spec({ segment: { mode: 'vlan', id: 5 }, nodeGateway: true }))).toBe(true);
    expect(holdsGateway(compilePool({ name: 'p', cidr: '10.0.0.0/24' }).spec)).toBe(false);
  });

  it('on without a gateway is a pool error naming the key', () => {
    expect(() => compilePool({ name: 'p', cidr: '10.0.0.0/24', nodeGateway: true })).toThrow(
      /nodeGateway: nodeGateway needs a gateway address/,
    );
  });
});
