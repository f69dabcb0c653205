import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createPowersupplyclassCollector } from './powersupplyclass.ts';

describe('powersupplyclass collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('converts µW, µWh, µV, µA to base units and tenths of °C to °C, under node_exporter names', async () => {
    const samples = await collectSamples(createPowersupplyclassCollector(settings));
    const bat = (name: string) => sampleValue(samples, `node_power_supply_${name}`, { power_supply: 'BAT0' });
    expect(bat('capacity')).toBe(77);
    expect(bat('cyclecount')).toBe(112);
    expect(bat('present')).toBe(1);
    expect(bat('energy_watthour')).toBe(38.746);
    expect(bat('energy_full_design')).toBe(57);
    expect(bat('power_watt')).toBe(8.542);
    expect(bat('voltage_volt')).toBe(12.703);
    expect(bat('voltage_min_design')).toBe(11.52);
    expect(bat('current_ampere')).toBe(-0.672);
    expect(bat('temp_celsius')).toBe(31.2);
    expect(sampleValue(samples, 'node_power_supply_online', { power_supply: 'AC' })).toBe(1);
    const usb = { power_supply: 'ucsi-source-psy-USBC000:001' };
    expect(sampleValue(samples, 'node_power_supply_current_max', usb)).toBe(3);
    expect(sampleValue(samples, 'node_power_supply_voltage_max', usb)).toBe(5);
  });

  it('labels node_power_supply_info with the text attributes that are set, and nothing else', async () => {
    const samples = await collectSamples(createPowersupplyclassCollector(settings));
    expect(samples.filter((s) => s.name === 'node_power_supply_info').map((s) => s.labels)).toEqual([
      { power_supply: 'AC', type: 'Mains' },
      {
        capacity_level: 'Normal',
        manufacturer: 'SMP',
        model_name: '5B10W13975',
        power_supply: 'BAT0',
        serial_number: '1204',
        status: 'Discharging',
        technology: 'Li-poly',
        type: 'Battery',
      },
      {
        power_supply: 'ucsi-source-psy-USBC000:001',
        scope: 'Unknown',
        type: 'USB',
        usb_type: '[C] PD PD_PPS',
      },
    ]);
    // Attributes node_exporter does not expose (alarm, charge thresholds) make no series.
    expect(new Set(samples.map((s) => s.name)).size).toBe(16);
  });

  it('reports no data without /sys/class/power_supply', async () => {
    await expect(
      collectSamples(createPowersupplyclassCollector(settingsFor(fixture('bare/proc')))),
    ).rejects.toThrow(/no data/);
  });
});
