import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createNetstatCollector, parseNetstat, parseSnmp6 } from './netstat.ts';

const read = (...p: string[]) => readFileSync(fixture(...p), 'utf8');

describe('netstat parsers', () => {
  it('pairs the name and value lines of /proc/net/netstat and snmp', () => {
    const stats = parseNetstat(read('host/proc/net/snmp'), 'snmp');
    expect(stats.get('Tcp_CurrEstab')).toBe(6);
    expect(stats.get('Ip_Forwarding')).toBe(1);
    expect(() => parseNetstat('Tcp: A B\nTcp: 1\n', 'snmp')).toThrow(/3 names but 2 values/);
  });

  it('splits snmp6 names at the 6', () => {
    expect(parseSnmp6(read('host/proc/net/snmp6')).get('Icmp6_OutMsgs')).toBe(2742);
  });
});

describe('netstat collector', () => {
  it('exposes the default fields as node_exporter names them, untyped, from all three files', async () => {
    const collector = createNetstatCollector(settingsFor(fixture('host/proc')));
    expect(collector.families.every((f) => f.type === 'untyped')).toBe(true);
    expect(collector.families.find((f) => f.name === 'node_netstat_Tcp_RetransSegs')!.help).toBe(
      'Statistic TcpRetransSegs.',
    );
    const samples = await collectSamples(collector);
    expect(Object.fromEntries(samples.map((s) => [s.name.slice('node_netstat_'.length), s.value]))).toEqual({
      TcpExt_SyncookiesSent: 0,
      TcpExt_SyncookiesRecv: 1,
      TcpExt_SyncookiesFailed: 2,
      TcpExt_ListenOverflows: 31,
      TcpExt_ListenDrops: 33,
      TcpExt_TCPTimeouts: 417,
      TcpExt_TCPSynRetrans: 96,
      IpExt_InOctets: 7539559660,
      IpExt_OutOctets: 3740385380,
      Ip_Forwarding: 1,
      Icmp_InMsgs: 45,
      Icmp_InErrors: 2,
      Icmp_OutMsgs: 51,
      Tcp_ActiveOpens: 4934,
      Tcp_PassiveOpens: 3622,
      Tcp_CurrEstab: 6,
      Tcp_InSegs: 316174,
      Tcp_OutSegs: 311130,
      Tcp_RetransSegs: 899,
      Tcp_InErrs: 7,
      Tcp_OutRsts: 1659,
      Udp_InDatagrams: 71,
      Udp_NoPorts: 4,
      Udp_InErrors: 0,
      Udp_OutDatagrams: 72,
      Udp_RcvbufErrors: 0,
      Udp_SndbufErrors: 0,
      UdpLite_InErrors: 0,
      Ip6_InOctets: 208220,
      Ip6_OutOctets: 222168,
      Icmp6_InMsgs: 1,
      Icmp6_InErrors: 0,
      Icmp6_OutMsgs: 2742,
      Udp6_InDatagrams: 15,
      Udp6_InErrors: 0,
      Udp6_OutDatagrams: 16,
    });
  });

  it('follows netstat.fields', async () => {
    const settings = settingsFor(fixture('host/proc'), { netstat: { fields: '^Tcp_CurrEstab$' } });
    const samples = await collectSamples(createNetstatCollector(settings));
    expect(samples).toHaveLength(1);
    expect(sampleValue(samples, 'node_netstat_Tcp_CurrEstab')).toBe(6);
  });
});
