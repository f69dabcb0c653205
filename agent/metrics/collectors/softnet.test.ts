import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createSoftnetCollector, parseSoftnet } from './softnet.ts';

describe('softnet collector', () => {
  it('reads the hex columns per CPU row', async () => {
    const samples = await collectSamples(createSoftnetCollector(settingsFor(fixture('host/proc'))));
    expect(sampleValue(samples, 'node_softnet_processed_total', { cpu: '0' })).toBe(0x27640);
    expect(sampleValue(samples, 'node_softnet_times_squeezed_total', { cpu: '0' })).toBe(3);
    expect(sampleValue(samples, 'node_softnet_dropped_total', { cpu: '1' })).toBe(10);
  });

  it('rejects short rows', () => {
    expect(() => parseSoftnet('0001 0002\n')).toThrow(/2 columns/);
  });
});
