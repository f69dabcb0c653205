import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createSockstatCollector, parseSockstat } from './sockstat.ts';

describe('sockstat collector', () => {
  it('names each protocol property as node_exporter does, mem also in bytes', async () => {
    const collector = createSockstatCollector(settingsFor(fixture('host/proc')));
    const samples = await collectSamples(collector);
    const values = Object.fromEntries(samples.map((s) => [s.name, s.value]));
    expect(values.node_sockstat_sockets_used).toBe(230);
    expect(values.node_sockstat_TCP_tw).toBe(95);
    expect(values.node_sockstat_TCP_mem).toBe(133);
    // The page size of this machine (AT_PAGESZ), 4 KiB on x86-64.
    expect(values.node_sockstat_TCP_mem_bytes! % 133).toBe(0);
    expect(values.node_sockstat_UDP_mem_bytes! / 8).toBe(values.node_sockstat_TCP_mem_bytes! / 133);
    expect(values.node_sockstat_FRAG6_memory).toBe(0);
    expect(values.node_sockstat_TCP6_inuse).toBe(4);
    expect(collector.families.find((f) => f.name === 'node_sockstat_TCP_orphan')!.help).toBe(
      'Number of TCP sockets in state orphan.',
    );
    expect(samples).toHaveLength(20);
  });

  it('rejects a line with a key but no value', () => {
    expect(() => parseSockstat('TCP: inuse\n', 'sockstat', 4096)).toThrow(/malformed/);
  });
});
