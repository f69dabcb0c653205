import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createBondingCollector } from './bonding.ts';

describe('bonding collector', () => {
  it('counts slaves and those with MII up, lower_* and the older slave_* links', async () => {
    const samples = await collectSamples(createBondingCollector(settingsFor(fixture('host/proc'))));
    expect(sampleValue(samples, 'node_bonding_slaves', { master: 'bond0' })).toBe(2);
    expect(sampleValue(samples, 'node_bonding_active', { master: 'bond0' })).toBe(1);
    expect(sampleValue(samples, 'node_bonding_slaves', { master: 'bond1' })).toBe(1);
    expect(sampleValue(samples, 'node_bonding_active', { master: 'bond1' })).toBe(1);
  });

  it('reports no data without the bonding driver', async () => {
    await expect(collectSamples(createBondingCollector(settingsFor(fixture('bare/proc'))))).rejects.toThrow(
      /no bonding_masters/,
    );
  });
});
