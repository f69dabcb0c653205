import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createArpCollector } from './arp.ts';
import { createEntropyCollector } from './entropy.ts';
import { createUdpQueuesCollector } from './udp-queues.ts';

const host = (overrides: Record<string, unknown> = {}) =>
  settingsFor(fixture('host/proc'), { hostRoot: fixture('host'), ...overrides });

describe('entropy, arp and udp_queues collectors', () => {
  it('reads /proc/sys/kernel/random', async () => {
    const samples = await collectSamples(createEntropyCollector(host()));
    expect(samples.map((s) => [s.name, s.value])).toEqual([
      ['node_entropy_available_bits', 3584],
      ['node_entropy_pool_size_bits', 4096],
    ]);
  });

  it('counts ARP entries per device', async () => {
    const samples = await collectSamples(createArpCollector(host()));
    expect(sampleValue(samples, 'node_arp_entries', { device: 'eth0' })).toBe(2);
    expect(sampleValue(samples, 'node_arp_entries', { device: 'bond0' })).toBe(1);
  });

  it('sums the UDP queues over sockets, per IP version', async () => {
    const samples = await collectSamples(createUdpQueuesCollector(host()));
    expect(sampleValue(samples, 'node_udp_queues', { ip: 'v4', queue: 'tx' })).toBe(0x200);
    expect(sampleValue(samples, 'node_udp_queues', { ip: 'v4', queue: 'rx' })).toBe(0xa00);
    expect(sampleValue(samples, 'node_udp_queues', { ip: 'v6', queue: 'rx' })).toBe(0x100);
    await expect(collectSamples(createUdpQueuesCollector(settingsFor(fixture('bare/proc'))))).rejects.toThrow(
      /no data/,
    );
  });
});
