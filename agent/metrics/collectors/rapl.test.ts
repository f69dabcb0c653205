import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createRaplCollector, raplZones } from './rapl.ts';

describe('rapl collector', () => {
  const settings = settingsFor(fixture('host/proc'));
  const powercap = `${settings.sysRoot}/class/powercap`;

  it('numbers zones by their -N suffix, else by order of appearance (dram under each package)', () => {
    expect(raplZones(settings.sysRoot)).toEqual([
      { name: 'package', index: 0, path: `${powercap}/intel-rapl:0` },
      { name: 'core', index: 0, path: `${powercap}/intel-rapl:0:0` },
      { name: 'dram', index: 0, path: `${powercap}/intel-rapl:0:1` },
      { name: 'package', index: 1, path: `${powercap}/intel-rapl:1` },
      { name: 'dram', index: 1, path: `${powercap}/intel-rapl:1:0` },
    ]);
  });

  it('reports µJ counters as node_rapl_<zone>_joules_total{index,path}, one family object per zone name', async () => {
    const collector = createRaplCollector(settings);
    const families = new Map<string, unknown>();
    const samples: [string, number, Record<string, string>][] = [];
    await collector.collect((f, value, labels = {}) => {
      if (families.has(f.name)) expect(families.get(f.name)).toBe(f);
      families.set(f.name, f);
      samples.push([f.name, value, { ...labels }]);
    });
    expect(samples).toEqual([
      ['node_rapl_package_joules_total', 93018.211514, { index: '0', path: `${powercap}/intel-rapl:0` }],
      ['node_rapl_core_joules_total', 31857.36021, { index: '0', path: `${powercap}/intel-rapl:0:0` }],
      ['node_rapl_dram_joules_total', 18723.904551, { index: '0', path: `${powercap}/intel-rapl:0:1` }],
      ['node_rapl_package_joules_total', 90271.839401, { index: '1', path: `${powercap}/intel-rapl:1` }],
      ['node_rapl_dram_joules_total', 19004.123987, { index: '1', path: `${powercap}/intel-rapl:1:0` }],
    ]);
    expect(families.get('node_rapl_package_joules_total')).toEqual({
      name: 'node_rapl_package_joules_total',
      type: 'counter',
      help: 'Current RAPL package value in joules',
    });
  });

  it('reports no data without powercap', async () => {
    await expect(collectSamples(createRaplCollector(settingsFor(fixture('bare/proc'))))).rejects.toThrow(
      /no data/,
    );
  });
});
