import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createCpufreqCollector } from './cpufreq.ts';

describe('cpufreq collector', () => {
  it('converts kHz to Hz, for CPUs that have a cpufreq directory', async () => {
    const samples = await collectSamples(createCpufreqCollector(settingsFor(fixture('host/proc'))));
    expect(samples.every((s) => s.labels.cpu === '0')).toBe(true);
    expect(Object.fromEntries(samples.map((s) => [s.name, s.value]))).toEqual({
      node_cpu_frequency_hertz: 1.8e9,
      node_cpu_frequency_min_hertz: 8e8,
      node_cpu_frequency_max_hertz: 3.6e9,
      node_cpu_scaling_frequency_hertz: 1799998000,
      node_cpu_scaling_frequency_min_hertz: 8e8,
      node_cpu_scaling_frequency_max_hertz: 3.6e9,
    });
  });
});
