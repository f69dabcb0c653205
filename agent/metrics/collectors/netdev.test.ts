import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createNetdevCollector, parseNetDev } from './netdev.ts';

const read = (...p: string[]) => readFileSync(fixture(...p), 'utf8');

describe('parseNetDev', () => {
  it('reads 16 counters per device after the two header lines', () => {
    const devices = parseNetDev(read('host/proc/net/dev'));
    expect([...devices.keys()]).toEqual(['lo', 'ifb0', 'ifb1', 'eth0']);
    expect(devices.get('eth0')!.slice(0, 2)).toEqual([370349559, 8698]);
  });

  it('accepts an old kernel\'s "name:value" without a space, and rejects short lines', () => {
    expect(parseNetDev(read('bare/proc/net/dev')).get('lo')![0]).toBe(1000);
    expect(() => parseNetDev(read('odd/netdev-short'))).toThrow(/malformed/);
  });
});

describe('netdev collector', () => {
  it('names each column as node_exporter does without netlink, keeping lo by default', async () => {
    const samples = await collectSamples(createNetdevCollector(settingsFor(fixture('bare/proc'))));
    const eth0 = (name: string) => sampleValue(samples, `node_network_${name}_total`, { device: 'eth0' });
    expect(
      [
        'receive_bytes',
        'receive_packets',
        'receive_errs',
        'receive_drop',
        'receive_fifo',
        'receive_frame',
        'receive_compressed',
        'receive_multicast',
        'transmit_bytes',
        'transmit_packets',
        'transmit_errs',
        'transmit_drop',
        'transmit_fifo',
        'transmit_colls',
        'transmit_carrier',
        'transmit_compressed',
      ].map(eth0),
    ).toEqual([123456789, 100000, 1, 2, 3, 4, 5, 6, 98765432, 90000, 7, 8, 9, 10, 11, 12]);
    expect(sampleValue(samples, 'node_network_receive_bytes_total', { device: 'lo' })).toBe(1000);
  });

  it('follows netdev.deviceExclude', async () => {
    const settings = settingsFor(fixture('host/proc'), { netdev: { deviceExclude: '^(lo|ifb\\d+)$' } });
    const devices = new Set(
      (await collectSamples(createNetdevCollector(settings))).map((s) => s.labels.device),
    );
    expect([...devices]).toEqual(['eth0']);
  });
});
