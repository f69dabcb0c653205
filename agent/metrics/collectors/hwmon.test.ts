import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createHwmonCollector, explodeSensorFile } from './hwmon.ts';

describe('hwmon collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('names chips by their device (bus_device), else their name file', async () => {
    const samples = await collectSamples(createHwmonCollector(settings));
    expect(samples.filter((s) => s.name === 'node_hwmon_chip_names').map((s) => s.labels)).toEqual([
      { chip: 'acpitz', chip_name: 'acpitz' },
      { chip: 'platform_coretemp_0', chip_name: 'coretemp' },
      { chip: 'platform_nct6775_656', chip_name: 'nct6775' },
    ]);
  });

  it('converts each sensor kind to base units, as node_exporter names them', async () => {
    const samples = await collectSamples(createHwmonCollector(settings));
    const core = { chip: 'platform_coretemp_0', sensor: 'temp1' };
    const nct = (sensor: string) => ({ chip: 'platform_nct6775_656', sensor });
    expect(sampleValue(samples, 'node_hwmon_temp_celsius', core)).toBe(45);
    expect(sampleValue(samples, 'node_hwmon_temp_max_celsius', core)).toBe(84);
    expect(sampleValue(samples, 'node_hwmon_temp_crit_alarm_celsius', core)).toBe(0);
    expect(sampleValue(samples, 'node_hwmon_sensor_label', { ...core, label: 'Package id 0' })).toBe(1);
    expect(sampleValue(samples, 'node_hwmon_temp_celsius', { chip: 'acpitz', sensor: 'temp1' })).toBe(27.8);
    expect(sampleValue(samples, 'node_hwmon_in_volts', nct('in0'))).toBeCloseTo(1.032);
    expect(sampleValue(samples, 'node_hwmon_fan_rpm', nct('fan1'))).toBe(1236);
    expect(sampleValue(samples, 'node_hwmon_fan_min_rpm', nct('fan1'))).toBe(300);
    expect(sampleValue(samples, 'node_hwmon_fan_alarm', nct('fan1'))).toBe(0);
    expect(sampleValue(samples, 'node_hwmon_fan_beep_enabled', nct('fan1'))).toBe(0);
    expect(sampleValue(samples, 'node_hwmon_pwm', nct('pwm1'))).toBe(153);
    expect(sampleValue(samples, 'node_hwmon_pwm_enable', nct('pwm1'))).toBe(5);
    expect(sampleValue(samples, 'node_hwmon_curr_amps', nct('curr1'))).toBe(2.5);
    expect(sampleValue(samples, 'node_hwmon_power_watt', nct('power1'))).toBe(43.5);
    expect(sampleValue(samples, 'node_hwmon_power_average_interval_seconds', nct('power1'))).toBe(1);
    expect(sampleValue(samples, 'node_hwmon_energy_joule_total', nct('energy1'))).toBeCloseTo(123.456789);
    expect(sampleValue(samples, 'node_hwmon_beep_enabled', nct('beep_enable0'))).toBe(1);
    expect(sampleValue(samples, 'node_hwmon_voltage_regulator_version', nct('vrm0'))).toBe(9.1);
    expect(sampleValue(samples, 'node_hwmon_intrusion_alarm', nct('intrusion0'))).toBe(1);
    expect(sampleValue(samples, 'node_hwmon_humidity', nct('humidity1'))).toBe(0.045);
  });

  it('types energy as a counter and keeps one family object per name across scrapes', async () => {
    const collector = createHwmonCollector(settings);
    const seen = new Map<string, unknown>();
    for (let i = 0; i < 2; i++) {
      await collector.collect((f) => {
        if (seen.has(f.name)) expect(seen.get(f.name)).toBe(f);
        seen.set(f.name, f);
      });
    }
    expect((seen.get('node_hwmon_energy_joule_total') as { type: string }).type).toBe('counter');
    expect(explodeSensorFile('temp12_crit_alarm')).toEqual({ type: 'temp', num: 12, property: 'crit_alarm' });
  });

  it('reports no data without /sys/class/hwmon', async () => {
    await expect(collectSamples(createHwmonCollector(settingsFor(fixture('bare/proc'))))).rejects.toThrow(
      /no data/,
    );
  });
});
