import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import {
  createIpvsCollector,
  formatIPv6,
  parseAddressPort,
  parseIpvsBackends,
  parseIpvsStats,
} from './ipvs.ts';

describe('ipvs parsing', () => {
  it('prints IPv6 addresses as Go does, so labels match node_exporter', () => {
    expect(formatIPv6('2001:0db8:0000:0000:0001:0000:0000:0001')).toBe('2001:db8::1:0:0:1');
    expect(formatIPv6('2001:0db8:0000:0001:0001:0001:0001:0001')).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIPv6('0000:0000:0000:0000:0000:0000:0000:0001')).toBe('::1');
    expect(formatIPv6('0000:0000:0000:0000:0000:0000:0000:0000')).toBe('::');
    expect(formatIPv6('fe80:0000:0000:0000:0000:0000:0000:0000')).toBe('fe80::');
    expect(formatIPv6('0000:0000:0000:0000:0000:ffff:0a00:0001')).toBe('10.0.0.1');
    expect(() => formatIPv6('2001:db8')).toThrow(/invalid IPv6/);
  });

  it('reads hexadecimal addresses and ports', () => {
    expect(parseAddressPort('0A600001:01BB')).toEqual({ address: '10.96.0.1', port: 443 });
    expect(parseAddressPort('[fd00:0010:0096:0000:0000:0000:0000:000a]:0035')).toEqual({
      address: 'fd00:10:96::a',
      port: 53,
    });
    expect(() => parseAddressPort('0A600001')).toThrow(/unexpected address:port/);
  });

  it('reads the totals line of ip_vs_stats, exactly past 2^53', () => {
    const text = `h\nh\n 1 2 3 FFFFFFFFFFFFF FFFFFFFFFFFFFFFF\n\nh\n 0 0 0 0 0\n`;
    expect(parseIpvsStats(text)).toEqual([1, 2, 3, 0xfffffffffffff, 2 ** 64]);
    expect(() => parseIpvsStats('h\nh\n 1 2 3\n\n')).toThrow(/3 totals, expected 5/);
  });

  it('sums real servers that share their labels', () => {
    const text = 'TCP  0A600001:01BB rr\n  -> 0AF4000C:0035 Masq 1 2 3\n  -> 0AF4000C:0035 Masq 1 4 5\n';
    expect(parseIpvsBackends(text)).toEqual([
      {
        labels: {
          local_address: '10.96.0.1',
          local_port: '443',
          remote_address: '10.244.0.12',
          remote_port: '53',
          proto: 'TCP',
          local_mark: '',
        },
        active: 6,
        inactive: 8,
        weight: 2,
      },
    ]);
  });
});

describe('ipvs collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('reports the traffic totals', async () => {
    const samples = await collectSamples(createIpvsCollector(settings));
    expect(sampleValue(samples, 'node_ipvs_connections_total')).toBe(0x2c81a4);
    expect(sampleValue(samples, 'node_ipvs_incoming_packets_total')).toBe(0x3a5f20b1);
    expect(sampleValue(samples, 'node_ipvs_outgoing_packets_total')).toBe(0x355d2c04);
    expect(sampleValue(samples, 'node_ipvs_incoming_bytes_total')).toBe(0x4b8e0f31a2);
    expect(sampleValue(samples, 'node_ipvs_outgoing_bytes_total')).toBe(0x62f1c00b7e);
  });

  it('reports each real server with all six labels, IPv6 and firewall-mark services too', async () => {
    const samples = await collectSamples(createIpvsCollector(settings));
    expect(samples.filter((s) => s.name === 'node_ipvs_backend_weight')).toHaveLength(12);
    const apiserver = {
      local_address: '10.96.0.1',
      local_port: '443',
      remote_address: '192.168.10.12',
      remote_port: '6443',
      proto: 'TCP',
      local_mark: '',
    };
    expect(sampleValue(samples, 'node_ipvs_backend_connections_active', apiserver)).toBe(3);
    expect(sampleValue(samples, 'node_ipvs_backend_connections_inactive', apiserver)).toBe(1);
    expect(sampleValue(samples, 'node_ipvs_backend_weight', apiserver)).toBe(1);
    const dns = {
      local_address: '10.96.0.10',
      local_port: '53',
      remote_address: '10.244.1.7',
      remote_port: '53',
    };
    expect(sampleValue(samples, 'node_ipvs_backend_connections_inactive', { ...dns, proto: 'UDP' })).toBe(28);
    expect(sampleValue(samples, 'node_ipvs_backend_connections_inactive', { ...dns, proto: 'TCP' })).toBe(9);
    const v6 = { local_address: 'fd00:10:96::a', remote_address: 'fd00:10:244:1::7', proto: 'TCP' };
    expect(sampleValue(samples, 'node_ipvs_backend_connections_inactive', v6)).toBe(6);
    const marked = {
      local_address: '',
      local_port: '0',
      remote_address: '10.244.2.15',
      remote_port: '0',
      proto: 'FWM',
      local_mark: '0000000A',
    };
    expect(sampleValue(samples, 'node_ipvs_backend_connections_active', marked)).toBe(17);
    expect(sampleValue(samples, 'node_ipvs_backend_weight', marked)).toBe(100);
  });

  it('reports no data without the ip_vs module', async () => {
    await expect(collectSamples(createIpvsCollector(settingsFor(fixture('bare/proc'))))).rejects.toThrow(
      /no data/,
    );
  });
});
