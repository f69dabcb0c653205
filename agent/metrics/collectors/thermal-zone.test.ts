import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createThermalZoneCollector } from './thermal-zone.ts';

describe('thermal_zone collector', () => {
  it('reads zone temperatures in °C and cooling device states', async () => {
    const samples = await collectSamples(createThermalZoneCollector(settingsFor(fixture('host/proc'))));
    expect(sampleValue(samples, 'node_thermal_zone_temp', { type: 'acpitz', zone: '0' })).toBe(27.8);
    expect(sampleValue(samples, 'node_thermal_zone_temp', { type: 'x86_pkg_temp', zone: '1' })).toBe(46);
    expect(
      sampleValue(samples, 'node_cooling_device_max_state', { name: '1', type: 'intel_powerclamp' }),
    ).toBe(50);
    expect(
      sampleValue(samples, 'node_cooling_device_cur_state', { name: '1', type: 'intel_powerclamp' }),
    ).toBe(1);
  });

  it('has no series and no error on a machine without thermal zones', async () => {
    await expect(
      collectSamples(createThermalZoneCollector(settingsFor(fixture('bare/proc')))),
    ).resolves.toEqual([]);
  });
});
